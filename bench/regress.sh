#!/usr/bin/env bash
# Is this tree slower than an earlier revision? Two builds of mnistd are
# compared in the same run, in ways that the noise of a shared machine does
# not blur:
#
# 1. Instructions executed (valgrind --tool=callgrind; the count does not
#    depend on the load), on the same inputs:
#    - inference: `mnistd predict` on REGRESS_IMAGES PNG files of the test set,
#      the path of POST /predict without the HTTP layer (PNG decoding, MNIST
#      preprocessing, one forward pass per image); the whole process and the
#      forward passes (net_forward, inclusive);
#    - training: `mnistd train --limit 512 --epochs 1 --threads 1 --no-test`;
#      the whole process and train_run (inclusive).
#    Valgrind has no AVX-512, so both sides are built for x86-64-v3 into
#    $BUILD/regress/ and the kernel level is avx2 on both: AVX2+FMA code.
# 2. POST /predict requests/s with wrk at 64 connections, each binary as it
#    is built by default: REGRESS_REPS rounds (default 5) of REGRESS_SECONDS
#    (default 10) per side, the order swapped every round; medians, ratio.
# Every ratio is this tree (head) over the base: instructions below 1.00 and
# requests/s above 1.00 are better. The digits both sides predict for the
# images must agree.
#
#   bench/regress.sh [BASE-REVISION]   (`make bench BENCH_REGRESS=REV` runs it too)
# The base defaults to fdcf611, the last revision before the sources were
# split into cmd/, server/ and api/'s route table. Its tree is extracted with
# git archive into $BUILD/regress/base and built with its own Makefile.
# Env: MNISTD_DATA (required), REGRESS_IMAGES (200), REGRESS_REPS, REGRESS_SECONDS.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD:-build}
BASE_REV=${1:-fdcf611}
IMAGES=${REGRESS_IMAGES:-200}
REPS=${REGRESS_REPS:-5}
DUR=${REGRESS_SECONDS:-10}
MODEL=$ROOT/models/mnist-cnn.safetensors
. bench/lib.sh
for v in IMAGES REPS DUR; do
  case ${!v} in ''|*[!0-9]*|0) echo "bench/regress.sh: REGRESS_$v must be a positive integer" >&2; exit 2 ;; esac
done
[ -d "${MNISTD_DATA:-}" ] || { echo "bench/regress.sh: set MNISTD_DATA to the MNIST directory" >&2; exit 2; }
for t in valgrind callgrind_annotate wrk; do
  command -v "$t" >/dev/null || { echo "bench/regress.sh: $t is not installed (scripts/deps.sh bench)" >&2; exit 1; }
done
WORK=$(mktemp -d /tmp/mnistd-regress.XXXXXX)
DPID=
cleanup() { bench_stop; rm -rf "$WORK"; }
trap cleanup EXIT

# ---- the two trees, built ------------------------------------------------------
R=$ROOT/$BUILD/regress
rev=$(git rev-parse --verify "$BASE_REV^{commit}")
if [ "$(cat "$R/base/.rev" 2>/dev/null)" != "$rev" ]; then
  rm -rf "$R/base"; mkdir -p "$R/base"
  git archive "$rev" | tar -x -C "$R/base"
  echo "$rev" >"$R/base/.rev"
fi
echo "bench/regress.sh: building base $(git rev-parse --short "$rev") and head for x86-64-v3 (callgrind) and as shipped (wrk) ..."
make -s -C "$R/base" -j2 build/mnistd BUILD=build >"$WORK/build.log" 2>&1 &&
  make -s -C "$R/base" -j2 build-v3/mnistd BUILD=build-v3 ARCH=-march=x86-64-v3 >>"$WORK/build.log" 2>&1 &&
  make -s -j2 "$BUILD/regress/head-v3/mnistd" BUILD="$BUILD/regress/head-v3" ARCH=-march=x86-64-v3 \
    >>"$WORK/build.log" 2>&1 &&
  make -s -j2 "$BUILD/mnistd" "$BUILD/tests/tools/mkpng" >>"$WORK/build.log" 2>&1 ||
  { tail -n 30 "$WORK/build.log" >&2; exit 1; }
declare -A WRK_BIN=([base]=$R/base/build/mnistd [head]=$ROOT/$BUILD/mnistd)
declare -A CG_BIN=([base]=$R/base/build-v3/mnistd [head]=$R/head-v3/mnistd)

# ---- instruction counts --------------------------------------------------------
for ((i = 0; i < IMAGES; i++)); do
  "$BUILD/tests/tools/mkpng" --mnist "$MNISTD_DATA" --index "$i" -o "$WORK/img$i.png"
