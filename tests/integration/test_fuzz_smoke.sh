#!/usr/bin/env bash
# Fuzzing smoke test: builds every libFuzzer harness (scripts/fuzz.sh), runs
# each over its seed corpus and any committed crash reproducers, then fuzzes
# it for a short fixed budget; PASS per harness with zero crashes. Then the
# decompression-bomb checks: small PNGs that declare 100000x100000 pixels or
# a 2 GiB zTXt/iCCP chunk, and chunks that inflate to 16 MiB, run through
# the PNG harness with libFuzzer's -malloc_limit_mb=1, so that any single
# allocation over 1 MiB is a failure (the memory is refused before it is
# spent), and through mkpng for the status the daemon would answer.
# SKIP when clang or libFuzzer is not installed. About 45 s on 2 cores.
#
# Settings: FUZZ_SMOKE_SECONDS (per harness, default 5), FUZZ_SMOKE_RUNS
# (per harness, default 200000; whichever ends first).
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
OUT=build/fuzz
SECS=${FUZZ_SMOKE_SECONDS:-5}
RUNS=${FUZZ_SMOKE_RUNS:-200000}
HARNESSES=(png multipart idx ckpt ckpt_header json_train json_evaluate v2)
fails=0

pass() { echo "PASS $*"; }
fail() { echo "FAIL $*"; fails=$((fails + 1)); }

# clang with the libFuzzer runtime, or SKIP.
cc=
for c in ${CLANG:-} clang-14 clang; do
  command -v "$c" >/dev/null 2>&1 && { cc=$c; break; }
done
if [ -z "$cc" ]; then
  echo "SKIP fuzz_smoke: clang is not installed (apt-get install clang libclang-rt-14-dev)"
  exit 0
fi
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' \
  >"$probe/p.c"
if ! "$cc" -fsanitize=fuzzer,address,undefined -o "$probe/p" "$probe/p.c" >"$probe/log" 2>&1; then
  echo "SKIP fuzz_smoke: $cc cannot link libFuzzer with ASan/UBSan (libclang-rt-14-dev missing?): $(head -c 200 "$probe/log")"
  exit 0
fi

if ! CLANG=$cc bash scripts/fuzz.sh build >"$probe/build.log" 2>&1; then
  fail "fuzz_build: scripts/fuzz.sh build failed:"
  sed 's/^/  /' "$probe/build.log"
  exit 1
fi
pass "fuzz_build: ${#HARNESSES[@]} harnesses built with $cc -fsanitize=fuzzer,address,undefined"

# The fuzz build must not take jemalloc (ASan has to see every allocation).
jem=
for h in "${HARNESSES[@]}"; do
  ldd "$OUT/fuzz_$h" 2>/dev/null | grep -q jemalloc && jem+=" fuzz_$h"
done
if [ -n "$jem" ]; then fail "fuzz_no_jemalloc: linked with jemalloc:$jem"; else
  pass "fuzz_no_jemalloc: no harness links jemalloc"; fi

export OPENBLAS_NUM_THREADS=1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
mkdir -p "$OUT/artifacts"

for h in "${HARNESSES[@]}"; do
  bin=$OUT/fuzz_$h
  seeds=tests/fuzz/corpus/$h
  crashes=tests/fuzz/crashes/$h
  log=$probe/$h.log
  # 1. Every seed and every committed crash reproducer, once each.
  inputs=("$seeds")
  [ -d "$crashes" ] && inputs+=("$crashes")
  nseeds=$(find "${inputs[@]}" -type f | wc -l)
  if ! "$bin" -runs=0 -timeout=10 -rss_limit_mb=2048 "${inputs[@]}" >"$log" 2>&1; then
    fail "fuzz_seeds_$h: a seed or reproducer crashes the harness:"
    grep -m 5 -E 'ERROR|runtime error|contract broken|Running|SUMMARY' "$log" | sed 's/^/  /'
    continue
  fi
  pass "fuzz_seeds_$h: $nseeds inputs from ${inputs[*]} run clean"
  # 2. A short fuzzing run from the seeds into a scratch corpus.
  work=$probe/corpus-$h
  mkdir -p "$work"
  dict=()
  [ -f "tests/fuzz/dict/$h.dict" ] && dict=(-dict="tests/fuzz/dict/$h.dict")
  rc=0
  "$bin" -runs="$RUNS" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 "${dict[@]}" -artifact_prefix="$OUT/artifacts/smoke-$h-" \
    "$work" "$seeds" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  if [ "$rc" -ne 0 ]; then
    fail "fuzz_smoke_$h: crashed after ${execs:-?} runs (exit $rc); input in $OUT/artifacts/smoke-$h-*:"
    grep -m 5 -E 'ERROR|runtime error|contract broken|SUMMARY' "$log" | sed 's/^/  /'
  elif [ -z "$execs" ] || [ "$execs" -lt 100 ]; then
    fail "fuzz_smoke_$h: only ${execs:-no} runs recorded; log: $(tail -n 3 "$log" | tr '\n' ' ')"
  else
    pass "fuzz_smoke_$h: $execs runs, 0 crashes"
  fi
done

