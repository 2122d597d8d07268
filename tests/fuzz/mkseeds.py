#!/usr/bin/env python3
"""Writes the fuzzing seed corpora and the decompression-bomb PNGs.

    python3 tests/fuzz/mkseeds.py [--tools build/tests/tools]

Everything is deterministic (fixed pixel patterns, gzip mtime 0, a fixed
"created" date), so re-running it reproduces the committed files byte for
byte. It needs the test tools mkpng and ckpt_tool (`make test` builds them);
the seed directories are emptied first, so what libFuzzer added to them by
mistake (a seed directory given first on its command line) goes away.

Outputs:
  tests/fuzz/corpus/png/bar-*.png          every colour type and bit depth (mkpng)
  tests/fuzz/corpus/png/chunks-*.png       ancillary chunks libpng must skip
  tests/fuzz/corpus/png/<fixture>.png      some of tests/fixtures/png
  tests/fuzz/corpus/multipart/*.bin        Content-Type line + body
  tests/fuzz/corpus/idx/*.bin              u32le images length, images, labels
  tests/fuzz/corpus/ckpt/*.safetensors     whole model files (one valid)
  tests/fuzz/corpus/ckpt_header/*.json     checkpoint JSON headers
  tests/fuzz/corpus/json_train/*.bin       flags, Authorization line, POST /train body
  tests/fuzz/corpus/json_evaluate/*.bin    POST /evaluate body
  tests/fuzz/corpus/v2/*.bin               Inference-Header-Content-Length line, v2 infer body
  tests/fuzz/bombs/*.png                   small PNGs that would cost memory
"""
import argparse
import base64
import gzip
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(HERE, "corpus")
BOMBS = os.path.join(HERE, "bombs")


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


# ---- PNG -------------------------------------------------------------------

def chunk(kind, data, length=None):
    """One PNG chunk; length overrides the declared length (CRC stays right
    for the data actually present)."""
    n = len(data) if length is None else length
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", n) + kind + data + struct.pack(">I", crc)


def ihdr(w, h, depth=8, ctype=0, interlace=0):
    return chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, interlace))


def bar_gray(w, h):
    """A white vertical bar on black, 8-bit gray, filter byte 0 per row."""
    rows = bytearray()
    for y in range(h):
        rows.append(0)
        for x in range(w):
            ink = w // 3 <= x < w - w // 3 and h // 6 <= y < h - h // 6
            rows.append(255 if ink else 0)
    return bytes(rows)


def idat(raw, level=9):
    return chunk(b"IDAT", zlib.compress(raw, level))


SIG = b"\x89PNG\r\n\x1a\n"


def png_with(pre_idat=b"", post_idat=b"", w=28, h=28):
    return (SIG + ihdr(w, h) + pre_idat + idat(bar_gray(w, h)) + post_idat +
            chunk(b"IEND", b""))


