#!/usr/bin/env bash
# Benchmark of the Open Inference Protocol (KServe v2) against POST /predict,
# with wrk (Debian package wrk) on loopback, one daemon with the default
# settings, at 64 connections with one image per request:
#   v2 binary FP32   one image per request in Triton's binary tensor form
#   v2 JSON FP32     one image per request, 784 numbers in JSON
#   /predict PNG     one 28x28 PNG per request
# and at 8 connections with 64 images per request (512 images in flight;
# 64 such connections would overflow the default --max-queue of 1024 and be
# refused 503 by design):
#   v2 binary x64, v2 JSON x64   (the JSON case is the one where number
#                    parsing could dominate)
# BENCH_V2_REPS rounds (default 3) run every form back to back, so that the
# noise of a shared machine hits all alike; the table gives medians of
# requests/s, microseconds of wall time per image (1e6 / images per second)
# and the ratio of images/s to /predict's. Then tritonclient's own latency
# for one image (sequential infer calls, FP32 binary, client-side clock;
# build/venv-test from scripts/deps.sh), and what parsing costs inside a
# 64-image request against the forward pass ($BUILD/bench/bench_oip).
#
#   bench/v2.sh [seconds per run, default 10]
# Env: MNISTD_BIN, MNISTD_DATA (for real digits; else a drawn bar), BENCH_V2_REPS.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"
DUR=${1:-10}
REPS=${BENCH_V2_REPS:-3}
case "$REPS" in ''|*[!0-9]*|0) echo "bench/v2.sh: BENCH_V2_REPS must be a positive integer" >&2; exit 2 ;; esac
command -v wrk >/dev/null || { echo "bench/v2.sh: wrk is not installed (scripts/deps.sh bench)" >&2; exit 1; }
bench_setup bench-v2
MODEL=$ROOT/models/mnist-cnn.safetensors

# The request bodies and a wrk script for each.
python3 - "$WORK" "${MNISTD_DATA:-}" <<'PY'
import gzip, json, os, struct, sys, zlib
work, data = sys.argv[1], sys.argv[2]
pix = None
if data:
    p = os.path.join(data, "t10k-images-idx3-ubyte")
    if os.path.exists(p) or os.path.exists(p + ".gz"):
        raw = (open(p, "rb") if os.path.exists(p) else gzip.open(p + ".gz", "rb")).read()
        pix = [raw[16 + i * 784:16 + (i + 1) * 784] for i in range(64)]
if pix is None:
    bar = bytes(255 if 12 <= x <= 15 and 4 <= y <= 23 else 0 for y in range(28) for x in range(28))
    pix = [bar] * 64
def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
rows = b"".join(b"\0" + pix[0][y * 28:(y + 1) * 28] for y in range(28))
png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 28, 28, 8, 0, 0, 0, 0))
       + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
def write(name, body, path, headers):
    open(os.path.join(work, name + ".body"), "wb").write(body)
    h = "".join('wrk.headers["%s"] = "%s"\n' % kv for kv in headers.items())
    open(os.path.join(work, name + ".lua"), "w").write(
        'local f = assert(io.open("%s", "rb"))\nwrk.method = "POST"\nwrk.path = "%s"\n'
        'wrk.body = f:read("*a")\nf:close()\n%s' % (os.path.join(work, name + ".body"), path, h))