done
pngs=("$WORK"/img*.png)
# cg SIDE CASE FUNCTION COMMAND...: runs COMMAND under callgrind and prints
# "SIDE CASE total N" and "SIDE CASE FUNCTION N" (inclusive) to the samples.
cg() {
  local side=$1 case=$2 fn=$3; shift 3
  MNISTD_KERNELS=avx2 valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.$side.$case" "$@" \
    >"$WORK/out.$side.$case" 2>"$WORK/err.$side.$case" ||
    { echo "bench/regress.sh: $side $case failed under callgrind:" >&2; tail -n 20 "$WORK/err.$side.$case" >&2; exit 1; }
  callgrind_annotate --inclusive=yes --threshold=100 "$WORK/cg.$side.$case" >"$WORK/ann.$side.$case"
  awk -v s="$side" -v c="$case" -v f="$fn" '
    /PROGRAM TOTALS/ { gsub(",", "", $1); print s, c, "total", $1 }
    $0 ~ (":" f " ") && !done { gsub(",", "", $1); print s, c, f, $1; done = 1 }' \
    "$WORK/ann.$side.$case" >>"$WORK/cg"
}
: >"$WORK/cg"
for side in base head; do
  echo "  callgrind: $side predict ($IMAGES images) ..."
  cg "$side" predict net_forward "${CG_BIN[$side]}" predict --model "$MODEL" "${pngs[@]}"
  echo "  callgrind: $side train (512 samples, 1 epoch, 1 thread) ..."
  cg "$side" train train_run "${CG_BIN[$side]}" train --data "$MNISTD_DATA" --limit 512 --epochs 1 \
    --threads 1 --seed 1 --no-test --quiet --out "$WORK/trained-$side.safetensors"
done
digits() { awk '{ print $2 }' "$WORK/out.$1.predict"; }
if [ "$(digits base)" != "$(digits head)" ] || [ "$(digits head | grep -c .)" -ne "$IMAGES" ]; then
  echo "bench/regress.sh: FAILED: base and head predict different digits" >&2; exit 1
fi
echo
echo "instructions executed (callgrind, Ir; ratio = head / base; the digits of all $IMAGES images agree)"
printf '%-34s %16s %16s %8s\n' case base head ratio
while read -r case what; do
  b=$(awk -v c="$case" -v w="$what" '$1 == "base" && $2 == c && $3 == w { print $4 }' "$WORK/cg")
  h=$(awk -v c="$case" -v w="$what" '$1 == "head" && $2 == c && $3 == w { print $4 }' "$WORK/cg")
  awk -v l="$case: $what" -v b="${b:-0}" -v h="${h:-0}" \
    'BEGIN { printf "%-34s %16.0f %16.0f %8s\n", l, b, h, (b > 0 && h > 0) ? sprintf("%.3f", h / b) : "n/a" }'
done <<EOF
predict total
predict net_forward
train total
train train_run
EOF

# ---- POST /predict requests/s --------------------------------------------------
cp "$WORK/img0.png" "$WORK/d.png"
bench_predict_lua "$WORK/d.png" "$WORK/predict.lua"
: >"$WORK/samples"
one() {
  bench_start "$WORK/daemon-$1.log" "${WRK_BIN[$1]}" --model "$MODEL"
  wrk -t2 -c64 -d1s -s "$WORK/predict.lua" "http://127.0.0.1:$PORT/predict" >/dev/null 2>&1 || true
  bench_wrk "$WORK/wrk.txt" -t2 -c64 -d"${DUR}s" -s "$WORK/predict.lua" "http://127.0.0.1:$PORT/predict"
  bench_stop
  echo "$1 $RPS" >>"$WORK/samples"
  printf '  round %d %-5s %10s req/s  errors %s\n' "$r" "$1" "$RPS" "$ERRS"
  [ "$ERRS" = 0 ] || { echo "bench/regress.sh: FAILED: $1 answered errors" >&2; exit 1; }
}
echo
echo "POST /predict, 64 connections, $REPS round(s) of ${DUR} s, alternating; load now: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$REPS"); do
  if [ $((r % 2)) = 1 ]; then one base; one head; else one head; one base; fi
done
b=$(bench_median "$WORK/samples" base); h=$(bench_median "$WORK/samples" head)
awk -v b="$b" -v h="$h" 'BEGIN { printf "medians: base %.0f req/s, head %.0f req/s, head/base %.3f\n", b, h, h / b }'
echo "(the machine may be shared: the requests/s figures are noisy; the instruction counts are not)"