def png_seeds():
    d = os.path.join(CORPUS, "png")
    text = b"Comment\x00a digit"
    ztxt = b"Title\x00\x00" + zlib.compress(b"compressed text " * 8)
    itxt = b"Author\x00\x01\x00en\x00Autor\x00" + zlib.compress("\u00e9crit".encode())
    iccp = b"icc\x00\x00" + zlib.compress(bytes(128))
    ancillary = (chunk(b"gAMA", struct.pack(">I", 45455)) +
                 chunk(b"sBIT", b"\x08") +
                 chunk(b"cHRM", struct.pack(">8I", 31270, 32900, 64000, 33000,
                                            30000, 60000, 15000, 6000)) +
                 chunk(b"iCCP", iccp) +
                 chunk(b"pHYs", struct.pack(">IIB", 2835, 2835, 1)) +
                 chunk(b"bKGD", b"\x00\x00") +
                 chunk(b"tIME", struct.pack(">HBBBBB", 2024, 1, 2, 3, 4, 5)) +
                 chunk(b"tEXt", text) + chunk(b"zTXt", ztxt) + chunk(b"iTXt", itxt) +
                 chunk(b"prIv", b"private ancillary chunk") +
                 chunk(b"sPLT", b"pal\x00\x08" + bytes([1, 2, 3, 255, 0, 1]) * 2))
    write(os.path.join(d, "chunks-ancillary-28x28.png"), png_with(pre_idat=ancillary))
    write(os.path.join(d, "chunks-text-after-idat.png"),
          png_with(post_idat=chunk(b"tEXt", text) + chunk(b"zTXt", ztxt)))
    # Image data split over several IDAT chunks.
    z = zlib.compress(bar_gray(28, 28))
    split = b"".join(chunk(b"IDAT", z[i:i + 16]) for i in range(0, len(z), 16))
    write(os.path.join(d, "chunks-split-idat.png"),
          SIG + ihdr(28, 28) + split + chunk(b"IEND", b""))
    # A sRGB chunk and a 1-pixel image.
    write(os.path.join(d, "chunks-srgb-1x1.png"),
          SIG + ihdr(1, 1) + chunk(b"sRGB", b"\x00") + idat(b"\x00\xff") +
          chunk(b"IEND", b""))


def mkpng_seeds(mkpng):
    """The bar digit in every colour type, bit depth and interlacing, and a
    few fixtures (bad CRC, truncated, over the limits)."""
    d = os.path.join(CORPUS, "png")
    for w, h, t, extra in [
            (28, 28, "gray", []), (28, 28, "gray16", []), (20, 24, "ga", []),
            (33, 17, "rgb", ["--invert"]), (16, 16, "rgba16", []),
            (30, 30, "palette", []), (24, 24, "palette-trns", []),
            (28, 28, "gray1", []), (29, 31, "gray2", ["--interlace"]),
            (40, 32, "gray4", []), (12, 40, "ga16", ["--interlace"]),
            (28, 28, "rgb16", [])]:
        name = "bar-%dx%d-%s%s.png" % (w, h, t, "".join("-" + e[2:] for e in extra))
        subprocess.run([mkpng, "--bar", str(w), str(h), "--type", t] + extra +
                       ["-o", os.path.join(d, name)], check=True)
    subprocess.run([mkpng, "--blank", "9", "7", "-o", os.path.join(d, "blank-9x7.png")],
                   check=True)
    fixtures = os.path.join(ROOT, "tests", "fixtures", "png")
    for f in ["one-dark-on-white-120x160-rgba-interlaced.png", "bad-crc.png",
              "truncated.png", "bomb-100000x100000.png"]:
        shutil.copyfile(os.path.join(fixtures, f), os.path.join(d, f))


def bombs():
    """Small files that would make a careless decoder spend memory."""
    d = BOMBS
    junk = b"x" * 64
    # A zTXt chunk that declares 2 GiB - 16 bytes and stops after 64.
    write(os.path.join(d, "ztxt-declares-2g.png"),
          SIG + ihdr(28, 28) + idat(bar_gray(28, 28)) +
          chunk(b"zTXt", b"Comment\x00\x00" + junk, length=0x7FFFFFF0))
    # The same with an iCCP chunk (it must come before IDAT).
    write(os.path.join(d, "iccp-declares-2g.png"),
          SIG + ihdr(28, 28) + chunk(b"iCCP", b"icc\x00\x00" + junk, length=0x7FFFFFF0))
    # Compression bombs: 16 KiB chunks whose text or ICC profile inflates to
    # 16 MiB, beyond the 1 MiB chunk limit and never worth decompressing.
    big = zlib.compress(bytes(16 << 20), 9)
    write(os.path.join(d, "ztxt-inflates-16m.png"),
          png_with(post_idat=chunk(b"zTXt", b"Comment\x00\x00" + big)))
    write(os.path.join(d, "iccp-inflates-16m.png"),
          png_with(pre_idat=chunk(b"iCCP", b"icc\x00\x00" + big)))
    # An iTXt whose compressed text inflates to 16 MiB.
    write(os.path.join(d, "itxt-inflates-16m.png"),
          png_with(post_idat=chunk(b"iTXt", b"Comment\x00\x01\x00\x00\x00" + big)))
    # IDAT that inflates far past the 28x28 image it belongs to.
    write(os.path.join(d, "idat-inflates-16m.png"),
          SIG + ihdr(28, 28) + chunk(b"IDAT", big) + chunk(b"IEND", b""))


