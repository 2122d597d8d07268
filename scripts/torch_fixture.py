#!/usr/bin/python3
"""Writes tests/fixtures/torch_ref.bin: the reference numbers of the mnistd
network computed by PyTorch, for tests/unit/test_torch_agree.c.

Run by developers (CI only reads the committed fixture):

    /usr/bin/python3 scripts/torch_fixture.py [--out tests/fixtures/torch_ref.bin]

Needs Debian's python3-torch and python3-numpy. The output is deterministic
(fixed seed, float64 arithmetic), so rerunning it rewrites the same file.

What it computes: the network of model/net.h (conv 3x3 32 relu, maxpool 2,
conv 3x3 64 relu, maxpool 2, conv 3x3 64 relu, flatten in NHWC (h, w, c)
order, dense 64 relu, dense 10, softmax) with deterministic glorot-uniform
weights and nonzero biases, on a batch of 8 synthetic 28x28 images (pen
strokes on black plus two noise images) with labels. Everything is computed
in float64 and stored as float32:
  - logits, softmax probabilities, mean sparse categorical cross-entropy;
  - the gradient of that loss with respect to every parameter;
  - the parameters after ONE Adam step with Keras semantics (lr 1e-3,
    beta1 0.9, beta2 0.999, eps 1e-7, t = 1), written out by hand;
  - for the small tensors (biases and fc2.weight): the gradient at the
    parameters after that step, the loss there, and the parameters after a
    second Adam step (t = 2) with that gradient, to test the bias correction
    and the moment updates beyond the first step.
Weights are multiples of 2^-16, so they are exact in float32 and can be
stored as int16 (keeps the file under 1 MB).

File format (all little-endian):
    8 bytes   magic "MNTREF01"
    u32       number of tensors
    then, per tensor:
      u32     name length L, then L bytes of name (ASCII, no NUL)
      u32     dtype: 0 = float32, 1 = int16 scaled (value = q * scale),
                     2 = uint8
      u32     ndim (1..4), then ndim x u32 dims
      f32     scale (dtype 1 only)
      data    prod(dims) elements of the dtype, row-major
Tensor names:
    input (B,28,28,1) f32      labels (B) u8
    param.<name>   weights in OUR layout (net_tensors[] names and shapes:
                   conv (OC,KH,KW,IC), dense (OUT,IN)), int16 scaled
    logits (B,10)  probs (B,10)  loss (1)
    grad.<name>    gradient of the mean loss, our layout
    adam1.<name>   parameters after one Adam step (t = 1)
    grad2.<name>, adam2.<name>, loss2 (1): second point, small tensors only
"""

import argparse
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

MAGIC = b"MNTREF01"
SEED = 20240917
BATCH = 8
WSCALE = 2.0 ** -16          # weights are q * 2^-16, q int16
LR, B1, B2, EPS = 1e-3, 0.9, 0.999, 1e-7

# Our parameter tensors, in the order and layout of net_tensors[] (model/net.h).
# (name, shape in our layout, fan_in, fan_out); fan 0 for biases.
TENSORS = [
    ("conv1.weight", (32, 3, 3, 1), 9, 288),
    ("conv1.bias", (32,), 0, 0),
    ("conv2.weight", (64, 3, 3, 32), 288, 576),
    ("conv2.bias", (64,), 0, 0),
    ("conv3.weight", (64, 3, 3, 64), 576, 576),
    ("conv3.bias", (64,), 0, 0),
    ("fc1.weight", (64, 576), 576, 64),
    ("fc1.bias", (64,), 0, 0),
    ("fc2.weight", (10, 64), 64, 10),
    ("fc2.bias", (10,), 0, 0),
]
SMALL = 1000   # tensors with at most this many elements get step-2 data


def make_params(rng):
    """Deterministic glorot-uniform kernels and nonzero biases (so the bias
    paths are tested, and conv outputs over black regions are not all zero),
    quantized to multiples of WSCALE. Returns {name: int16 array}."""
    out = {}
    for name, shape, fan_in, fan_out in TENSORS:
        if fan_in:
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            w = rng.uniform(-limit, limit, size=shape)
        else:
            # Mostly positive, so that fewer units are dead at this point
            # and more of the backward paths carry a nonzero gradient.
            w = rng.uniform(-0.05, 0.15, size=shape)
        q = np.round(w / WSCALE)
        assert np.abs(q).max() < 32767
        out[name] = q.astype(np.int16)
    return out


