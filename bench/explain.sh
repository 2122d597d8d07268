#!/usr/bin/env bash
# What one explanation costs: POST /explain (Integrated Gradients, the
# default 64 steps, and 256) against POST /predict, one request at a time
# on one keep-alive connection, for the same MNIST test digits as 28x28
# PNGs, on one daemon with the default settings (one explanation worker).
# BENCH_EXPLAIN_REPS rounds (default 3) run every form back to back, so
# that the noise of a shared machine hits all alike; the table gives the
# medians of milliseconds per request (the client's clock), of the compute
# time the answer reports (timing.compute_us: the explanation, or the
# forward pass of the prediction's batch), and the ratio of each to
# /predict's.
#
#   bench/explain.sh [requests per form and round, default 40]
# Env: MNISTD_BIN, MNISTD_DATA (the test digits), BENCH_EXPLAIN_REPS.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"
N=${1:-40}
REPS=${BENCH_EXPLAIN_REPS:-3}
case "$REPS$N" in *[!0-9]*) echo "bench/explain.sh: counts must be positive integers" >&2; exit 2 ;; esac
bench_setup bench-explain
[ -n "${MNISTD_DATA:-}" ] || { echo "bench/explain.sh: set MNISTD_DATA (the test digits)" >&2; exit 2; }
[ -x "$MKPNG" ] || { echo "bench/explain.sh: $MKPNG is missing (make bench builds it)" >&2; exit 2; }

for i in $(seq 0 19); do "$MKPNG" --mnist "$MNISTD_DATA" --index "$i" -o "$WORK/d$i.png"; done
bench_start "$WORK/daemon.log" "$BIN" --model "$ROOT/models/mnist-cnn.safetensors" || exit 1

python3 - "$WORK" "$PORT" "$N" "$REPS" <<'PY'
import http.client, json, statistics, sys, time
work, port, n, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
pngs = [open("%s/d%d.png" % (work, i), "rb").read() for i in range(20)]
conn = http.client.HTTPConnection("127.0.0.1", port)
forms = [("/predict", "/predict"), ("/explain, 64 steps (default)", "/explain"),
         ("/explain, 256 steps", "/explain?steps=256")]
def one(path, body):
    t0 = time.perf_counter()
    conn.request("POST", path, body, {"Content-Type": "image/png"})
    r = conn.getresponse()
    data = r.read()
    ms = (time.perf_counter() - t0) * 1e3
    if r.status != 200:
        sys.exit("bench/explain.sh: %s answered %d: %s" % (path, r.status, data[:200]))
    return ms, json.loads(data)["timing"]["compute_us"] / 1e3
for k in range(3):  # warm up
    for _, path in forms:
        one(path, pngs[k])
wall = {f: [] for f, _ in forms}
comp = {f: [] for f, _ in forms}
for rep in range(reps):
    for f, path in forms:
        w, c = zip(*(one(path, pngs[i % 20]) for i in range(n)))
        wall[f].append(statistics.median(w))
        comp[f].append(statistics.median(c))
med = lambda v: statistics.median(v)
pw, pc = med(wall["/predict"]), med(comp["/predict"])
print("%d round(s) of %d requests per form, one at a time; medians (the machine may be shared)" % (reps, n))
print("| request | ms per request | compute ms | ratio to /predict (request) | ratio (compute) |")
print("|---|---|---|---|---|")
for f, _ in forms:
    w, c = med(wall[f]), med(comp[f])
    print("| %s | %.3f | %.3f | %.1f | %.1f |" % (f, w, c, w / pw, c / pc))
PY
