"""ONNX Runtime on our model exported to ONNX (scripts/export_onnx.py), on 2
threads, measured the way bench/bench_net.c measures ours. Prints
"onnx.<key>=<value>" lines.

    MNISTD_DATA=dir build/venv-bench/bin/python bench/onnx_bench.py MODEL.onnx OURS.bin

OURS.bin: our probabilities for the 10,000 test images (bench_net --probs).
The run fails (exit 1, the reason on stderr) unless ONNX Runtime predicts
the same digit as mnistd for every test image.
Figures: infer_images_per_s (batch 64, median of timed rounds of 120
batches), latency_us_median and latency_us_p99 (one image per call).
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mnist_idx  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("ours")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--latency-calls", type=int, default=3000)
    args = ap.parse_args()

    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(args.model, so, providers=["CPUExecutionProvider"])
    x, y = mnist_idx.load(mnist_idx.data_dir(), "t10k")
    x = (x.astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)

    # Agreement with mnistd on every test image.
    probs = np.concatenate([sess.run(None, {"image": x[i:i + 500]})[0]
                            for i in range(0, x.shape[0], 500)])
    ours = np.fromfile(args.ours, dtype="<f4").reshape(-1, 10)
    if ours.shape != probs.shape:
        print(f"onnx_bench: {args.ours} holds {ours.shape[0]} images, ONNX Runtime ran {probs.shape[0]}",
              file=sys.stderr)
        return 1
    mism = int((probs.argmax(1) != ours.argmax(1)).sum())
    print("onnx.version=%s" % ort.__version__)
    print("onnx.threads=%d" % args.threads)
    print("onnx.images_compared=%d" % probs.shape[0])
    print("onnx.prediction_mismatches=%d" % mism)
    print("onnx.max_abs_prob_diff=%.3g" % float(np.abs(probs - ours).max()))
    print("onnx.test_accuracy=%.4f" % float((probs.argmax(1) == y).mean()))
    sys.stdout.flush()
    if mism:
        print(f"onnx_bench: ONNX Runtime and mnistd disagree on {mism} of {probs.shape[0]} test images",
              file=sys.stderr)
        return 1

    batch, per_round = 64, 120
    nb = x.shape[0] // batch
    for i in range(20):
        sess.run(None, {"image": x[(i % nb) * batch:(i % nb + 1) * batch]})
    ips = []
    for r in range(args.rounds):
        t0 = time.perf_counter()
        for i in range(per_round):
            b = (r * per_round + i) % nb
            sess.run(None, {"image": x[b * batch:(b + 1) * batch]})
        ips.append(per_round * batch / (time.perf_counter() - t0))
    singles = [np.ascontiguousarray(x[i:i + 1]) for i in range(min(args.latency_calls, x.shape[0]))]
    for i in range(200):
        sess.run(None, {"image": singles[i % len(singles)]})
    lat = []
    for i in range(args.latency_calls):
        xi = singles[i % len(singles)]
        t0 = time.perf_counter()
        sess.run(None, {"image": xi})
        lat.append(time.perf_counter() - t0)
    lat.sort()
    print("onnx.infer_images_per_s=%.0f" % statistics.median(ips))
    print("onnx.latency_us_median=%.1f" % (statistics.median(lat) * 1e6))
    print("onnx.latency_us_p99=%.1f" % (lat[max(0, int(np.ceil(0.99 * len(lat))) - 1)] * 1e6))
    return 0


if __name__ == "__main__":
    sys.exit(main())
