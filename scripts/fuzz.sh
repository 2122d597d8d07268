#!/usr/bin/env bash
# Builds and runs mnistd's libFuzzer harnesses (tests/fuzz/fuzz_*.c) under
# AddressSanitizer and UndefinedBehaviorSanitizer.
#
#   scripts/fuzz.sh build               build every harness into build/fuzz/
#   scripts/fuzz.sh run [NAME...]       build, then fuzz each harness (default:
#                                       all) for FUZZ_SECONDS, one at a time
#   scripts/fuzz.sh list                the harness names
#
# Settings (environment):
#   FUZZ_SECONDS  seconds per harness (default 60)
#   FUZZ_NICE     nice level of the fuzzing processes (default 10)
#   FUZZ_ARGS     extra libFuzzer flags for every run (e.g. "-runs=1000")
#   CLANG         the compiler (default clang-14, else clang)
#
# A run fuzzes from the seed corpus tests/fuzz/corpus/NAME (read only) and a
# working corpus build/fuzz/corpus/NAME that keeps what earlier runs found.
# Crash, leak, timeout and out-of-memory inputs go to build/fuzz/artifacts/
# (NAME-crash-<sha1> ...); logs to build/fuzz/logs/NAME.log. At the end one
# line per harness: seconds, executions, executions per second, coverage
# and crashes, also written to build/fuzz/summary.txt. Exit status 1 when a
# harness crashed, 2 on a usage or build error.
#
# The fuzz build compiles the project sources it needs directly with clang
# (never build/libmnistd.a) and links the system libraries only: no jemalloc,
# so ASan sees every allocation.
set -euo pipefail

cd "$(dirname "$0")/.."
OUT=build/fuzz
SECONDS_PER=${FUZZ_SECONDS:-60}
NICE=${FUZZ_NICE:-10}
EXTRA=${FUZZ_ARGS:-}

# name -> project sources and libraries it links.
ALL=(png multipart idx ckpt ckpt_header json_train json_evaluate v2 explain)
declare -A SRC=(
  [png]="model/png.c model/preprocess.c model/err.c"
  [multipart]="api/multipart.c"
  [idx]="model/mnist.c model/err.c"
  [ckpt]="model/checkpoint.c model/qscales.c model/atomicfile.c model/net.c model/kernels.c model/isa/kernels.c model/layers.c model/pool.c model/err.c"
  [ckpt_header]="model/checkpoint.c model/qscales.c model/atomicfile.c model/net.c model/kernels.c model/isa/kernels.c model/layers.c model/pool.c model/err.c"
  [json_train]="api/train.c api/jsonbody.c api/auth.c model/train.c model/augment.c model/net.c model/kernels.c model/isa/kernels.c model/layers.c model/pool.c model/mnist.c model/checkpoint.c model/qscales.c model/atomicfile.c server/promote.c server/jobnames.c model/err.c"
  [json_evaluate]="api/evalreq.c model/robust.c model/augment.c model/train.c model/net.c model/kernels.c model/isa/kernels.c model/layers.c model/pool.c model/mnist.c model/checkpoint.c model/qscales.c model/atomicfile.c model/err.c"
  [v2]="api/oip.c api/oipscan.c api/oipreply.c server/strbuf.c server/log.c"
  [explain]="api/explainopt.c"
)
declare -A LIBS=(
  [png]="-lpng -lz -lm"
  [multipart]=""
  [idx]="-lz"
  [ckpt]="-lcjson -lopenblas -lm"
  [ckpt_header]="-lcjson -lopenblas -lm"
  [json_train]="-lcjson -lopenblas -lz -lm"
  [json_evaluate]="-lcjson -lopenblas -lz -lm"
  [v2]="-lcjson -lm"
  [explain]=""
)
# Per-input time limit (seconds) and memory limit (MB) of every run.
TIMEOUT=10
RSS_MB=2048

die() { echo "fuzz: $*" >&2; exit 2; }

find_clang() {
  if [ -n "${CLANG:-}" ]; then echo "$CLANG"; return; fi
  for c in clang-14 clang; do
    command -v "$c" >/dev/null 2>&1 && { echo "$c"; return; }
  done
  return 1
}

CFLAGS_FUZZ=(-std=c11 -D_GNU_SOURCE -I. -g -O1 -fno-omit-frame-pointer
             -Wall -Wextra -Wstrict-prototypes -Wshadow
             -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
             -DMNISTD_SANITIZER=1 -DKERNELS_ISA=portable
             -DMNISTD_VERSION="\"$(cat VERSION 2>/dev/null || echo 0.0.0)\"" -DMNISTD_GITREV="\"fuzz\"")

