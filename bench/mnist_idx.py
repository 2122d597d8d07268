"""The MNIST IDX files (plain or .gz) of $MNISTD_DATA as numpy arrays, for
the Python peers of `make bench`."""
import gzip
import os

import numpy as np


def read_idx(path, magic, ndim):
    """Reads an IDX file (plain or .gz); checks the magic and the size."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 + 4 * ndim or int.from_bytes(data[:4], "big") != magic:
        raise ValueError("%s: not an IDX file with magic 0x%08x" % (path, magic))
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    off = 4 + 4 * ndim
    if len(data) - off != int(np.prod(dims)):
        raise ValueError("%s: payload size does not match the header" % path)
    return np.frombuffer(data, dtype=np.uint8, offset=off).reshape(dims)


def find(dirname, stem):
    for name in (stem, stem + ".gz"):
        p = os.path.join(dirname, name)
        if os.path.exists(p):
            return p
    raise FileNotFoundError("%s: no %s or %s.gz" % (dirname, stem, stem))


def load(dirname, which):
    """(images uint8 [n, 28, 28], labels uint8 [n]) of "train" or "t10k"."""
    x = read_idx(find(dirname, which + "-images-idx3-ubyte"), 0x803, 3)
    y = read_idx(find(dirname, which + "-labels-idx1-ubyte"), 0x801, 1)
    if x.shape[0] != y.shape[0] or x.shape[1:] != (28, 28):
        raise ValueError("%s: %s images and labels do not match" % (dirname, which))
    return x, y


def data_dir():
    d = os.environ.get("MNISTD_DATA")
    if not d:
        raise SystemExit("set MNISTD_DATA to the directory holding the MNIST IDX files")
    return d