def v2(n, binary):
    vals = [v / 255.0 for img in pix[:n] for v in img]
    inp = {"name": "input", "shape": [n, 28, 28, 1], "datatype": "FP32"}
    if binary:
        inp["parameters"] = {"binary_data_size": 4 * len(vals)}
        req = {"inputs": [inp], "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}}]}
        head = json.dumps(req).encode()
        return head + struct.pack("<%df" % len(vals), *vals), {"Inference-Header-Content-Length": str(len(head))}
    inp["data"] = [float("%.9g" % v) for v in vals]
    return json.dumps({"inputs": [inp]}).encode(), {"Content-Type": "application/json"}
for name, n, binary in (("v2bin1", 1, True), ("v2json1", 1, False), ("v2bin64", 64, True), ("v2json64", 64, False)):
    body, h = v2(n, binary)
    write(name, body, "/v2/models/mnist/infer", h)
write("png1", png, "/predict", {"Content-Type": "image/png"})
PY

bench_start "$WORK/daemon.log" "$BIN" --model "$MODEL"

# Every body must be answered 200 before it is timed.
for f in "$WORK"/*.lua; do
  n=$(basename "$f" .lua)
  path=$(sed -n 's/^wrk.path = "\(.*\)"$/\1/p' "$f")
  hdrs=()
  while IFS= read -r l; do hdrs+=(-H "$l"); done < <(sed -n 's/^wrk.headers\["\(.*\)"\] = "\(.*\)"$/\1: \2/p' "$f")
  code=$(curl -s -o /dev/null -w '%{http_code}' "${hdrs[@]}" --data-binary @"$WORK/$n.body" "http://127.0.0.1:$PORT$path")
  [ "$code" = 200 ] || { echo "bench/v2.sh: $n answered $code" >&2; exit 1; }
done

FORMS=(v2bin1 v2json1 png1 v2bin64 v2json64)
declare -A IMAGES=([v2bin1]=1 [v2json1]=1 [png1]=1 [v2bin64]=64 [v2json64]=64)
declare -A CONNS=([v2bin1]=64 [v2json1]=64 [png1]=64 [v2bin64]=8 [v2json64]=8)
declare -A LABEL=([v2bin1]="v2 binary FP32, 1 image" [v2json1]="v2 JSON FP32, 1 image" \
                  [png1]="/predict PNG, 1 image" [v2bin64]="v2 binary FP32, 64 images" \
                  [v2json64]="v2 JSON FP32, 64 images")
echo "bench/v2.sh: $REPS round(s) of ${DUR} s per form; load now: $(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 1; r <= REPS; r++)); do
  for n in "${FORMS[@]}"; do
    wrk -t2 -c"${CONNS[$n]}" -d1s --timeout 10s -s "$WORK/$n.lua" "http://127.0.0.1:$PORT" >/dev/null 2>&1
    # what the warm-up left queued is computed before the timed run
    for _ in $(seq 400); do
      [ "$(curl -s "http://127.0.0.1:$PORT/metrics" | awk '$1 == "mnistd_inference_queue_depth" { print $2 }')" = 0 ] && break
      sleep 0.05
    done
    bench_wrk "$WORK/wrk.txt" -t2 -c"${CONNS[$n]}" -d"${DUR}s" --timeout 10s -s "$WORK/$n.lua" \
      "http://127.0.0.1:$PORT"
    echo "$n $RPS $ERRS" >>"$WORK/samples"
    [ "$ERRS" = 0 ] || { echo "bench/v2.sh: $n: errors:"; grep -E "Non-2xx|Socket" "$WORK/wrk.txt"; curl -s "http://127.0.0.1:$PORT/metrics" | grep -E "rejected_total|requests_total.*v2"; } >&2
  done
done
med() { bench_median "$WORK/samples" "$1" "$2"; }
png_ips=$(med png1 2)
printf '%-28s %6s %10s %12s %14s %8s\n' form conns "req/s" "us/image" "images/s ratio" errors
for n in "${FORMS[@]}"; do
  rps=$(med "$n" 2)
  errs=$(awk -v k="$n" '$1 == k { s += $3 } END { print s + 0 }' "$WORK/samples")
  awk -v l="${LABEL[$n]}" -v c="${CONNS[$n]}" -v r="$rps" -v i="${IMAGES[$n]}" -v p="$png_ips" -v e="$errs" \
    'BEGIN { printf "%-28s %6d %10.0f %12.1f %14.2f %8d\n", l, c, r, 1e6 / (r * i), r * i / p, e }'
done
echo "(us/image: wall time per image = 1e6 / (req/s x images per request);"
echo " ratio: images/s against /predict PNG with 1 image per request, measured in the same run)"

# tritonclient's own latency for one image.
VPY=$ROOT/build/venv-test/bin/python
if [ -x "$VPY" ]; then
  echo
  "$VPY" - "$PORT" "$WORK/v2bin1.body" <<'PY'
import sys, time
from importlib.metadata import version
import numpy as np
import tritonclient.http as httpclient
port = int(sys.argv[1])
c = httpclient.InferenceServerClient(url="127.0.0.1:%d" % port)
x = np.random.default_rng(1).random((1, 28, 28, 1), dtype=np.float32)
inp = httpclient.InferInput("input", [1, 28, 28, 1], "FP32")
inp.set_data_from_numpy(x)
for _ in range(50):
    c.infer("mnist", [inp])
t = []
for _ in range(1000):
    t0 = time.perf_counter()
    c.infer("mnist", [inp]).as_numpy("probabilities")
    t.append((time.perf_counter() - t0) * 1e6)
t.sort()
print("tritonclient %s, one FP32 image (binary), 1000 sequential calls: median %.0f us, p99 %.0f us"
      % (version("tritonclient"), t[500], t[989]))
PY
else
  echo "bench/v2.sh: build/venv-test is missing (scripts/deps.sh test): no tritonclient latency"
fi
bench_stop

if [ -x "$ROOT/$BUILD/bench/bench_oip" ]; then
  echo
  echo "parsing inside one 64-image FP32 request against the forward pass (median of 50, one thread):"
  "$ROOT/$BUILD/bench/bench_oip" 50 | sed 's/^/  /'
fi
