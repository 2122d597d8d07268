"""The peers' table and plots from one `make bench` run's raw lines.

    build/venv-bench/bin/python bench/report.py RESULTS.txt OUTDIR

Reads "KEY=VALUE" lines (ours.*, keras.*, torch.*, torch2.*, onnx.*,
serve.PEER.CONNS.*), takes the median of each key over the repetitions and
prints Markdown tables (training, inference, serving), the targets as ratios
of this run, and writes OUTDIR/bench-throughput.png and
OUTDIR/bench-latency.png. Missing peers are left out.
"""
import os
import platform
import statistics
import subprocess
import sys
from collections import defaultdict


def load(path):
    vals, text = defaultdict(list), {}
    for line in open(path):
        line = line.strip()
        if "=" not in line or line.startswith("#"):
            continue
        k, v = line.split("=", 1)
        try:
            f = float(v)
        except ValueError:
            text[k] = v
            continue
        vals[k].append(f)
    return {k: statistics.median(v) for k, v in vals.items()}, text, vals


def machine():
    cpu = "unknown CPU"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                cpu = line.split(":", 1)[1].strip()
        flags = open("/proc/cpuinfo").read()
        isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    except OSError:
        isa = "?"
    return f"{cpu}, {os.cpu_count()} cores ({isa}), {platform.system()} {platform.release()}"


def fmt(v, spec="{:,.0f}"):
    return "-" if v is None else spec.format(v)


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    m, text, allv = load(argv[1])
    g = m.get
    out = []
    p = out.append
    p(f"Machine: {machine()}; shared with other jobs, so every figure is the median of the run's "
      f"repetitions ({int(len(allv.get('ours.recipe_seconds', [])) or 1)} of ours) and every ratio is taken in this run.")
    p("")
    p("| training | recipe, end to end (s) | training samples/s | test accuracy |")
    p("|---|---|---|---|")
    p(f"| mnistd | {fmt(g('ours.recipe_seconds'), '{:.1f}')} | {fmt(g('ours.train_samples_per_s'))} | "
      f"{fmt(g('ours.test_accuracy'), '{:.4f}')} |")
    if g("keras.fit_seconds"):
        p(f"| the Keras seed (TensorFlow {text.get('keras.version', '?')}, {g('keras.epochs'):.0f} epochs, fit "
          f"{g('keras.fit_seconds'):.1f} s) | {fmt(g('keras.recipe_seconds'), '{:.1f}')} | "
          f"{fmt(g('keras.train_samples_per_s'))} | {fmt(g('keras.test_accuracy'), '{:.4f}')} |")
    for pre, name in (("torch2", "PyTorch"), ("torch", "PyTorch")):
        if g(pre + ".train_samples_per_s"):
            rec = g(pre + ".recipe_seconds")
            est = "" if rec else " (est. from 1 epoch)"
            rec = rec or 5 * 48000 / g(pre + ".train_samples_per_s")
            p(f"| {name} {text.get(pre + '.version', '?')} | {rec:.1f}{est} | "
              f"{fmt(g(pre + '.train_samples_per_s'))} | {fmt(g(pre + '.test_accuracy'), '{:.4f}')} |")
    p("")
    p("| inference, 2 threads | images/s at batch 64 | one image, median (µs) | one image, p99 (µs) |")
    p("|---|---|---|---|")
    rows = [("mnistd", "ours"), (f"ONNX Runtime {text.get('onnx.version', '')}", "onnx"),
            (f"PyTorch {text.get('torch2.version', '')}", "torch2"),
            (f"PyTorch {text.get('torch.version', '')}", "torch")]
    for name, pre in rows:
        if g(pre + ".infer_images_per_s"):
            p(f"| {name} | {fmt(g(pre + '.infer_images_per_s'))} | "
              f"{fmt(g(pre + '.latency_us_median'), '{:.1f}')} | {fmt(g(pre + '.latency_us_p99'), '{:.1f}')} |")
    if g("keras.latency_us_median"):
        p(f"| Keras seed: model(x) / model.predict(x) | - | {g('keras.latency_us_median'):.0f} / "
          f"{g('keras.latency_us_predict'):.0f} | - |")
    if g("onnx.images_compared") is not None:
        p("")
        p(f"ONNX Runtime and mnistd predict the same digit on {int(g('onnx.images_compared')) - int(g('onnx.prediction_mismatches'))}"
          f" of {int(g('onnx.images_compared'))} test images (largest probability difference "
          f"{text.get('onnx.max_abs_prob_diff', g('onnx.max_abs_prob_diff'))}).")
    peers = [x for x in ("mnistd", "torchserve", "fastapi") if g(f"serve.{x}.64.rps")]
    names = {"mnistd": "mnistd", "torchserve": "TorchServe", "fastapi": "FastAPI + PyTorch"}
    if peers:
        p("")
        p("| serving, POST /predict of one PNG (wrk) | connections | requests/s | p50 (ms) | p99 (ms) | errors | resident memory (MB) |")
        p("|---|---|---|---|---|---|---|")
        for x in peers:
            for c in (1, 64):
                k = f"serve.{x}.{c}."
                p(f"| {names[x]} | {c} | {fmt(g(k + 'rps'))} | {fmt(g(k + 'p50_us') / 1000, '{:.2f}')} | "
                  f"{fmt(g(k + 'p99_us') / 1000, '{:.2f}')} | {fmt(g(k + 'errors'))} | {fmt(g(k + 'rss_mb'), '{:.1f}')} |")
    p("")
    p("| target | this run | |")
    p("|---|---|---|")

    def target(name, ratio, ok, detail):
        p(f"| {name} | {detail} | {'met' if ok else 'MISSED'} |")

    if g("keras.recipe_seconds") and g("ours.recipe_seconds"):
        r = g("keras.recipe_seconds") / g("ours.recipe_seconds")
        # Ours against the seed's: a speed bought with accuracy would show
        # as a negative difference; above the seed's is not a miss.
        d = (g("ours.test_accuracy") - g("keras.test_accuracy")) * 100
        target("recipe >= 4x faster than the Keras seed", r, r >= 4,
               f"{r:.2f}x (fit alone: {g('keras.fit_seconds') / g('ours.train_seconds'):.2f}x)")
        target("test accuracy no more than 0.3 points below the seed's", d, d >= -0.3,
               f"{d:+.2f} points ({g('ours.test_accuracy'):.4f} against {g('keras.test_accuracy'):.4f})")
    if g("onnx.infer_images_per_s") and g("ours.infer_images_per_s"):
        r = g("ours.infer_images_per_s") / g("onnx.infer_images_per_s")
        target("batch-64 images/s >= ONNX Runtime's", r, r >= 1, f"{r:.2f}x")
        r = g("ours.latency_us_median") / g("onnx.latency_us_median")
        target("batch-1 latency <= ONNX Runtime's", r, r <= 1, f"{r:.2f}x its latency")
    if g("serve.torchserve.64.rps") and g("serve.mnistd.64.rps"):
        r = g("serve.mnistd.64.rps") / g("serve.torchserve.64.rps")
        target("req/s at 64 connections >= 10x TorchServe's", r, r >= 10, f"{r:.1f}x")
        r = g("serve.mnistd.64.p99_us") / g("serve.torchserve.64.p99_us")
        target("p99 at 64 connections below TorchServe's", r, r < 1, f"{r:.3f}x its p99")
    print("\n".join(out))
    plots(m, text, argv[2], peers, names)
    return 0