# ---- multipart -------------------------------------------------------------

def multipart_seeds():
    d = os.path.join(CORPUS, "multipart")
    png = png_with()
    crlf = b"\r\n"

    def part(name, data, filename=None, ctype=None, extra=b""):
        h = b'Content-Disposition: form-data; name="' + name + b'"'
        if filename is not None:
            h += b'; filename="' + filename + b'"'
        h += crlf
        if ctype is not None:
            h += b"Content-Type: " + ctype + crlf
        return h + extra + crlf + data

    def body(boundary, parts, preamble=b"", epilogue=b"", pad=b""):
        out = preamble + (crlf if preamble else b"")
        for p in parts:
            out += b"--" + boundary + pad + crlf + p + crlf
        return out + b"--" + boundary + b"--" + epilogue

    seeds = {
        "one-image.bin": (b"multipart/form-data; boundary=XyZzy123",
                          body(b"XyZzy123", [part(b"image", png, b"d.png", b"image/png")])),
        "two-images-quoted.bin": (
            b'multipart/form-data; boundary="a b\'()+_,-./:=?"',
            body(b"a b'()+_,-./:=?", [part(b"image", png, b"a.png", b"image/png"),
                                      part(b"image", png, b"b.png", b"image/png")])),
        "preamble-epilogue-padding.bin": (
            b"Multipart/Form-Data ; charset=utf-8; boundary=----WebKitFormBoundary7MA4YWxk",
            body(b"----WebKitFormBoundary7MA4YWxk",
                 [part(b"file", png, b"x.png", b"image/png",
                       extra=b"Content-Transfer-Encoding: binary" + crlf)],
                 preamble=b"This is the preamble.", epilogue=crlf + b"epilogue", pad=b" \t")),
        "escaped-filename.bin": (
            b"multipart/form-data; boundary=b",
            body(b"b", [part(b"na\\\"me", b"", b'di\\\\r\\"x.png'),
                        part(b"t", b"--b not a delimiter\r--b\r\n-", None, b"text/plain")])),
        "many-parts.bin": (
            b"multipart/form-data;boundary=q",
            body(b"q", [part(b"p%d" % i, b"%d" % i) for i in range(8)])),
        "curl.bin": (
            b"multipart/form-data; boundary=------------------------d74496d66958873e",
            body(b"------------------------d74496d66958873e",
                 [part(b"image", png, b"digit.png", b"image/png")])),
    }
    for name, (ct, b) in seeds.items():
        write(os.path.join(d, name), ct + b"\n" + b)


# ---- IDX -------------------------------------------------------------------

def idx_images(n):
    out = struct.pack(">IIII", 0x803, n, 28, 28)
    for i in range(n):
        img = bytearray(784)
        for y in range(4, 24):
            for x in range(10 + i % 5, 14 + i % 5):
                img[y * 28 + x] = 255 - 16 * (i % 8)
        out += bytes(img)
    return out


def idx_labels(n):
    return struct.pack(">II", 0x801, n) + bytes(i % 10 for i in range(n))


def gz(data):
    return gzip.compress(data, compresslevel=9, mtime=0)


