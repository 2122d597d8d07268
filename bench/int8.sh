#!/usr/bin/env bash
# int8 inference against fp32, measured in one run (part of `make bench`;
# BENCH_INT8=0 skips it):
#   - the engine (bench/bench_int8.c, INT8_REPS processes): images/s at batch
#     64 and one image's latency, fp32 and int8 interleaved round by round;
#     test accuracy of both and how often they agree, on the 10,000 images;
#   - POST /predict with wrk at 64 connections: INT8_REPS rounds, each
#     starting a daemon with --precision fp32 and one with --precision int8
#     (in alternating order), DUR seconds each after a 1 s warm-up.
# Then a table of the medians, the int8/fp32 ratios and the targets.
#
#   bench/int8.sh [seconds per wrk run, default 10]
# Env: MNISTD_BIN (default build/mnistd), MNISTD_MODEL (default the shipped
# model, which carries its int8 scales), MNISTD_DATA (needed), INT8_REPS (3).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"
BUILD=${BUILD:-build}
BIN=${MNISTD_BIN:-$ROOT/$BUILD/mnistd}
ENGINE=$ROOT/$BUILD/bench/bench_int8
MKPNG=$ROOT/$BUILD/tests/tools/mkpng
DUR=${1:-10}
REPS=${INT8_REPS:-3}
MODEL=${MNISTD_MODEL:-$ROOT/models/mnist-cnn.safetensors}
case "$REPS" in ''|*[!0-9]*|0) echo "bench/int8.sh: INT8_REPS must be a positive integer" >&2; exit 2 ;; esac
[ -n "${MNISTD_DATA:-}" ] || { echo "bench/int8.sh: set MNISTD_DATA (the test set)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "bench/int8.sh: wrk is not installed (scripts/deps.sh bench)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/mnistd-bench.XXXXXX)
DPID=
cleanup() { bench_stop; rm -rf "$WORK"; }
trap cleanup EXIT

for r in $(seq "$REPS"); do
  "$ENGINE" --model "$MODEL" | sed 's/=/ /' >>"$WORK/samples"
done

"$MKPNG" --mnist "$MNISTD_DATA" --index 0 -o "$WORK/d.png"
bench_predict_lua "$WORK/d.png" "$WORK/predict.lua"
predict() { # PRECISION: one daemon, one measured wrk run at 64 connections
  bench_start "$WORK/daemon.log" "$BIN" --model "$MODEL" --precision "$1" || exit 1
  local used
  used=$(curl -s "$BASE/model" | python3 -c 'import json,sys; print(json.load(sys.stdin)["precision"]["in_use"])')
  [ "$used" = "$1" ] || { echo "bench/int8.sh: asked for $1, the daemon serves $used (model without int8 scales?)" >&2; exit 1; }
  wrk -t2 -c64 -d1s -s "$WORK/predict.lua" "$BASE/predict" >/dev/null 2>&1 || true
  bench_wrk "$WORK/wrk.txt" -t2 -c64 -d"${DUR}s" -s "$WORK/predict.lua" "$BASE/predict"
  bench_stop
  [ "$ERRS" = 0 ] || echo "bench/int8.sh: $ERRS errors in the $1 run" >&2
  echo "int8.predict_rps_$1 $RPS" >>"$WORK/samples"
}
for r in $(seq "$REPS"); do
  if [ $((r % 2)) = 1 ]; then predict fp32; predict int8; else predict int8; predict fp32; fi
done

med() { bench_median "$WORK/samples" "int8.$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "n/a" || b == "n/a" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }
judge() { awk -v v="$1" -v t="$2" 'BEGIN { if (v == "n/a") print "n/a"; else print (v + 0 >= t + 0) ? "met" : "MISSED" }'; }
i32=$(med fp32_images_per_s); i8=$(med int8_images_per_s)
l32=$(med fp32_latency_us); l8=$(med int8_latency_us)
a32=$(med fp32_accuracy); a8=$(med int8_accuracy); ag=$(med agree)
p32=$(med predict_rps_fp32); p8=$(med predict_rps_int8)
# accuracy: int8 minus fp32 in points (0.2 points = 0.002)
dpts=$(awk -v a="$a8" -v b="$a32" 'BEGIN { printf "%+.2f", (a - b) * 100 }')
dok=$(awk -v a="$a8" -v b="$a32" 'BEGIN { d = a - b; print (d >= -0.002 - 1e-9 && d <= 0.002 + 1e-9) ? "met" : "MISSED" }')
echo
echo "int8 against fp32 (medians of $REPS; the same model, scales from its $(awk '$1 == "int8.scales_from" { print $2; exit }' "$WORK/samples"))"
printf '%-40s %12s %12s %8s   %s\n' figure fp32 int8 int8/fp32 target
printf '%-40s %12.0f %12.0f %8s   %s\n' "inference images/s (batch 64)" "$i32" "$i8" "$(ratio "$i8" "$i32")" \
  ">= 2x: $(judge "$(ratio "$i8" "$i32")" 2)"
printf '%-40s %12.1f %12.1f %8s   %s\n' "single image latency median (us)" "$l32" "$l8" "$(ratio "$l8" "$l32")" "-"
printf '%-40s %12.0f %12.0f %8s   %s\n' "/predict requests/s (64 connections)" "$p32" "$p8" "$(ratio "$p8" "$p32")" \
  ">= 1.5x: $(judge "$(ratio "$p8" "$p32")" 1.5)"
printf '%-40s %12.4f %12.4f %8s   %s\n' "test accuracy (10,000 images)" "$a32" "$a8" "$dpts" \
  "within 0.2 points: $dok"
printf '%-40s %12s %12.4f %8s   %s\n' "same digit as fp32 (10,000 images)" "-" "$ag" "-" \
  ">= 0.995: $(judge "$ag" 0.995)"
each() { awk -v k="int8.$1" '$1 == k { printf "%s ", $2 }' "$WORK/samples"; }
echo "each run: images/s fp32 $(each fp32_images_per_s)| int8 $(each int8_images_per_s)"
echo "          /predict req/s fp32 $(each predict_rps_fp32)| int8 $(each predict_rps_int8)"
