#!/usr/bin/env bash
# HTTP benchmark of POST /predict with wrk (Debian package wrk) on loopback.
#
# Part 1, one run each: the default settings at 1, 16 and 64 connections,
# then --batch-timeout-us 1000 at 16 and 64.
# Part 2, batching against --max-batch 1: HTTP_REPS rounds (default 3), each
# running the default and --max-batch 1 at 64 connections, then the default,
# --batch-timeout-us 1000 and --max-batch 1 at 1 connection, back to back so
# that the machine's noise hits all alike. Prints the medians and the ratios.
#
# Part 3, the cost of TLS: HTTP_REPS rounds, each running HTTP and HTTPS
# (--tls-cert/--tls-key, a P-256 certificate made by tests/tools/mkcerts.sh)
# at 16 connections, with keep-alive and with a new connection (and so a
# new TLS handshake) per request (Connection: close), back to back. Prints
# the medians and HTTPS/HTTP ratios measured in the same run.
#
# Each row: requests/s, p50 and p99 latency (wrk --latency), the mean batch
# size (from /metrics, over the run), errors, and the daemon's resident memory.
# Not part of `make test`: timing belongs here.
#
#   bench/http.sh [seconds per run, default 10]
# Env: MNISTD_BIN (default build/mnistd), MNISTD_MODEL (default the shipped
# model, else a small one trained with MNISTD_DATA), MNISTD_DATA, HTTP_REPS,
# HTTP_PARTS (default "1 2 3": which parts run).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"
DUR=${1:-10}
REPS=${HTTP_REPS:-3}
PARTS=" ${HTTP_PARTS:-1 2 3} "
case "$REPS" in ''|*[!0-9]*|0) echo "bench/http.sh: HTTP_REPS must be a positive integer" >&2; exit 2 ;; esac
command -v wrk >/dev/null || { echo "bench/http.sh: wrk is not installed (scripts/deps.sh bench)" >&2; exit 1; }
bench_setup bench

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
bench_predict_lua "$WORK/d.png" "$WORK/predict.lua"

start() { bench_start "$WORK/daemon.log" "$BIN" --model "$MODEL" "$@" || exit 1; }
stop() { bench_stop; }
# wrk does not check certificates; curl trusts the test CA of part 3.
m() { curl -s ${CACERT:+--cacert "$CACERT"} "$BASE/metrics" | awk -v k="$1" '$1 == k { print $2 }'; }
# extra wrk arguments of the runs that follow (part 3: Connection: close)
WRK_EXTRA=()

hdr() { printf '%-28s %6s %10s %9s %9s %10s %9s %8s %8s\n' config conns req/s p50 p99 mean_batch queue_us errors rss_MB; }
# wrk prints latencies with units (us, ms, s): in microseconds.
us() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000; else if (v ~ /s$/) print n * 1e6; else print n }'; }
# run LABEL CONNS: one wrk run against the daemon started last; prints a row
# and leaves its figures in RPS, P50_US, P99_US and MEANB.
run() {
  local label=$1 conns=$2
  local threads=$(( conns < 2 ? 1 : 2 ))
  local s0 c0 s1 c1
  s0=$(m mnistd_inference_batch_size_sum); c0=$(m mnistd_inference_batch_size_count)
  q0=$(m mnistd_inference_queue_wait_seconds_sum); n0=$(m mnistd_inference_queue_wait_seconds_count)
  wrk -t"$threads" -c"$conns" -d"${DUR}s" --latency -s "$WORK/predict.lua" ${WRK_EXTRA[@]+"${WRK_EXTRA[@]}"} \
    "$BASE/predict" >"$WORK/wrk.txt" 2>&1
  s1=$(m mnistd_inference_batch_size_sum); c1=$(m mnistd_inference_batch_size_count)
  q1=$(m mnistd_inference_queue_wait_seconds_sum); n1=$(m mnistd_inference_queue_wait_seconds_count)
  local p50 p99 errs rss
  RPS=$(awk '/^Requests\/sec/ { print $2 }' "$WORK/wrk.txt")
  p50=$(awk '$1 == "50%" { print $2 }' "$WORK/wrk.txt")
  p99=$(awk '$1 == "99%" { print $2 }' "$WORK/wrk.txt")
  P50_US=$(us "$p50"); P99_US=$(us "$p99")
  errs=$(awk '/Non-2xx/ { n += $NF } /Socket errors/ { n += 1 } END { print n + 0 }' "$WORK/wrk.txt")
  rss=$(awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$DPID/status")
  MEANB=$(awk -v a="$s0" -v b="$s1" -v c="$c0" -v d="$c1" 'BEGIN { if (d > c) printf "%.2f", (b - a) / (d - c); else print "-" }')
  # mean time an image waited in the queue for a worker (the daemon's histogram)
  QUS=$(awk -v a="$q0" -v b="$q1" -v c="$n0" -v d="$n1" 'BEGIN { if (d > c) printf "%.1f", (b - a) / (d - c) * 1e6; else print "-" }')
  printf '%-28s %6d %10s %9s %9s %10s %9s %8s %8s\n' "$label" "$conns" "$RPS" "$p50" "$p99" "$MEANB" "$QUS" "$errs" "$rss"
}
# once LABEL CONNS FIGURE [daemon flags]: starts a daemon, runs, stops it,
# and appends "LABEL/CONNS RPS P50 P99 MEANB" to the samples file.
once() {
  local label=$1 conns=$2; shift 2
  start "$@"
  # a short unrecorded run first: connections, allocator and caches warm up
  wrk -t1 -c"$conns" -d1s -s "$WORK/predict.lua" ${WRK_EXTRA[@]+"${WRK_EXTRA[@]}"} "$BASE/predict" >/dev/null 2>&1
  run "$label" "$conns"
  stop
  echo "$label/$conns $RPS $P50_US $P99_US $MEANB $QUS" >>"$WORK/samples"
}
median() { bench_median "$WORK/samples" "$1" "$2"; }

if [[ "$PARTS" == *" 1 "* ]]; then
echo "== part 1: one run each =="
hdr
start
for c in 1 16 64; do run "default (batch 64)" "$c"; done
echo "peak rss (VmHWM): $(awk '/^VmHWM/ { printf "%.1f MB", $2 / 1024 }' "/proc/$DPID/status")"
stop
start --batch-timeout-us 1000
for c in 16 64; do run "--batch-timeout-us 1000" "$c"; done
stop
echo
fi

if [[ "$PARTS" == *" 2 "* ]]; then
echo "== part 2: batching against --max-batch 1, $REPS round(s) of ${DUR} s runs =="
hdr
: >"$WORK/samples"
for r in $(seq "$REPS"); do
  # each round swaps who goes first, so that neither side always follows
  # the same neighbour
  if [ $((r % 2)) = 1 ]; then
    once default 64
    once mb1 64 --max-batch 1
    once default 1
    once t1000 1 --batch-timeout-us 1000
    once mb1 1 --max-batch 1
  else
    once mb1 64 --max-batch 1
    once default 64
    once mb1 1 --max-batch 1
    once t1000 1 --batch-timeout-us 1000
    once default 1
  fi
done
echo
echo "medians of $REPS round(s):"
printf '%-36s %6s %10s %10s %10s %10s %9s\n' config conns req/s p50_us p99_us mean_batch queue_us
for k in default/64 mb1/64 default/1 t1000/1 mb1/1; do
  case $k in
    default/*) name="default (--batch-timeout-us 0)" ;;
    t1000/*) name="--batch-timeout-us 1000" ;;
    *) name="--max-batch 1" ;;
  esac
  printf '%-36s %6s %10s %10s %10s %10s %9s\n' "$name" "${k#*/}" "$(median "$k" 2)" "$(median "$k" 3)" \
    "$(median "$k" 4)" "$(median "$k" 5)" "$(median "$k" 6)"
