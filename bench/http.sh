#!/usr/bin/env bash
# HTTP benchmark of POST /predict with wrk (Debian package wrk) on loopback:
# 1, 16 and 64 connections with the default settings, then 64 connections
# with --max-batch 1 for comparison (batching must raise throughput there).
# Prints requests/s, p50 and p99 latency (wrk --latency), the mean batch size
# (from /metrics, over the run), errors, and the daemon's resident memory.
# Not part of `make test`: timing belongs here.
#
#   bench/http.sh [seconds per run, default 10]
# Env: MNISTD_BIN (default build/mnistd), MNISTD_MODEL (default the shipped
# model, else a small one trained with MNISTD_DATA), MNISTD_DATA.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
BIN=${MNISTD_BIN:-$ROOT/$BUILD/mnistd}
MKPNG=$ROOT/$BUILD/tests/tools/mkpng
DUR=${1:-10}
command -v wrk >/dev/null || { echo "bench/http.sh: wrk is not installed (scripts/deps.sh bench)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/mnistd-bench.XXXXXX)
DPID=
cleanup() { [ -n "$DPID" ] && kill "$DPID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

MODEL=${MNISTD_MODEL:-$ROOT/models/mnist-cnn.safetensors}
if [ ! -f "$MODEL" ]; then
  [ -n "${MNISTD_DATA:-}" ] || { echo "bench/http.sh: no model and no MNISTD_DATA" >&2; exit 1; }
  MODEL=$WORK/m.safetensors
  "$BIN" train --data "$MNISTD_DATA" --limit 4000 --epochs 1 --quiet --out "$MODEL" >/dev/null
fi
if [ -n "${MNISTD_DATA:-}" ] && [ -x "$MKPNG" ]; then
  "$MKPNG" --mnist "$MNISTD_DATA" --index 0 -o "$WORK/d.png"
else
  # A 28x28 gray PNG of a vertical bar, written without the data set.
  python3 - "$WORK/d.png" <<'PY'
import struct, sys, zlib
w = h = 28
rows = b"".join(b"\0" + bytes(255 if 12 <= x <= 15 and 4 <= y <= 23 else 0 for x in range(w)) for y in range(h))
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                             + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
PY
fi
cat >"$WORK/predict.lua" <<EOF2
local f = assert(io.open("$WORK/d.png", "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "image/png"
EOF2

start() {
  "$BIN" serve --port 0 --model "$MODEL" "$@" 2>"$WORK/daemon.log" &
  DPID=$!
  for _ in $(seq 200); do
    grep -qs '"msg":"listening' "$WORK/daemon.log" && break
    sleep 0.05
  done
  PORT=$(grep -o '"msg":"listening on http://[^"]*"' "$WORK/daemon.log" | sed 's/.*:\([0-9]*\)"$/\1/')
  [ -n "$PORT" ] || { cat "$WORK/daemon.log"; exit 1; }
}
stop() { kill -TERM "$DPID"; wait "$DPID" || true; DPID=; }
m() { curl -s "http://127.0.0.1:$PORT/metrics" | awk -v k="$1" '$1 == k { print $2 }'; }

printf '%-28s %6s %10s %9s %9s %10s %8s %8s\n' config conns req/s p50 p99 mean_batch errors rss_MB
run() {
  local label=$1 conns=$2
  local threads=$(( conns < 2 ? 1 : 2 ))
  local s0 c0 s1 c1
  s0=$(m mnistd_inference_batch_size_sum); c0=$(m mnistd_inference_batch_size_count)
  wrk -t"$threads" -c"$conns" -d"${DUR}s" --latency -s "$WORK/predict.lua" \
    "http://127.0.0.1:$PORT/predict" >"$WORK/wrk.txt" 2>&1
  s1=$(m mnistd_inference_batch_size_sum); c1=$(m mnistd_inference_batch_size_count)
  local rps p50 p99 errs rss
  rps=$(awk '/^Requests\/sec/ { print $2 }' "$WORK/wrk.txt")
  p50=$(awk '$1 == "50%" { print $2 }' "$WORK/wrk.txt")
  p99=$(awk '$1 == "99%" { print $2 }' "$WORK/wrk.txt")
  errs=$(awk '/Non-2xx/ { n += $NF } /Socket errors/ { n += 1 } END { print n + 0 }' "$WORK/wrk.txt")
  rss=$(awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$DPID/status")
  printf '%-28s %6d %10s %9s %9s %10s %8s %8s\n' "$label" "$conns" "$rps" "$p50" "$p99" \
    "$(awk -v a="$s0" -v b="$s1" -v c="$c0" -v d="$c1" 'BEGIN { if (d > c) printf "%.2f", (b - a) / (d - c); else print "-" }')" \
    "$errs" "$rss"
}

start
for c in 1 16 64; do run "default (batch 64)" "$c"; done
echo "peak rss (VmHWM): $(awk '/^VmHWM/ { printf "%.1f MB", $2 / 1024 }' "/proc/$DPID/status")"
stop
start --max-batch 1
run "--max-batch 1" 64
stop
start --batch-timeout-us 1000
for c in 16 64; do run "--batch-timeout-us 1000" "$c"; done
stop
