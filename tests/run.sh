#!/usr/bin/env bash
# Runs every test: the C test programs in $BUILD/tests and the scripts in
# tests/integration. Each prints PASS/FAIL/SKIP lines; this counts them and
# ends with one line "N passed, N failed, N skipped". Exit 1 on any failure.
set -u
BUILD=${BUILD:-build}
export BUILD
export MNISTD_BIN=${MNISTD_BIN:-$PWD/$BUILD/mnistd}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
only=${TESTS:-}
suites=${SUITES:-unit integration}
logdir=$BUILD/test-logs
mkdir -p "$logdir"
# Under ThreadSanitizer every report fails the test that caused it: each
# process writes its reports to $tsandir/<test>.<pid> (the daemons that the
# integration tests start included), and halt_on_error stops it at the first.
tsandir=
tsan_on() {
  tsandir=$(cd "$logdir" && pwd)/tsan
  rm -rf "$tsandir"; mkdir -p "$tsandir"
  tsan_opts="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/tests/tsan.supp"
  # OpenBLAS's own threads are not instrumented; the engine runs BLAS on its pool.
  export OPENBLAS_NUM_THREADS=1
  # Instrumented code runs 5-20 times slower.
  TEST_TIMEOUT=${TEST_TIMEOUT:-2700}
}
[ "${SANITIZER:-}" = thread ] && tsan_on
pass=0; fail=0; skip=0
failed_names=()

run_one() {
  local name=$1; shift
  local log=$logdir/$name.log
  local t0=$(date +%s.%N)
  if [ -n "$tsandir" ]; then
    TSAN_OPTIONS="$tsan_opts log_path=$tsandir/$name ${TSAN_OPTIONS:-}" \
      timeout --kill-after=10 "${TEST_TIMEOUT:-900}" "$@" >"$log" 2>&1
  else
    timeout --kill-after=10 "${TEST_TIMEOUT:-900}" "$@" >"$log" 2>&1
  fi
  local rc=$?
  local t1=$(date +%s.%N)
  local p f s r
  if [ -n "$tsandir" ]; then
    for r in "$tsandir/$name".*; do
      [ -f "$r" ] || continue
      { cat "$r"
        echo "FAIL $name: ThreadSanitizer, process ${r##*.}:" \
          "$(grep -m1 '^SUMMARY' "$r" || echo 'see the report above')"; } >>"$log"
    done
  fi
  p=$(grep -c '^PASS ' "$log"); f=$(grep -c '^FAIL ' "$log"); s=$(grep -c '^SKIP ' "$log")
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "FAIL $name: exited with status $rc" >>"$log"; f=1
  fi
  grep -E '^(PASS|FAIL|SKIP) ' "$log" | sed "s|^|  |"
  if [ "$f" -gt 0 ]; then
    failed_names+=("$name")
    echo "  --- $name failed; last lines of $log:"
    tail -n 30 "$log" | sed 's/^/  | /'
  fi
  printf '%-32s %3d passed %3d failed %3d skipped  (%.1fs)\n' "$name" "$p" "$f" "$s" \
    "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')"
  pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
}

# The programs that test the compute kernels run once per kernel level the
# CPU supports (MNISTD_KERNELS), so the portable and AVX2 code is tested on
# an AVX-512 machine too. The levels come from `mnistd --version`.
KERNEL_TESTS=" test_layers test_torch_agree test_net test_explain test_quant "
levels=$(MNISTD_KERNELS= "$MNISTD_BIN" --version 2>/dev/null | sed -n 's/^kernels: .*(supported: \(.*\))$/\1/p')
[ -n "$levels" ] || levels=auto
# run_c NAME PROGRAM: a C test program, per kernel level when it tests them.
run_c() {
  local n=$1 t=$2 l
  if [[ "$KERNEL_TESTS" == *" ${n%\[*} "* ]]; then
    for l in $levels; do MNISTD_KERNELS=$l run_one "$n[$l]" "$t"; done
  else
    run_one "$n" "$t"
  fi
}
for t in "$BUILD"/tests/test_*; do
  [[ " $suites " == *" unit "* ]] || break
  [ -x "$t" ] || continue
  n=$(basename "$t")
  [ -n "$only" ] && [[ ! " $only " == *" $n "* ]] && continue
  run_c "$n" "$t"
done
for t in tests/integration/test_*; do
  [[ " $suites " == *" integration "* ]] || break
  [ -f "$t" ] || continue
  n=$(basename "$t"); n=${n%.*}
  [ -n "$only" ] && [[ ! " $only " == *" $n "* ]] && continue
  case "$t" in
    *.sh) run_one "$n" bash "$t" ;;
    *.py) run_one "$n" python3 "$t" ;;
    *) run_one "$n" "$t" ;;
  esac
done

# The sanitizer pass of a plain `make test`: the C test programs again, built
# with AddressSanitizer + UndefinedBehaviorSanitizer.
if [ -n "${ASAN_PASS_BUILD:-}" ] && [ -d "$ASAN_PASS_BUILD/tests" ]; then
  echo "-- sanitizer pass: the C test programs built with ASan+UBSan ($ASAN_PASS_BUILD)"
  for t in "$ASAN_PASS_BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    n=$(basename "$t")
    [ -n "$only" ] && [[ ! " $only " == *" $n "* ]] && continue
    run_c "$n[asan]" "$t"
  done
fi

# And the concurrency tests (TSAN_PASS_TESTS) under ThreadSanitizer, without
# MNISTD_DATA: what they test needs no MNIST, and the data tests would be slow.
if [ -n "${TSAN_PASS_BUILD:-}" ] && [ -d "$TSAN_PASS_BUILD/tests" ]; then
  echo "-- ThreadSanitizer pass: the concurrency tests ($TSAN_PASS_BUILD)"
  tsan_on
  for n in ${TSAN_PASS_TESTS:-}; do
    [ -n "$only" ] && [[ ! " $only " == *" $n "* ]] && continue
    MNISTD_DATA= run_one "$n[tsan]" "$TSAN_PASS_BUILD/tests/$n"
  done
fi

[ ${#failed_names[@]} -gt 0 ] && echo "failed: ${failed_names[*]}"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
