"""mnistd checkpoints against Hugging Face's safetensors library (the PyPI
package, run from build/venv-test).

  safetensors_lib.py show FILE
      loads FILE with safetensors.numpy.load_file and prints the lines
      `ckpt_tool show` prints for it: "meta KEY=VALUE" (sorted by key) and
      "tensor NAME [SHAPE] fnv1a=HEX" in mnistd's tensor order
  safetensors_lib.py save FILE OUT KIND
      loads FILE with the library and writes OUT with
      safetensors.numpy.save_file (the library's tensor order and padding):
        same       the same tensors, other metadata
        nometa     the same tensors, no __metadata__ at all
        f64        every tensor as F64
        nchw       conv weights in PyTorch's (OC, IC, KH, KW) layout
        extra      one tensor more ("fc3.weight")
Exit status 0, or 1 with the reason on stderr.
"""
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

ORDER = ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "conv3.weight",
         "conv3.bias", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]


def fnv1a(b):
    h = 0xcbf29ce484222325
    for byte in b:
        h = ((h ^ byte) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def show(path):
    tensors = load_file(path)
    with safe_open(path, framework="numpy") as f:
        meta = f.metadata() or {}
    for k in sorted(meta):
        print(f"meta {k}={meta[k]}")
    for name in ORDER + sorted(set(tensors) - set(ORDER)):
        t = tensors[name]
        le = t.astype(t.dtype.newbyteorder("<"), copy=False)
        print(f"tensor {name} [{','.join(map(str, t.shape))}] fnv1a={fnv1a(le.tobytes()):016x}")


def save(path, out, kind):
    t = load_file(path)
    meta = {"format": "np", "written_by": "safetensors.numpy.save_file"}
    if kind == "nometa":
        meta = None
    elif kind == "f64":
        t = {k: v.astype(np.float64) for k, v in t.items()}
    elif kind == "nchw":
        t = {k: (np.ascontiguousarray(v.transpose(0, 3, 1, 2)) if v.ndim == 4 else v)
             for k, v in t.items()}
    elif kind == "extra":
        t["fc3.weight"] = np.zeros((10, 10), dtype=np.float32)
    elif kind != "same":
        print(f"unknown kind {kind}", file=sys.stderr)
        return 1
    save_file(t, out, metadata=meta)
    return 0


def main(argv):
    if len(argv) == 3 and argv[1] == "show":
        show(argv[2])
        return 0
    if len(argv) == 5 and argv[1] == "save":
        return save(argv[2], argv[3], argv[4])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
