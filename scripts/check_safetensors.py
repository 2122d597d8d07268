#!/usr/bin/python3
"""Checks a safetensors file the way the reference implementation does, with
nothing but json and numpy, and (optionally) against mnistd's network.

  check_safetensors.py FILE                 layout check; prints tensors and metadata
  check_safetensors.py FILE --mnistd        also: exactly mnistd's tensors, F32, finite
  check_safetensors.py FILE --fnv           prints "tensor NAME [SHAPE] fnv1a=HEX" lines
                                            (the format of tests/tools/ckpt_tool show)
  check_safetensors.py FILE --rewrite OUT   writes the tensors again the way the
                                            reference Python writer orders them

If the `safetensors` package is importable, the file is also loaded with
safetensors.numpy.load_file and every tensor compared bit for bit.
Exit status: 0 valid, 1 invalid (the reason on stderr), 2 usage.
"""
import json
import struct
import sys

import numpy as np

# The reference's own limit on the header (safetensors/src/tensor.rs).
MAX_HEADER = 100_000_000

DTYPES = {
    "BOOL": (np.bool_, 1), "U8": (np.uint8, 1), "I8": (np.int8, 1),
    "U16": (np.uint16, 2), "I16": (np.int16, 2), "F16": (np.float16, 2),
    "BF16": (None, 2), "U32": (np.uint32, 4), "I32": (np.int32, 4),
    "F32": (np.float32, 4), "U64": (np.uint64, 8), "I64": (np.int64, 8),
    "F64": (np.float64, 8),
}

# mnistd's parameter tensors (model/net.h, net_tensors[]): name -> shape.
MNISTD_TENSORS = [
    ("conv1.weight", [32, 3, 3, 1]), ("conv1.bias", [32]),
    ("conv2.weight", [64, 3, 3, 32]), ("conv2.bias", [64]),
    ("conv3.weight", [64, 3, 3, 64]), ("conv3.bias", [64]),
    ("fc1.weight", [64, 576]), ("fc1.bias", [64]),
    ("fc2.weight", [10, 64]), ("fc2.bias", [10]),
]


class Invalid(Exception):
    pass


def _no_duplicates(pairs):
    seen = {}
    for k, v in pairs:
        if k in seen:
            raise Invalid(f"key {k!r} appears twice in the header")
        seen[k] = v
    return seen