def plots(m, text, outdir, peers, names):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    g = m.get
    inf = [(n, pre) for n, pre in (("mnistd", "ours"), ("ONNX Runtime", "onnx"),
                                    (f"PyTorch {text.get('torch2.version', '2')}".split("+")[0], "torch2"),
                                    (f"PyTorch {text.get('torch.version', '1.13')}".split("+")[0], "torch"))
           if g(pre + ".infer_images_per_s")]
    colors = {"mnistd": "#1f77b4"}

    def bars(ax, labels, values, title, unit, log=False):
        bs = ax.bar(labels, values, color=[colors.get(lb, "#999999") for lb in labels])
        ax.set_title(title)
        ax.set_ylabel(unit)
        if log:
            ax.set_yscale("log")
        for b, v in zip(bs, values):
            ax.annotate(f"{v:,.0f}" if v >= 100 else f"{v:.1f}", (b.get_x() + b.get_width() / 2, v),
                        ha="center", va="bottom", fontsize=9)
        ax.tick_params(axis="x", labelrotation=15)

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8))
    bars(axes[0], [n for n, _ in inf], [g(pre + ".infer_images_per_s") for _, pre in inf],
         "Inference, batch 64, 2 threads", "images/s")
    for i, c in enumerate((1, 64)):
        bars(axes[1 + i], [names[x] for x in peers], [g(f"serve.{x}.{c}.rps") for x in peers],
             f"Serving POST /predict, {c} connection{'s' if c > 1 else ''}", "requests/s (log)", log=True)
    fig.suptitle("Throughput per peer (higher is better), medians of one make bench run")
    fig.tight_layout()
    fig.savefig(os.path.join(outdir, "bench-throughput.png"), dpi=80)

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8))
    bars(axes[0], [n for n, _ in inf], [g(pre + ".latency_us_median") for _, pre in inf],
         "One image, median, 2 threads", "µs")
    for i, c in enumerate((1, 64)):
        ax = axes[1 + i]
        xs = range(len(peers))
        p50 = [g(f"serve.{x}.{c}.p50_us") / 1000 for x in peers]
        p99 = [g(f"serve.{x}.{c}.p99_us") / 1000 for x in peers]
        ax.bar([x - 0.2 for x in xs], p50, 0.4, label="p50", color="#1f77b4")
        ax.bar([x + 0.2 for x in xs], p99, 0.4, label="p99", color="#ff7f0e")
        ax.set_xticks(list(xs), [names[x] for x in peers])
        ax.set_yscale("log")
        ax.set_ylabel("ms (log)")
        ax.set_title(f"Serving latency, {c} connection{'s' if c > 1 else ''}")
        ax.legend()
    fig.suptitle("Latency per peer (lower is better), medians of one make bench run")
    fig.tight_layout()
    fig.savefig(os.path.join(outdir, "bench-latency.png"), dpi=80)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