# Builds build/fuzz/fuzz_NAME unless it is newer than everything it is made of.
build_one() {
  local name=$1 cc=$2
  local bin=$OUT/fuzz_$name
  local srcs=(tests/fuzz/fuzz_$name.c ${SRC[$name]})
  local newest
  newest=$(ls -t "${srcs[@]}" model/*.h api/*.h server/*.h tests/fuzz/*.h scripts/fuzz.sh 2>/dev/null | head -n 1)
  if [ -x "$bin" ] && [ "$bin" -nt "$newest" ]; then
    return 0
  fi
  mkdir -p "$OUT"
  echo "fuzz: building $bin" >&2
  # shellcheck disable=SC2086
  "$cc" "${CFLAGS_FUZZ[@]}" -o "$bin" "${srcs[@]}" ${LIBS[$name]} -pthread
}

build_all() {
  local cc
  cc=$(find_clang) || die "clang not found (apt-get install clang libclang-rt-14-dev)"
  for n in "$@"; do build_one "$n" "$cc" || die "building fuzz_$n failed"; done
}

# Fuzzes one harness for SECONDS_PER seconds; appends its summary line.
run_one() {
  local name=$1
  local bin=$OUT/fuzz_$name log=$OUT/logs/$name.log
  local work=$OUT/corpus/$name seeds=tests/fuzz/corpus/$name
  local dict=tests/fuzz/dict/$name.dict
  mkdir -p "$work" "$OUT/artifacts" "$OUT/logs"
  local before after
  before=$(ls "$OUT/artifacts" | grep -c "^$name-" || true)
  local args=(-max_total_time="$SECONDS_PER" -print_final_stats=1 -timeout=$TIMEOUT
              -rss_limit_mb=$RSS_MB -artifact_prefix="$OUT/artifacts/$name-")
  [ -f "$dict" ] && args+=(-dict="$dict")
  local dirs=("$work")
  [ -d "$seeds" ] && dirs+=("$seeds")
  echo "fuzz: $name for ${SECONDS_PER}s (log $log)" >&2
  local t0 t1 rc=0
  t0=$(date +%s)
  # shellcheck disable=SC2086
  OPENBLAS_NUM_THREADS=1 \
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0} \
  UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    nice -n "$NICE" "$bin" "${args[@]}" $EXTRA "${dirs[@]}" >"$log" 2>&1 || rc=$?
  t1=$(date +%s)
  after=$(ls "$OUT/artifacts" | grep -c "^$name-" || true)
  local execs cov crashes
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | awk '{print $2}')
  crashes=$((after - before))
  [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ] && crashes=1
  local secs=$((t1 - t0))
  local rate=0
  [ "$secs" -gt 0 ] && [ -n "$execs" ] && rate=$((execs / secs))
  printf '%-12s %8s %12s %10s %8s %8s\n' "$name" "$secs" "${execs:-?}" "$rate" "${cov:-?}" \
    "$crashes" >>"$OUT/summary.txt"
  if [ "$crashes" -gt 0 ]; then
    echo "fuzz: $name CRASHED (exit $rc); artifacts:" >&2
    ls "$OUT/artifacts" | grep "^$name-" | sed "s|^|  $OUT/artifacts/|" >&2
    grep -m 1 -E 'ERROR: (AddressSanitizer|libFuzzer|LeakSanitizer)|runtime error|contract broken' \
      "$log" >&2 || true
    return 1
  fi
}

cmd=${1:-run}
[ $# -gt 0 ] && shift
names=("$@")
[ ${#names[@]} -eq 0 ] && names=("${ALL[@]}")
for n in "${names[@]}"; do
  [ -n "${SRC[$n]+x}" ] || die "unknown harness '$n' (have: ${ALL[*]})"
done

case "$cmd" in
  list) printf '%s\n' "${ALL[@]}" ;;
  build) build_all "${names[@]}" ;;
  run)
    [[ "$SECONDS_PER" =~ ^[0-9]+$ ]] && [ "$SECONDS_PER" -gt 0 ] || die "FUZZ_SECONDS must be a positive integer"
    build_all "${names[@]}"
    mkdir -p "$OUT"
    printf '%-12s %8s %12s %10s %8s %8s\n' harness seconds executions 'exec/s' coverage crashes \
      >"$OUT/summary.txt"
    status=0
    for n in "${names[@]}"; do run_one "$n" || status=1; done
    cat "$OUT/summary.txt"
    exit $status
    ;;
  *) die "usage: $0 build|run|list [NAME...]" ;;
esac