def idx_seeds():
    d = os.path.join(CORPUS, "idx")

    def pair(images, labels):
        return struct.pack("<I", len(images)) + images + labels

    write(os.path.join(d, "plain-2.bin"), pair(idx_images(2), idx_labels(2)))
    write(os.path.join(d, "gzip-3.bin"), pair(gz(idx_images(3)), gz(idx_labels(3))))
    write(os.path.join(d, "gzip-images-plain-labels-1.bin"),
          pair(gz(idx_images(1)), idx_labels(1)))
    write(os.path.join(d, "plain-images-gzip-labels-10.bin"),
          pair(idx_images(10), gz(idx_labels(10))))
    # Count mismatch and a lying count: error paths with a valid start.
    write(os.path.join(d, "count-mismatch.bin"), pair(idx_images(2), idx_labels(3)))
    lying = bytearray(idx_images(1))
    lying[4:8] = struct.pack(">I", 60000)
    write(os.path.join(d, "lying-count.bin"), pair(bytes(lying), idx_labels(1)))


# ---- checkpoints -----------------------------------------------------------

DATA_BYTES = 93322 * 4


def ckpt_seeds(ckpt_tool):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "m.safetensors")
        subprocess.run([ckpt_tool, "write", path, "1"], check=True, stdout=subprocess.DEVNULL)
        with open(path, "rb") as f:
            raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    hdr = json.loads(raw[8:8 + n])
    hdr["__metadata__"]["created"] = "2024-01-01T00:00:00Z"

    def encode(h):
        text = json.dumps(h, separators=(",", ":"), ensure_ascii=False).encode()
        return text + b" " * (-len(text) % 8)

    # Data: zeros with a few small values (finite), so the file compresses
    # well in git while every tensor is non-trivial.
    data = bytearray(DATA_BYTES)
    for name, t in hdr.items():
        if name != "__metadata__":
            struct.pack_into("<f", data, t["data_offsets"][0], 0.5)
    text = encode(hdr)
    d = os.path.join(CORPUS, "ckpt")
    write(os.path.join(d, "valid-writer-order.safetensors"),
          struct.pack("<Q", len(text)) + text + bytes(data))
    # Small invalid files: the header alone (truncated), and an empty header.
    write(os.path.join(d, "header-only.safetensors"), struct.pack("<Q", len(text)) + text)
    write(os.path.join(d, "tiny.safetensors"), struct.pack("<Q", 2) + b"{}")

    hd = os.path.join(CORPUS, "ckpt_header")
    write(os.path.join(hd, "writer-order.json"), text)
    # The reference implementation's order: tensors sorted by name, offsets
    # assigned in that order, metadata absent.
    tensors = sorted((k, v) for k, v in hdr.items() if k != "__metadata__")
    ref, pos = {}, 0
    for k, v in tensors:
        size = v["data_offsets"][1] - v["data_offsets"][0]
        ref[k] = {"dtype": "F32", "shape": v["shape"], "data_offsets": [pos, pos + size]}
        pos += size
    write(os.path.join(hd, "reference-order-no-meta.json"), encode(ref))
    # Pretty-printed, escapes in the metadata, no padding.
    meta = dict(hdr)
    meta["__metadata__"] = {"note": "tab\t quote\" \\u00e9 \u20ac \U0001F600",
                            "architecture": "mnist-cnn-v1"}
    write(os.path.join(hd, "pretty-escapes.json"),
          json.dumps(meta, indent=1, ensure_ascii=True).encode())


# ---- POST /train -----------------------------------------------------------

