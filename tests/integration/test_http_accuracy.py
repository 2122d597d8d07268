#!/usr/bin/env python3
"""Accuracy through the whole HTTP path: the first 1000 MNIST test images,
written as PNG, posted one by one to POST /predict, are classified exactly as
the engine classifies the same files directly (`mnistd predict`): same digit
for every image whose top two probabilities are not a tie (within 1e-4; a
batched and an unbatched forward pass may round differently in the last
bits), same confidence to 1e-5, and the same accuracy against the labels."""
import gzip
import http.client
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import struct
import time
import zlib

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("BUILD", "build")
BIN = os.environ.get("MNISTD_BIN", os.path.join(ROOT, BUILD, "mnistd"))
MKPNG = os.path.join(ROOT, BUILD, "tests", "tools", "mkpng")
DATA = os.environ.get("MNISTD_DATA", "")
N = 1000


def idx(data_dir, stem):
    """The bytes of an IDX file, plain or gzipped."""
    for name in (stem, stem + ".gz"):
        p = os.path.join(data_dir, name)
        if os.path.exists(p):
            return (gzip.open if p.endswith(".gz") else open)(p, "rb").read()
    raise RuntimeError("no %s in %s" % (stem, data_dir))


def png_gray(pixels, w, h):
    """A minimal 8-bit grayscale PNG (one process for 1000 files, not 1000)."""
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
    rows = b"".join(b"\0" + pixels[y * w:(y + 1) * w] for y in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def main():
    if not DATA:
        print("SKIP test_http_accuracy: MNISTD_DATA is not set")
        return 0
    work = tempfile.mkdtemp(prefix="mnistd-acc.")
    daemon = None
    try:
        model = os.path.join(ROOT, "models", "mnist-cnn.safetensors")
        if not os.path.exists(model):
            model = os.path.join(work, "m.safetensors")
            subprocess.run([BIN, "train", "--data", DATA, "--limit", "4000", "--epochs", "1",
                            "--threads", "1", "--quiet", "--out", model],
                           check=True, stdout=subprocess.DEVNULL)
        images = idx(DATA, "t10k-images-idx3-ubyte")[16:]
        files = []
        for i in range(N):
            f = os.path.join(work, "t%04d.png" % i)
            with open(f, "wb") as fh:
                fh.write(png_gray(images[i * 784:(i + 1) * 784], 28, 28))
            files.append(f)
        # One file through mkpng too: both writers must give the same pixels.
        subprocess.run([MKPNG, "--mnist", DATA, "--index", "0", "-o", os.path.join(work, "mk.png")], check=True)
        files.append(os.path.join(work, "mk.png"))
        out = subprocess.run([BIN, "predict", "--model", model, "--probs"] + files, check=True,
                             capture_output=True, text=True).stdout
        engine = {}
        for line in out.splitlines():
            parts = line.split()
            probs = sorted(float(x) for x in parts[3:13])
            engine[parts[0]] = (int(parts[1]), float(parts[2]), probs[-1] - probs[-2])

        log = open(os.path.join(work, "daemon.log"), "w+")
        daemon = subprocess.Popen([BIN, "serve", "--port", "0", "--model", model], stderr=log)
        port = None
        deadline = time.time() + 20
        while port is None and time.time() < deadline and daemon.poll() is None:
            log.seek(0)
            m = re.search(r'"msg":"listening on http://127\.0\.0\.1:(\d+)"', log.read())
            if m:
                port = int(m.group(1))
            else:
                time.sleep(0.05)
        if port is None:
            print("FAIL test_http_accuracy: the daemon did not start")
            return 1

        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        import json
        lab = list(idx(DATA, "t10k-labels-idx1-ubyte")[8:8 + N]) + [None]
        same = ties = http_right = engine_right = 0
        bad = []
        for i, f in enumerate(files):
            body = open(f, "rb").read()
            conn.request("POST", "/predict", body=body, headers={"Content-Type": "image/png"})
            r = conn.getresponse()
            data = r.read()
            if r.status != 200:
                bad.append("%s: status %d %s" % (os.path.basename(f), r.status, data[:100]))
                continue
            d = json.loads(data)
            ed, ec, margin = engine[f]
            http_right += d["digit"] == lab[i]
            engine_right += ed == lab[i]
            if d["digit"] == ed and abs(d["confidence"] - ec) <= 1e-5:
                same += 1
            elif margin <= 1e-4:
                ties += 1
            else:
                bad.append("%s: http %d %.6f, engine %d %.6f" % (os.path.basename(f), d["digit"],
                                                                 d["confidence"], ed, ec))
        conn.close()
        if engine[files[-1]] != engine[files[0]]:
            bad.append("mkpng and this test's PNG of image 0 differ in the engine")
        print("http accuracy %.4f, engine accuracy %.4f on %d images; %d identical, %d ties"
              % (http_right / N, engine_right / N, N, same, ties))
        failed = 0
        if bad:
            print("FAIL test_http_accuracy_same_predictions: %d differ: %s" % (len(bad), "; ".join(bad[:5])))
            failed = 1
        else:
            print("PASS test_http_accuracy_same_predictions")
        if abs(http_right - engine_right) > ties or http_right < N // 2:
            print("FAIL test_http_accuracy_same_accuracy: http %d, engine %d correct" % (http_right, engine_right))
            failed = 1
        else:
            print("PASS test_http_accuracy_same_accuracy")
        return failed
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(timeout=20)
            except subprocess.TimeoutExpired:
                daemon.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