def stroke_image(rng):
    """A 28x28 float image in [0, 1]: a few thick anti-aliased pen strokes
    on black, like an MNIST digit (many exact zeros, a bright core)."""
    yy, xx = np.mgrid[0:28, 0:28].astype(np.float64)
    img = np.zeros((28, 28))
    for _ in range(rng.integers(2, 4)):
        p0 = rng.uniform(5, 23, size=2)
        p1 = rng.uniform(5, 23, size=2)
        d = p1 - p0
        t = ((yy - p0[0]) * d[0] + (xx - p0[1]) * d[1]) / max(d @ d, 1e-9)
        t = np.clip(t, 0, 1)
        dist = np.hypot(yy - (p0[0] + t * d[0]), xx - (p0[1] + t * d[1]))
        img = np.maximum(img, np.clip(2.0 - dist, 0, 1))
    # Quantize like real data: u8 / 255.
    return np.round(img * 255) / 255


def make_batch(rng):
    imgs = [stroke_image(rng) for _ in range(BATCH - 2)]
    imgs.append(np.round(rng.uniform(0, 1, (28, 28)) * 255) / 255)
    imgs.append(np.round(rng.uniform(0, 0.3, (28, 28)) * 255) / 255)
    x = np.stack(imgs).reshape(BATCH, 28, 28, 1).astype(np.float32)
    y = rng.integers(0, 10, size=BATCH).astype(np.uint8)
    return x, y


def to_torch_layout(name, a):
    """Our layout -> torch's: conv (OC,KH,KW,IC) -> (OC,IC,KH,KW); dense
    (OUT,IN) and biases are the same."""
    if a.ndim == 4:
        return a.transpose(0, 3, 1, 2)
    return a


def to_our_layout(name, a):
    if a.ndim == 4:
        return a.transpose(0, 2, 3, 1)
    return a


def forward(p, x):
    """The network in torch, float64. p: {name: torch tensor, torch layout};
    x: (B,28,28,1) NHWC. Returns logits (B,10)."""
    h = x.permute(0, 3, 1, 2)                       # NHWC -> NCHW
    h = F.max_pool2d(F.relu(F.conv2d(h, p["conv1.weight"], p["conv1.bias"])), 2)
    h = F.max_pool2d(F.relu(F.conv2d(h, p["conv2.weight"], p["conv2.bias"])), 2)
    h = F.relu(F.conv2d(h, p["conv3.weight"], p["conv3.bias"]))
    # Flatten in OUR (h, w, c) order, as Keras's channels_last Flatten does.
    h = h.permute(0, 2, 3, 1).reshape(h.shape[0], -1)
    h = F.relu(F.linear(h, p["fc1.weight"], p["fc1.bias"]))
    return F.linear(h, p["fc2.weight"], p["fc2.bias"])