def parse(buf):
    """Validates buf; returns (metadata dict or None, {name: ndarray}, order)."""
    if len(buf) < 8:
        raise Invalid(f"file of {len(buf)} bytes is shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", buf[:8])
    if n > MAX_HEADER:
        raise Invalid(f"header length {n} exceeds {MAX_HEADER}")
    if 8 + n > len(buf):
        raise Invalid(f"header length {n} is larger than the file ({len(buf) - 8} bytes after it)")
    try:
        text = buf[8:8 + n].decode("utf-8")
    except UnicodeDecodeError as e:
        raise Invalid(f"header is not valid UTF-8: {e}")
    if not text.startswith("{"):
        raise Invalid("header does not start with '{'")
    try:
        header = json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as e:
        raise Invalid(f"header is not valid JSON: {e}")
    if not isinstance(header, dict):
        raise Invalid("header is not a JSON object")
    meta = header.pop("__metadata__", None)
    if meta is not None:
        if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
            raise Invalid("__metadata__ is not a map of strings to strings")
    data = memoryview(buf)[8 + n:]
    entries = []
    for name, info in header.items():
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise Invalid(f"tensor {name!r}: entry must have exactly dtype, shape, data_offsets")
        dtype, shape, offs = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in DTYPES:
            raise Invalid(f"tensor {name!r}: unknown dtype {dtype!r}")
        if not isinstance(shape, list) or not all(
                isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            raise Invalid(f"tensor {name!r}: shape {shape!r} is not a list of sizes")
        if (not isinstance(offs, list) or len(offs) != 2 or not all(
                isinstance(o, int) and not isinstance(o, bool) and o >= 0 for o in offs)):
            raise Invalid(f"tensor {name!r}: data_offsets {offs!r} are not two offsets")
        entries.append((offs[0], offs[1], name, dtype, shape))
    # The reference: sorted by begin, each starts where the previous ended,
    # each spans exactly its elements, the last ends at the end of the file.
    entries.sort()
    pos = 0
    tensors = {}
    for begin, end, name, dtype, shape in entries:
        if begin != pos:
            raise Invalid(f"tensor {name!r}: data_offsets [{begin},{end}] do not start at {pos} "
                          f"({'overlap' if begin < pos else 'gap'})")
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if end - begin != count * DTYPES[dtype][1]:
            raise Invalid(f"tensor {name!r}: data_offsets span {end - begin} bytes, "
                          f"shape {shape} of {dtype} needs {count * DTYPES[dtype][1]}")
        if end > len(data):
            raise Invalid(f"tensor {name!r}: data_offsets end {end} beyond the data section "
                          f"({len(data)} bytes): file truncated")
        npt = DTYPES[dtype][0]
        if npt is not None:
            arr = np.frombuffer(data[begin:end], dtype=np.dtype(npt).newbyteorder("<"))
            tensors[name] = arr.reshape(shape)
        pos = end
    if pos != len(data):
        raise Invalid(f"data section is {len(data)} bytes, the tensors cover {pos} "
                      f"({len(data) - pos} trailing bytes)")
    order = [e[2] for e in entries]
    return meta, tensors, order, header


def check_mnistd(header, tensors):
    want = dict(MNISTD_TENSORS)
    for name in header:
        if name not in want:
            raise Invalid(f"unknown tensor {name!r} for mnistd")
    for name, shape in MNISTD_TENSORS:
        if name not in header:
            raise Invalid(f"missing tensor {name!r}")
        if header[name]["dtype"] != "F32":
            raise Invalid(f"tensor {name!r}: dtype {header[name]['dtype']}, expected F32")
        if header[name]["shape"] != shape:
            raise Invalid(f"tensor {name!r}: shape {header[name]['shape']}, expected {shape}")
        if not np.all(np.isfinite(tensors[name])):
            raise Invalid(f"tensor {name!r} holds NaN or infinite values")


def fnv1a(b):
    h = 0xcbf29ce484222325
    # Vectorising FNV is not possible; 373 KB in pure Python takes ~0.1 s.
    for byte in b:
        h = ((h ^ byte) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def rewrite(path, meta, tensors):
    """Serialises like safetensors' Python/Rust writer: tensors ordered by
    dtype alignment (descending) then name, __metadata__ first, header padded
    with spaces to a multiple of 8."""
    names = sorted(tensors, key=lambda k: (-tensors[k].dtype.itemsize, k))
    header = {}
    if meta is not None:
        header["__metadata__"] = meta
    off = 0
    inv = {v[0]: k for k, v in DTYPES.items() if v[0] is not None}
    for k in names:
        a = tensors[k]
        header[k] = {"dtype": inv[a.dtype.type], "shape": list(a.shape),
                     "data_offsets": [off, off + a.nbytes]}
        off += a.nbytes
    h = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for k in names:
            f.write(np.ascontiguousarray(tensors[k]).astype(tensors[k].dtype.newbyteorder("<"))
                    .tobytes())


def compare_with_library(path, tensors):
    """Loads with the safetensors package when it is installed; returns a
    line for the report."""
    try:
        from safetensors.numpy import load_file
    except ImportError:
        return "safetensors package not installed: checked against the reference's rules only"
    ref = load_file(path)
    if set(ref) != set(tensors):
        raise Invalid(f"safetensors.numpy.load_file sees tensors {sorted(ref)}, we see {sorted(tensors)}")
    for k in ref:
        if ref[k].dtype != tensors[k].dtype or ref[k].shape != tensors[k].shape or \
                ref[k].tobytes() != tensors[k].tobytes():
            raise Invalid(f"tensor {k!r} differs from safetensors.numpy.load_file")
    return "safetensors.numpy.load_file agrees on every tensor"


def main(argv):
    args = argv[1:]
    if not args or args[0].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    path, opts = args[0], args[1:]
    out = None
    if "--rewrite" in opts:
        i = opts.index("--rewrite")
        if i + 1 >= len(opts):
            print("--rewrite needs a file name", file=sys.stderr)
            return 2
        out = opts[i + 1]
    try:
        with open(path, "rb") as f:
            buf = f.read()
    except OSError as e:
        print(f"{path}: {e.strerror}", file=sys.stderr)
        return 1
    try:
        meta, tensors, order, header = parse(buf)
        if "--mnistd" in opts:
            check_mnistd(header, tensors)
        lib = compare_with_library(path, tensors)
    except Invalid as e:
        print(f"{path}: invalid: {e}", file=sys.stderr)
        return 1
    if "--fnv" in opts:
        for name, shape in MNISTD_TENSORS:
            if name in tensors:
                print(f"tensor {name} [{','.join(map(str, shape))}] "
                      f"fnv1a={fnv1a(tensors[name].tobytes()):016x}")
    else:
        print(f"{path}: valid safetensors, {len(tensors)} tensors, "
              f"{sum(t.size for t in tensors.values())} elements")
        for name in order:
            t = tensors[name]
            print(f"  {name:14s} {header[name]['dtype']} {list(t.shape)}  "
                  f"offsets {header[name]['data_offsets']}")
        for k, v in (meta or {}).items():
            print(f"  meta {k} = {v!r}")
        print(f"  {lib}")
    if out:
        rewrite(out, meta, tensors)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