done
awk -v a="$(median default/64 2)" -v b="$(median mb1/64 2)" \
  'BEGIN { printf "batching at 64 connections: %.3fx the requests/s of --max-batch 1\n", a / b }'
for k in default/1 t1000/1; do
  awk -v k="$k" -v a50="$(median "$k" 3)" -v b50="$(median mb1/1 3)" -v a99="$(median "$k" 4)" \
    -v b99="$(median mb1/1 4)" 'BEGIN { t = (k == "t1000/1") ? 1000 : 0
      printf "at 1 connection, --batch-timeout-us %d adds %+.0f us to p50 and %+.0f us to p99 over --max-batch 1 (limit %d us)\n",
             t, a50 - b50, a99 - b99, t }'
  awk -v k="$k" -v q="$(median "$k" 6)" -v b="$(median mb1/1 6)" 'BEGIN { t = (k == "t1000/1") ? 1000 : 0
      printf "  queue wait per image (the daemon'"'"'s histogram): %.1f us against %.1f us with --max-batch 1\n", q, b }'
done
echo "each round (label/conns req/s p50_us p99_us mean_batch queue_us):"
sed 's/^/  /' "$WORK/samples"
echo
fi

if [[ "$PARTS" == *" 3 "* ]]; then
echo "== part 3: the cost of TLS, $REPS round(s) of ${DUR} s runs at 16 connections =="
bash "$ROOT/tests/tools/mkcerts.sh" "$WORK/pki" >/dev/null
TLS=(--tls-cert "$WORK/pki/server.pem" --tls-key "$WORK/pki/server.key")
hdr
: >"$WORK/samples"
# tls_once LABEL [flags]: keep-alive when LABEL ends in -ka, else a new
# connection per request
tls_once() {
  local label=$1; shift
  WRK_EXTRA=()
  [[ "$label" == *-close ]] && WRK_EXTRA=(-H "Connection: close")
  CACERT=
  [ $# -gt 0 ] && CACERT=$WORK/pki/ca.pem
  once "$label" 16 "$@"
}
for r in $(seq "$REPS"); do
  if [ $((r % 2)) = 1 ]; then
    tls_once http-ka; tls_once https-ka "${TLS[@]}"; tls_once http-close; tls_once https-close "${TLS[@]}"
  else
    tls_once https-ka "${TLS[@]}"; tls_once http-ka; tls_once https-close "${TLS[@]}"; tls_once http-close
  fi
done
WRK_EXTRA=(); CACERT=
echo
echo "medians of $REPS round(s), 16 connections:"
printf '%-36s %10s %10s %10s\n' config req/s p50_us p99_us
for k in http-ka https-ka http-close https-close; do
  printf '%-36s %10s %10s %10s\n' "$k" "$(median "$k/16" 2)" "$(median "$k/16" 3)" "$(median "$k/16" 4)"
done
for mode in ka close; do
  awk -v m="$mode" -v hr="$(median "http-$mode/16" 2)" -v sr="$(median "https-$mode/16" 2)" \
      -v h99="$(median "http-$mode/16" 4)" -v s99="$(median "https-$mode/16" 4)" 'BEGIN {
    printf "%s: HTTPS gives %.3fx the requests/s of HTTP; p99 %.0f us against %.0f us (%.2fx)\n",
           m == "ka" ? "keep-alive" : "a connection per request", sr / hr, s99, h99, s99 / h99 }'
done
echo "each round (label/conns req/s p50_us p99_us mean_batch queue_us):"
sed 's/^/  /' "$WORK/samples"
fi