def json_train_seeds():
    """Flags byte, Authorization line, body (see fuzz_json_train.c)."""
    d = os.path.join(CORPUS, "json_train")
    json_ct, text_ct, png_ct = 1, 2, 3
    busy, token, too_large, no_memory = 4, 8, 0xF0, 0x50
    good = b"Bearer fuzz-token-0123456789abcdef"
    full = (b'{"epochs":1,"batch_size":64,"learning_rate":0.001,'
            b'"validation_split":0.2,"seed":1,"limit":1000}')
    seeds = {
        "full-json.bin": (json_ct, b"", full),
        "empty-body-defaults.bin": (0, b"", b""),
        "token-ok.bin": (json_ct | token, good, b'{"epochs":2}'),
        "token-lowercase-tabs.bin": (json_ct | token, b" bearer\t fuzz-token-0123456789abcdef \t",
                                     b"{}"),
        "token-wrong.bin": (json_ct | token, b"Bearer fuzz-token-0123456789abcdeX", b"{}"),
        "busy.bin": (json_ct | busy, b"", b'{"seed":42}'),
        "no-memory.bin": (json_ct | no_memory, b"", b'{"epochs":3}'),
        "not-json-type.bin": (png_ct, b"", full),
        "text-plain-out-of-range.bin": (text_ct, b"", b'{"epochs":0,"batch_size":4096}'),
        "unknown-field.bin": (json_ct, b"", b'{"epochs":1,"optimizer":"sgd"}'),
        "wrong-types.bin": (json_ct, b"", b'{"epochs":[1],"learning_rate":"0.1",'
                                          b'"validation_split":null,"seed":1.5}'),
        "not-an-object.bin": (json_ct, b"", b'[{"epochs":1}]'),
        "too-large.bin": (json_ct | too_large, b"", full),
        "floats-edge.bin": (json_ct, b"", b'{"learning_rate":1e-50,"validation_split":0.99999999999,'
                                          b'"limit":100000000,"seed":2147483647}'),
        "augment.bin": (json_ct, b"", b'{"epochs":1,"augment":{"shift":2,"rotate":10,"scale":0.1,'
                                      b'"thicken":1.5,"thin":0.5}}'),
        "augment-out-of-range.bin": (json_ct, b"", b'{"augment":{"shift":4.5,"rotate":-1,"scale":"0.1",'
                                                   b'"shear":1,"shift":1}}'),
        "augment-not-object.bin": (json_ct, b"", b'{"augment":[2,10]}'),
    }
    for name, (flags, auth, body) in seeds.items():
        write(os.path.join(d, name), bytes([flags]) + auth + b"\n" + body)


# ---- POST /evaluate ---------------------------------------------------------

def json_evaluate_seeds():
    """The body alone (see fuzz_json_evaluate.c)."""
    d = os.path.join(CORPUS, "json_evaluate")
    seeds = {
        "empty.bin": b"",
        "test.bin": b'{"set":"test"}',
        "transformed.bin": b'{"set":"transformed"}',
        "shifted-spaces.bin": b' { "set" : "shifted" } ',
        "unknown-set.bin": b'{"set":"sheared"}',
        "unknown-field.bin": b'{"set":"rotated","images":100}',
        "duplicate.bin": b'{"set":"rotated","set":"thickened"}',
        "not-a-string.bin": b'{"set":["shifted"]}',
        "not-an-object.bin": b'["transformed"]',
        "nul-in-name.bin": b'{"set":"thick\\u0000ened"}',
    }
    for name, body in seeds.items():
        write(os.path.join(d, name), body)


# ---- v2 infer ---------------------------------------------------------------