# ---- Decompression bombs ---------------------------------------------------
# Each file: the status mkpng --raw-out reports (what POST /predict maps to
# a response), and the PNG harness under a 1 MiB per-allocation limit.
mkpng=$BUILD/tests/tools/mkpng
bomb_check() {
  local f=$1 want=$2 limit=$3 name
  name=$(basename "$f" .png)
  local st=0
  if [ -x "$mkpng" ]; then
    local msg
    msg=$("$mkpng" --raw-out /dev/null "$f" 2>&1)
    st=$?
    case "$want" in
      too-large)
        if [ "$st" -ne 3 ] || [[ "$msg" != *"img_status -3"* ]]; then
          fail "fuzz_bomb_$name: expected IMG_ERR_TOO_LARGE, mkpng said (exit $st): $msg"
          return
        fi ;;
      no-inflate)  # skipped or refused; anything but an allocation failure
        if [[ "$msg" == *"img_status -5"* ]] || { [ "$st" -ne 0 ] && [ "$st" -ne 3 ]; }; then
          fail "fuzz_bomb_$name: unexpected result (exit $st): $msg"
          return
        fi ;;
    esac
  fi
  local log=$probe/bomb-$name.log
  if ! "$OUT/fuzz_png" -malloc_limit_mb="$limit" -rss_limit_mb=512 "$f" >"$log" 2>&1; then
    fail "fuzz_bomb_$name: more than $limit MiB allocated at once: $(grep -m 1 -o 'out-of-memory.*\|ERROR.*' "$log")"
    return
  fi
  local how="refused"
  [ "$want" = no-inflate ] && how="not inflated"
  if [ -x "$mkpng" ]; then
    pass "fuzz_bomb_$name: $how (${msg:-decoded}); no allocation over $limit MiB"
  else
    pass "fuzz_bomb_$name: no allocation over $limit MiB (mkpng not built: status not checked)"
  fi
}
# The control: a legitimate 2048x2048 image needs 4 MiB of pixels, so the
# same 1 MiB limit must stop it; otherwise the limit proves nothing.
if [ -x "$mkpng" ] && "$mkpng" --bar 2048 2048 -o "$probe/control-2048.png" 2>/dev/null; then
  if "$OUT/fuzz_png" -malloc_limit_mb=1 -rss_limit_mb=512 "$probe/control-2048.png" \
       >"$probe/control.log" 2>&1; then
    fail "fuzz_bomb_control: a 2048x2048 PNG passed the 1 MiB allocation limit: the limit is not enforced"
  elif grep -q 'out-of-memory (malloc(' "$probe/control.log"; then
    pass "fuzz_bomb_control: a real 2048x2048 PNG trips the 1 MiB allocation limit ($(grep -m 1 -o 'malloc([0-9]*)' "$probe/control.log"))"
  else
    fail "fuzz_bomb_control: unexpected failure: $(grep -m 1 -E 'ERROR|SUMMARY' "$probe/control.log")"
  fi
else
  echo "SKIP fuzz_bomb_control: $mkpng not built"
fi
bomb_check tests/fixtures/png/bomb-100000x100000.png too-large 1
bomb_check tests/fixtures/png/over-pixels-4096x1025.png too-large 1
bomb_check tests/fuzz/bombs/ztxt-declares-2g.png too-large 1
bomb_check tests/fuzz/bombs/iccp-declares-2g.png too-large 1
bomb_check tests/fuzz/bombs/ztxt-inflates-16m.png no-inflate 1
bomb_check tests/fuzz/bombs/iccp-inflates-16m.png no-inflate 1
bomb_check tests/fuzz/bombs/itxt-inflates-16m.png no-inflate 1
bomb_check tests/fuzz/bombs/idat-inflates-16m.png no-inflate 1
# A real 2 MB zTXt chunk (over the 1 MiB chunk limit). libFuzzer holds two
# copies of a 2 MB input itself, hence the 3 MiB allocation limit here.
if [ -x "$mkpng" ] && "$mkpng" --big-ztxt 2000000 -o "$probe/ztxt-2mb.png" 2>/dev/null; then
  bomb_check "$probe/ztxt-2mb.png" too-large 3
else
  echo "SKIP fuzz_bomb_ztxt-2mb: $mkpng not built"
fi

# ---- v2 infer requests: declared sizes are not allocations ----------------
# Every v2 seed (among them a shape declaring 10^15 images and a header
# length beyond the body) under a 1 MiB per-allocation limit; the control,
# a real 2 MiB request, must trip the same limit (libFuzzer copies it).
v2log=$probe/v2-malloc.log
if "$OUT/fuzz_v2" -malloc_limit_mb=1 -rss_limit_mb=512 -runs=0 tests/fuzz/corpus/v2 >"$v2log" 2>&1; then
  pass "fuzz_v2_declared_sizes: $(find tests/fuzz/corpus/v2 -type f | wc -l) v2 seeds, no allocation over 1 MiB"
else
  fail "fuzz_v2_declared_sizes: $(grep -m 1 -o 'out-of-memory.*\|ERROR.*' "$v2log")"
fi
{ printf -- '-\n{"inputs":[{"name":"input","shape":[1,784],"datatype":"FP32","data":[0'
  head -c 2097152 /dev/zero | tr '\0' ' '; printf ']}]}'; } >"$probe/v2-2mb.bin"
if "$OUT/fuzz_v2" -malloc_limit_mb=1 -rss_limit_mb=512 "$probe/v2-2mb.bin" >"$v2log" 2>&1; then
  fail "fuzz_v2_malloc_control: a 2 MiB request passed the 1 MiB allocation limit: the limit is not enforced"
elif grep -q 'out-of-memory (malloc(' "$v2log"; then
  pass "fuzz_v2_malloc_control: a real 2 MiB request trips the 1 MiB allocation limit"
else
  fail "fuzz_v2_malloc_control: unexpected failure: $(grep -m 1 -E 'ERROR|SUMMARY' "$v2log")"
fi

[ "$fails" -eq 0 ]