def numpy_logits(p, x):
    """An independent NHWC forward pass in numpy on OUR layout, to check the
    layout conversions of forward() (p: {name: float64 array, our layout})."""
    def conv(h, w, b):      # h (B,H,W,C), w (OC,KH,KW,IC)
        B, H, W, _ = h.shape
        oh, ow = H - 2, W - 2
        out = np.zeros((B, oh, ow, w.shape[0]))
        for i in range(3):
            for j in range(3):
                out += np.einsum("bhwc,oc->bhwo", h[:, i:i + oh, j:j + ow, :],
                                 w[:, i, j, :])
        return np.maximum(out + b, 0)

    def pool(h):
        B, H, W, C = h.shape
        h = h[:, :H // 2 * 2, :W // 2 * 2, :]
        return h.reshape(B, H // 2, 2, W // 2, 2, C).max(axis=(2, 4))

    h = pool(conv(x, p["conv1.weight"], p["conv1.bias"]))
    h = pool(conv(h, p["conv2.weight"], p["conv2.bias"]))
    h = conv(h, p["conv3.weight"], p["conv3.bias"]).reshape(x.shape[0], -1)
    h = np.maximum(h @ p["fc1.weight"].T + p["fc1.bias"], 0)
    return h @ p["fc2.weight"].T + p["fc2.bias"]


def loss_and_grads(params64, x64, y):
    """params64: {name: float64 numpy, our layout}. Returns (logits, probs,
    loss, grads in our layout), all float64 numpy."""
    tp = {n: torch.tensor(np.ascontiguousarray(to_torch_layout(n, a)),
                          dtype=torch.float64, requires_grad=True)
          for n, a in params64.items()}
    logits = forward(tp, torch.tensor(x64, dtype=torch.float64))
    loss = F.cross_entropy(logits, torch.tensor(y.astype(np.int64)))
    loss.backward()
    grads = {n: to_our_layout(n, tp[n].grad.numpy()) for n in tp}
    probs = torch.softmax(logits, dim=1)
    return (logits.detach().numpy(), probs.detach().numpy(),
            float(loss.item()), grads)


def adam_step(p, g, m, v, t):
    """Keras Adam, float64, in place on numpy arrays p, m, v."""
    m[...] = B1 * m + (1 - B1) * g
    v[...] = B2 * v + (1 - B2) * g * g
    lr_t = LR * np.sqrt(1 - B2 ** t) / (1 - B1 ** t)
    p[...] = p - lr_t * m / (np.sqrt(v) + EPS)


class Writer:
    def __init__(self):
        self.items = []

    def f32(self, name, a):
        a = np.ascontiguousarray(np.asarray(a, dtype=np.float32))
        self.items.append((name, 0, a.shape, None, a.astype("<f4").tobytes()))

    def i16(self, name, q, scale):
        q = np.ascontiguousarray(q.astype("<i2"))
        self.items.append((name, 1, q.shape, scale, q.tobytes()))

    def u8(self, name, a):
        a = np.ascontiguousarray(a.astype(np.uint8))
        self.items.append((name, 2, a.shape, None, a.tobytes()))

    def write(self, path):
        buf = bytearray(MAGIC)
        buf += struct.pack("<I", len(self.items))
        for name, dtype, shape, scale, data in self.items:
            nb = name.encode("ascii")
            buf += struct.pack("<I", len(nb)) + nb
            buf += struct.pack("<II", dtype, len(shape))
            buf += struct.pack("<%dI" % len(shape), *shape)
            if dtype == 1:
                buf += struct.pack("<f", scale)
            buf += data
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(buf)
        os.replace(tmp, path)
        return len(buf)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "tests",
                                                  "fixtures", "torch_ref.bin"))
    args = ap.parse_args()

    torch.use_deterministic_algorithms(True)
    rng = np.random.default_rng(SEED)
    q = make_params(rng)
    x, y = make_batch(rng)
    p0 = {n: q[n].astype(np.float64) * WSCALE for n in q}

    logits, probs, loss, g1 = loss_and_grads(p0, x.astype(np.float64), y)
    check = numpy_logits(p0, x.astype(np.float64))
    if np.abs(check - logits).max() > 1e-9:
        print("torch and numpy forward passes disagree: %g"
              % np.abs(check - logits).max(), file=sys.stderr)
        return 1

    p1 = {n: p0[n].copy() for n in p0}
    m = {n: np.zeros_like(p0[n]) for n in p0}
    v = {n: np.zeros_like(p0[n]) for n in p0}
    for n in p0:
        adam_step(p1[n], g1[n], m[n], v[n], 1)

    # Second point: the gradient at the float32 parameters after step 1 (what
    # the C side will hold), then step 2 on the float64 state.
    p1_32 = {n: p1[n].astype(np.float32).astype(np.float64) for n in p1}
    _, _, loss2, g2 = loss_and_grads(p1_32, x.astype(np.float64), y)
    p2 = {n: p1_32[n].copy() for n in p1}
    for n in p0:
        adam_step(p2[n], g2[n], m[n], v[n], 2)

    w = Writer()
    w.f32("input", x)
    w.u8("labels", y)
    for name, shape, _, _ in TENSORS:
        assert q[name].shape == shape
        w.i16("param." + name, q[name], WSCALE)
    w.f32("logits", logits)
    w.f32("probs", probs)
    w.f32("loss", [loss])
    for name, _, _, _ in TENSORS:
        w.f32("grad." + name, g1[name])
    for name, _, _, _ in TENSORS:
        w.f32("adam1." + name, p1[name])
    w.f32("loss2", [loss2])
    for name, shape, _, _ in TENSORS:
        if int(np.prod(shape)) <= SMALL:
            w.f32("grad2." + name, g2[name])
            w.f32("adam2." + name, p2[name])
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    size = w.write(args.out)
    args.out = os.path.relpath(args.out)
    print("wrote %s: %d bytes, loss %.6f -> %.6f after one Adam step, "
          "labels %s, predicted %s" % (args.out, size, loss, loss2,
                                       y.tolist(), logits.argmax(1).tolist()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