def v2_seeds():
    """Header line ("-": no Inference-Header-Content-Length), body (see fuzz_v2.c)."""
    d = os.path.join(CORPUS, "v2")
    px = [((k * 104729) % 256) / 255.0 for k in range(784)]
    u8 = bytes((k * 13) % 256 for k in range(784))

    def req(dtype, shape, data=None, bds=None, outputs=None, params=None, rid=None):
        inp = {"name": "input", "shape": shape, "datatype": dtype}
        if data is not None:
            inp["data"] = data
        if bds is not None:
            inp["parameters"] = {"binary_data_size": bds}
        r = {}
        if rid is not None:
            r["id"] = rid
        if params is not None:
            r["parameters"] = params
        r["inputs"] = [inp]
        if outputs is not None:
            r["outputs"] = outputs
        return json.dumps(r, separators=(",", ":")).encode()

    def binary(head, tail):
        return str(len(head)).encode(), head + tail

    fp32 = struct.pack("<784f", *px)
    png = png_with()
    b64 = base64.b64encode(png).decode()
    cls = [{"name": "probabilities", "parameters": {"classification": 3, "binary_data": True}}]
    seeds = {
        "json-fp32-nested.bin": (b"-", req("FP32", [1, 28, 28], [[px[r * 28:(r + 1) * 28] for r in range(28)]],
                                           rid="a1")),
        "json-uint8.bin": (b"-", req("UINT8", [1, 784], list(u8),
                                     outputs=[{"name": "probabilities", "parameters": {"classification": 2}}])),
        "json-bytes-b64.bin": (b"-", req("BYTES", [1], [b64])),
        "binary-fp32.bin": binary(req("FP32", [1, 28, 28, 1], bds=len(fp32), params={"binary_data_output": True}),
                                  fp32),
        "binary-uint8-class.bin": binary(req("UINT8", [1, 1, 28, 28], bds=784, outputs=cls), u8),
        "binary-bytes-png.bin": binary(req("BYTES", [2, 1], bds=2 * (4 + len(png))),
                                       (struct.pack("<I", len(png)) + png) * 2),
        "raw-fp32.bin": (b"0", fp32),
        "bad-shape.bin": (b"-", req("FP32", [1, 28, 28, 3], [0])),
        "huge-shape.bin": (b"-", req("FP32", [10 ** 15, 28, 28, 1], [0])),
        "header-beyond.bin": (b"99999", req("FP32", [1, 784], bds=3136)),
    }
    # numbers printed with 9 significant digits, as clients print floats
    flat = req("FP32", [1, 28, 28, 1], [0.0]).replace(b"[0.0]", ("[" + ",".join("%.9g" % v for v in px) + "]").encode())
    seeds["json-fp32-flat.bin"] = (b"-", flat)
    for name, (line, body) in seeds.items():
        write(os.path.join(d, name), line + b"\n" + body)


def explain_seeds():
    """POST /explain options: a presence byte (steps, target, format,
    Accept), --explain-max-steps as 16 bits, the values one per line."""
    d = os.path.join(CORPUS, "explain")
    seeds = {
        "all.bin": (0x0F, 255, [b"128", b"7", b"png", b"image/png"]),
        "none.bin": (0x00, 256, []),
        "accept.bin": (0x08, 256, [b"", b"", b"", b"text/html, image/png;q=0.9, application/json"]),
        "over.bin": (0x03, 16, [b"999", b"10"]),
        "format.bin": (0x04, 256, [b"", b"", b"gif"]),
    }
    for name, (present, max_steps, values) in seeds.items():
        write(os.path.join(d, name), bytes([present]) + struct.pack("<H", max_steps) + b"\n".join(values))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tools", default=os.path.join(ROOT, "build", "tests", "tools"),
                    help="directory holding mkpng and ckpt_tool")
    args = ap.parse_args()
    mkpng = os.path.join(args.tools, "mkpng")
    ckpt_tool = os.path.join(args.tools, "ckpt_tool")
    for tool in (mkpng, ckpt_tool):
        if not os.access(tool, os.X_OK):
            print("mkseeds: %s not built (make test builds it)" % tool, file=sys.stderr)
            return 1
    for name in ("png", "multipart", "idx", "ckpt", "ckpt_header", "json_train", "json_evaluate", "v2", "explain"):
        shutil.rmtree(os.path.join(CORPUS, name), ignore_errors=True)
        os.makedirs(os.path.join(CORPUS, name))
    shutil.rmtree(BOMBS, ignore_errors=True)
    mkpng_seeds(mkpng)
    png_seeds()
    bombs()
    multipart_seeds()
    idx_seeds()
    ckpt_seeds(ckpt_tool)
    json_train_seeds()
    json_evaluate_seeds()
    v2_seeds()
    explain_seeds()
    return 0


if __name__ == "__main__":
    sys.exit(main())
