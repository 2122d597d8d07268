#!/usr/bin/python3
"""The mnistd network in PyTorch, measured the way bench/bench_net.c measures
ours, on the same MNIST files and machine. Prints "torch.<key>=<value>" lines
(--prefix changes "torch").

    MNISTD_DATA=dir /usr/bin/python3 bench/torch_bench.py [--epochs N] [--recipe]
    MNISTD_DATA=dir build/venv-bench/bin/python bench/torch_bench.py --prefix torch2

Runs on Debian's python3-torch (1.13) and on PyTorch 2 from PyPI in
build/venv-bench (scripts/deps.sh bench installs both).

The network: Conv2d(1,32,3) relu, MaxPool 2, Conv2d(32,64,3) relu, MaxPool 2,
Conv2d(64,64,3) relu, Flatten, Linear(576,64) relu, Linear(64,10), softmax in
the loss (cross-entropy on logits); glorot-uniform weights and zero biases as
Keras initialises them; Adam(lr 1e-3, betas (0.9, 0.999), eps 1e-7); batch
64; the first 48,000 training images train, the last 12,000 (20%) validate,
as Keras's validation_split does; the training part is reshuffled each epoch.
It runs in NCHW with torch's own Flatten, the way a PyTorch user writes it;
torch.set_num_threads(2) (both cores of these machines).

Figures:
  train_samples_per_s  epochs * 48,000 / seconds of the epochs, each with its
                       validation pass (default one epoch);
  infer_images_per_s   batch 64, eval mode, no_grad, median of timed rounds;
  latency_us_median    one image per call (and p99);
  with --recipe: 5 epochs, then the 10,000 test images: recipe_seconds
  (loading included, as ours) and test_accuracy.
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mnist_idx  # noqa: E402

PREFIX = "torch"   # of the printed keys; --prefix changes it


def load(dirname, which):
    x, y = mnist_idx.load(dirname, which)
    xt = torch.from_numpy(x.astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    return xt, torch.from_numpy(y.astype(np.int64))


def make_model():
    m = nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3), nn.ReLU(),
        nn.Flatten(),
        nn.Linear(576, 64), nn.ReLU(),
        nn.Linear(64, 10))
    for layer in m:
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(layer.weight)   # Keras glorot_uniform
            nn.init.zeros_(layer.bias)
    return m


def evaluate(model, x, y, batch=256):
    model.eval()
    loss, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, x.shape[0], batch):
            out = model(x[i:i + batch])
            loss += F.cross_entropy(out, y[i:i + batch], reduction="sum").item()
            correct += (out.argmax(1) == y[i:i + batch]).sum().item()
    return loss / x.shape[0], correct / x.shape[0]


def train(model, xtr, ytr, xval, yval, epochs, seed, batch=64):
    """Keras-like fit: reshuffle each epoch, validate after each epoch.
    Returns (seconds, last validation accuracy)."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    gen = torch.Generator().manual_seed(seed)
    n = xtr.shape[0]
    val_acc = float("nan")
    t0 = time.perf_counter()
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, batch):
            idx = perm[i:i + batch]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
            loss.backward()
            opt.step()
        _, val_acc = evaluate(model, xval, yval)
    return time.perf_counter() - t0, val_acc


def bench_infer(model, xte, rounds, calls):
    model.eval()
    batch, per_round = 64, 120
    nb = xte.shape[0] // batch
    with torch.no_grad():
        for i in range(20):
            model(xte[(i % nb) * batch:(i % nb + 1) * batch])
        ips = []
        for r in range(rounds):
            t0 = time.perf_counter()
            for i in range(per_round):
                b = (r * per_round + i) % nb
                model(xte[b * batch:(b + 1) * batch])
            ips.append(per_round * batch / (time.perf_counter() - t0))
        singles = [xte[i:i + 1] for i in range(min(calls, xte.shape[0]))]
        for i in range(200):
            model(singles[i % len(singles)])
        lat = []
        for i in range(calls):
            xi = singles[i % len(singles)]
            t0 = time.perf_counter()
            model(xi)
            lat.append(time.perf_counter() - t0)
    lat.sort()
    p99 = lat[max(0, int(np.ceil(0.99 * len(lat))) - 1)]
    return statistics.median(ips), statistics.median(lat), p99


def main():
    ap = argparse.ArgumentParser(description="the mnistd network in PyTorch, timed")
    ap.add_argument("--epochs", type=int, default=1,
                    help="epochs to time for train_samples_per_s (default 1)")
    ap.add_argument("--recipe", action="store_true",
                    help="run the full recipe: 5 epochs (unless --epochs given) then the test set")
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-train", action="store_true")
    ap.add_argument("--no-infer", action="store_true")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--latency-calls", type=int, default=3000)
    ap.add_argument("--prefix", default="torch",
                    help="prefix of the printed keys (default torch)")
    args = ap.parse_args()
    global PREFIX
    PREFIX = args.prefix
    if args.recipe and "--epochs" not in sys.argv:
        args.epochs = 5
    if args.epochs < 1 or args.reps < 1 or args.rounds < 1 or args.latency_calls < 10:
        ap.error("epochs, reps, rounds must be >= 1 and latency-calls >= 10")
    data = os.environ.get("MNISTD_DATA")
    if not data:
        print("torch_bench: set MNISTD_DATA to the directory holding the MNIST IDX files",
              file=sys.stderr)
        return 2

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    xtrain, ytrain = load(data, "train")
    xte, yte = load(data, "t10k")
    load_s = time.perf_counter() - t0
    split = int(xtrain.shape[0] * (1 - 0.2))
    xtr, ytr = xtrain[:split], ytrain[:split]
    xval, yval = xtrain[split:], ytrain[split:]
    print(PREFIX + ".version=%s" % torch.__version__)
    print(PREFIX + ".threads=%d" % torch.get_num_threads())
    print(PREFIX + ".load_seconds=%.3f" % load_s)
    for rep in range(args.reps):
        print(PREFIX + ".rep=%d" % (rep + 1))
        torch.manual_seed(args.seed + rep)
        model = make_model()
        if not args.no_train:
            secs, val_acc = train(model, xtr, ytr, xval, yval, args.epochs, args.seed + rep)
            print(PREFIX + ".epochs=%d" % args.epochs)
            print(PREFIX + ".train_samples=%d" % xtr.shape[0])
            print(PREFIX + ".train_seconds=%.3f" % secs)
            print(PREFIX + ".train_samples_per_s=%.0f" % (args.epochs * xtr.shape[0] / secs))
            print(PREFIX + ".val_accuracy=%.4f" % val_acc)
            if args.recipe:
                t1 = time.perf_counter()
                test_loss, test_acc = evaluate(model, xte, yte)
                print(PREFIX + ".eval_seconds=%.3f" % (time.perf_counter() - t1))
                print(PREFIX + ".recipe_seconds=%.3f" % (load_s + secs + time.perf_counter() - t1))
                print(PREFIX + ".test_loss=%.4f" % test_loss)
                print(PREFIX + ".test_accuracy=%.4f" % test_acc)
            sys.stdout.flush()
        if not args.no_infer:
            ips, med, p99 = bench_infer(model, xte, args.rounds, args.latency_calls)
            print(PREFIX + ".infer_images_per_s=%.0f" % ips)
            print(PREFIX + ".latency_us_median=%.1f" % (med * 1e6))
            print(PREFIX + ".latency_us_p99=%.1f" % (p99 * 1e6))
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
