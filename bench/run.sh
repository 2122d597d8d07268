#!/usr/bin/env bash
# What `make bench` runs (make has built $BUILD/bench/bench_net already):
# our network (bench/bench_net.c) and the same network in PyTorch
# (bench/torch_bench.py) on the same MNIST files, interleaved in one run,
# BENCH_REPS times each, then a table of the medians, our ratio to PyTorch,
# and the performance targets each figure is held to. Then the peers from build/venv-bench
# (scripts/deps.sh bench), chosen by BENCH_PEERS (default all):
#   torch113  Debian's PyTorch 1.13 (the table above)
#   torch2    PyTorch 2 from PyPI, the same script, interleaved likewise
#   onnx      ONNX Runtime on our model exported by scripts/export_onnx.py,
#             interleaved likewise; fails the run unless it predicts the
#             same digit as mnistd on all 10,000 test images
#   keras     the reference Keras script on TensorFlow (bench/keras_seed.py),
#             once: 5 epochs take minutes
#   serving   mnistd, TorchServe and FastAPI under the same wrk load
#             (bench/serving.sh), once
# and bench/report.py prints the peers' tables with the targets as ratios of
# this run and writes $BUILD/bench/bench-throughput.png and bench-latency.png.
#
# Settings (environment):
#   MNISTD_DATA         directory of the MNIST IDX files (make sets it)
#   BENCH_REPS=3        repetitions of each side
#   BENCH_QUICK=1       our recipe runs 1 epoch instead of 5 (the recipe time and
#                       accuracy targets are then not judged)
#   BENCH_TORCH_RECIPE=1  PyTorch also runs the full 5-epoch recipe (slow:
#                       minutes per repetition); by default it times 1 epoch
#   BENCH_HTTP=1        also run bench/http.sh when it exists (all three parts)
#   BENCH_TLS=0         skip the cost of TLS (bench/http.sh's part 3 alone:
#                       /predict over HTTPS against HTTP, with keep-alive and
#                       a connection per request; it runs anyway with BENCH_HTTP=1)
#   BENCH_V2=0          skip bench/v2.sh (the v2 protocol against /predict)
#   BENCH_EXPLAIN=0     skip bench/explain.sh (one explanation against one /predict)
#   BENCH_INT8=0        skip bench/int8.sh (int8 against fp32: batch 64, one image,
#                       test accuracy, /predict at 64 connections)
#   BENCH_REGRESS=REV   also run bench/regress.sh REV: this tree against
#                       revision REV (instruction counts under callgrind,
#                       /predict requests/s), as ratios of the same run
#   BENCH_JOB=0         skip bench/train_job.sh (a POST /train epoch against
#                       the engine's epoch)
#   BENCH_CONTAINER=0   skip bench/container.sh (the image against the native
#                       build, with a private Docker engine; needs root)
#   TORCH_PYTHON        interpreter with torch (default /usr/bin/python3)
#   BENCH_PEERS         peers to run (default "torch113 torch2 onnx keras serving")
#   OMP_WAIT_POLICY     for the PyTorch runs, default PASSIVE: on a shared
#                       machine OpenMP threads that spin while waiting made a
#                       PyTorch training step 10x slower (ACTIVE is OpenMP's
#                       spinning default)
# Raw lines of every run are kept in $BUILD/bench/results-<time>.txt.
set -u
BUILD=${BUILD:-build}
REPS=${BENCH_REPS:-3}
QUICK=${BENCH_QUICK:-0}
TORCH_RECIPE=${BENCH_TORCH_RECIPE:-0}
PY=${TORCH_PYTHON:-/usr/bin/python3}
OURS=$BUILD/bench/bench_net
PEERS=" ${BENCH_PEERS:-torch113 torch2 onnx keras serving} "
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
VPY=build/venv-bench/bin/python
want() { [[ "$PEERS" == *" $1 "* ]]; }

if [ -z "${MNISTD_DATA:-}" ] || [ ! -d "$MNISTD_DATA" ]; then
  echo "bench: set MNISTD_DATA to the directory holding the MNIST IDX files" >&2
  exit 2
fi
if [ ! -x "$OURS" ]; then
  echo "bench: $OURS is missing; run it through 'make bench'" >&2
  exit 2
fi
case "$REPS" in ''|*[!0-9]*|0) echo "bench: BENCH_REPS must be a positive integer" >&2; exit 2 ;; esac

have_torch=1
if ! want torch113; then
  have_torch=0
elif ! "$PY" -c 'import torch, numpy' 2>/dev/null; then
  have_torch=0
  echo "bench: $PY has no torch/numpy (scripts/deps.sh bench installs python3-torch);" \
       "PyTorch figures are skipped" >&2
fi

epochs=5; [ "$QUICK" = 1 ] && epochs=1
torch_args=(--epochs 1); [ "$TORCH_RECIPE" = 1 ] && torch_args=(--recipe)
mkdir -p "$BUILD/bench"
log=$BUILD/bench/results-$(date +%Y%m%d-%H%M%S).txt
: >"$log"
echo "bench: $REPS repetition(s); ours: ${epochs}-epoch recipe + inference; PyTorch:" \
     "$([ "$TORCH_RECIPE" = 1 ] && echo 5-epoch recipe || echo 1 epoch) + inference; $(nproc) cores"
echo "bench: load now: $(cut -d' ' -f1-3 /proc/loadavg) (the machine may be shared: figures are noisy)"

run_ours() {
  echo "  [rep $1] ours ..." >&2
  "$OURS" --epochs "$epochs" --seed "$1" >>"$log" || { echo "bench: bench_net failed" >&2; return 1; }
}
run_torch() {
  [ "$have_torch" = 1 ] || return 0
  echo "  [rep $1] pytorch ..." >&2
  "$PY" bench/torch_bench.py "${torch_args[@]}" --seed "$1" >>"$log" ||
    { echo "bench: torch_bench.py failed" >&2; return 1; }
}

if [[ "$PEERS" =~ (torch2|onnx|keras|serving) ]] && ! "$VPY" -c 'import torch, onnxruntime' 2>/dev/null; then
  echo "bench: $VPY is missing or incomplete (scripts/deps.sh bench); peers skipped: $PEERS" >&2
  PEERS=" $(want torch113 && echo torch113) "
fi
run_torch2() {
  want torch2 || return 0
  echo "  [rep $1] pytorch 2 ..." >&2
  "$VPY" bench/torch_bench.py --prefix torch2 "${torch_args[@]}" --seed "$1" >>"$log" ||
    { echo "bench: torch_bench.py (PyTorch 2) failed" >&2; return 1; }
}
run_onnx() {
  want onnx || return 0
  echo "  [rep $1] onnx runtime ..." >&2
  "$VPY" bench/onnx_bench.py "$BUILD/bench/mnist-cnn.onnx" "$BUILD/bench/ours-probs.bin" >>"$log" ||
    { echo "bench: FAILED: ONNX Runtime run or its agreement with mnistd (see above)" >&2; return 1; }
}

status=0
if want onnx; then
  "$VPY" scripts/export_onnx.py models/mnist-cnn.safetensors "$BUILD/bench/mnist-cnn.onnx" >&2 &&
    "$OURS" --probs models/mnist-cnn.safetensors "$BUILD/bench/ours-probs.bin" ||
    { echo "bench: FAILED: ONNX export or our probabilities" >&2; status=1; }
fi
for ((r = 1; r <= REPS; r++)); do
  # Alternate who goes first so that slow phases of a shared machine hit all.
  if [ $((r % 2)) -eq 1 ]; then
    run_ours "$r" || status=1; run_torch "$r" || status=1
    run_torch2 "$r" || status=1; run_onnx "$r" || status=1
  else
    run_onnx "$r" || status=1; run_torch2 "$r" || status=1
    run_torch "$r" || status=1; run_ours "$r" || status=1
  fi
done
if want keras; then
  echo "  keras seed (5 epochs) ..." >&2
  "$VPY" bench/keras_seed.py --plot "$BUILD/bench/keras-seed.png" >"$BUILD/bench/keras.log" 2>&1 &&
    grep '^keras\.' "$BUILD/bench/keras.log" >>"$log" ||
    { echo "bench: keras_seed.py failed (see $BUILD/bench/keras.log)" >&2; status=1; }
fi
if want serving; then
  echo "  serving peers ..." >&2
  BUILD=$BUILD bash bench/serving.sh >>"$log" || { echo "bench: bench/serving.sh failed" >&2; status=1; }
fi

# Median of every value of key $1 in the log ("n/a" when there is none).
med() {
  grep "^$1=" "$log" | cut -d= -f2 | sort -g |
    awk '{a[NR]=$1} END {if (NR == 0) print "n/a";
         else if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2] + a[NR/2+1]) / 2}'
}
# ratio a b: a/b with 2 decimals, n/a when either is missing.
ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN {if (a == "n/a" || b == "n/a" || b + 0 == 0) print "n/a";
                                  else printf "%.2f", a / b}'
}
# judge value op target: "met" / "MISSED" / "n/a".
judge() {
  awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN {if (v == "n/a") {print "n/a"; exit}
    ok = (op == "<=") ? (v + 0 <= t + 0) : (v + 0 >= t + 0); print ok ? "met" : "MISSED"}'
}
fmt() { awk -v v="$1" -v f="$2" 'BEGIN {if (v == "n/a") print v; else printf f, v}'; }

o_tps=$(med ours.train_samples_per_s); t_tps=$(med torch.train_samples_per_s)
o_ips=$(med ours.infer_images_per_s);  t_ips=$(med torch.infer_images_per_s)
o_lat=$(med ours.latency_us_median);   t_lat=$(med torch.latency_us_median)
o_p99=$(med ours.latency_us_p99);      t_p99=$(med torch.latency_us_p99)
o_rec=$(med ours.recipe_seconds);      o_acc=$(med ours.test_accuracy)
t_rec=$(med torch.recipe_seconds);     t_acc=$(med torch.test_accuracy)
o_tsec=$(med ours.train_seconds)
# PyTorch's 5-epoch time from its measured rate when it did not run the recipe.
t_rec_note=""
if [ "$t_rec" = n/a ] && [ "$t_tps" != n/a ]; then
  t_rec=$(awk -v s="$t_tps" 'BEGIN {printf "%.1f", 5 * 48000 / s}'); t_rec_note=" (est. 5 x 48000 / rate)"
fi

echo
echo "medians of $REPS run(s); ratio = ours / PyTorch"
printf '%-40s %12s %12s %8s   %s\n' figure ours pytorch ratio "target"
printf '%-40s %12s %12s %8s   %s\n' "training samples/s (batch 64, +val)" "$(fmt "$o_tps" %.0f)" \
  "$(fmt "$t_tps" %.0f)" "$(ratio "$o_tps" "$t_tps")" "-"
printf '%-40s %12s %12s %8s   %s\n' "inference images/s (batch 64)" "$(fmt "$o_ips" %.0f)" \
  "$(fmt "$t_ips" %.0f)" "$(ratio "$o_ips" "$t_ips")" ">= 25000: $(judge "$o_ips" '>=' 25000)"
printf '%-40s %12s %12s %8s   %s\n' "single image latency median (us)" "$(fmt "$o_lat" %.1f)" \
  "$(fmt "$t_lat" %.1f)" "$(ratio "$o_lat" "$t_lat")" "<= 75: $(judge "$o_lat" '<=' 75)"
printf '%-40s %12s %12s %8s   %s\n' "single image latency p99 (us)" "$(fmt "$o_p99" %.1f)" \
  "$(fmt "$t_p99" %.1f)" "$(ratio "$o_p99" "$t_p99")" "-"
if [ "$QUICK" = 1 ]; then
  printf '%-40s %12s %12s %8s   %s\n' "recipe seconds (1 epoch, quick)" "$(fmt "$o_rec" %.1f)" "-" "-" \
    "(5-epoch target not judged)"
  printf '%-40s %12s %12s %8s   %s\n' "test accuracy (1 epoch, quick)" "$o_acc" "$t_acc" "-" \
    "(>= 0.99 target not judged)"
else
  printf '%-40s %12s %12s %8s   %s\n' "full recipe seconds (5 epochs, end to end)" "$(fmt "$o_rec" %.1f)" \
    "$(fmt "$t_rec" %.1f)" "$(ratio "$o_rec" "$t_rec")" "<= 30: $(judge "$o_rec" '<=' 30)$t_rec_note"
  printf '%-40s %12s %12s %8s   %s\n' "test accuracy (10,000 images)" "$o_acc" "$t_acc" "-" \
    ">= 0.99: $(judge "$o_acc" '>=' 0.99)"
fi
# The fractions of the machine's limit: bench_net measures the FMA peak of
# the moment (all its threads, and one) before its figures.
o_pk=$(med ours.fma_peak_gflops); o_pk1=$(med ours.fma_peak_gflops_1t)
echo
echo "fraction of the FMA limit (peak measured in the same run: $(fmt "$o_pk" %.0f) GFLOP/s on" \
     "$(nproc) threads, $(fmt "$o_pk1" %.0f) on 1; the network's nominal FLOPs)"
printf '%-40s %12s   %s\n' "full recipe (end to end)" "$(fmt "$(med ours.recipe_peak_fraction)" %.3f)" \
  ">= 0.75: $(judge "$(med ours.recipe_peak_fraction)" '>=' 0.75)$([ "$QUICK" = 1 ] && echo ' (1 epoch, quick)')"
printf '%-40s %12s   %s\n' "inference batch 64" "$(fmt "$(med ours.infer_peak_fraction)" %.3f)" \
  ">= 0.85: $(judge "$(med ours.infer_peak_fraction)" '>=' 0.85)"
printf '%-40s %12s   %s\n' "one image (of all threads / of 1 core)" \
  "$(fmt "$(med ours.latency_peak_fraction)" %.3f) / $(fmt "$(med ours.latency_peak_fraction_1t)" %.3f)" \
  "<= 40 us: $(judge "$o_lat" '<=' 40)"
# Every run's value, in run order, to show the spread behind the medians.
each() { grep "^$1=" "$log" | cut -d= -f2 | tr '\n' ' '; }
echo "each run: ours recipe s: $(each ours.recipe_seconds)| test acc: $(each ours.test_accuracy)"
echo "          ours train samples/s: $(each ours.train_samples_per_s)| pytorch: $(each torch.train_samples_per_s)"
echo "          ours images/s: $(each ours.infer_images_per_s)| pytorch: $(each torch.infer_images_per_s)"
echo "(ours: train_run ${epochs} epoch(s) took a median $(fmt "$o_tsec" %.1f) s; raw lines in $log)"

if [ "${BENCH_INT8:-1}" = 1 ]; then
  echo; echo "bench: bench/int8.sh (int8 against fp32, in the same run)"
  BUILD=$BUILD bash bench/int8.sh || status=1
fi

if [[ "$PEERS" =~ (torch2|onnx|keras|serving) ]]; then
  echo
  echo "== peers (medians of this run; ratios of this run) =="
  "$VPY" bench/report.py "$log" "$BUILD/bench" | tee "$BUILD/bench/peers.md" || status=1
  echo "(tables in $BUILD/bench/peers.md; plots $BUILD/bench/bench-throughput.png, bench-latency.png)"
fi

# The container image against the native build, where a Docker engine can
# run (root, Debian's docker.io): bench/container.sh says why when it cannot.
if [ "${BENCH_CONTAINER:-1}" = 1 ]; then
  echo; echo "bench: bench/container.sh (/predict requests/s, container vs native)"
  BUILD=$BUILD bash bench/container.sh || status=1
fi

if [ "${BENCH_HTTP:-0}" = 1 ]; then
  if [ -f bench/http.sh ]; then
    echo; echo "bench: bench/http.sh"
    BUILD=$BUILD bash bench/http.sh || status=1
  else
    echo "bench: BENCH_HTTP=1 but bench/http.sh does not exist"
  fi
elif [ "${BENCH_TLS:-1}" = 1 ]; then
  echo; echo "bench: bench/http.sh, part 3 (the cost of TLS)"
  BUILD=$BUILD HTTP_PARTS=3 bash bench/http.sh 5 || status=1
fi
if [ "${BENCH_JOB:-1}" = 1 ]; then
  echo; echo "bench: bench/train_job.sh"
  BUILD=$BUILD BENCH_RESULTS=$log bash bench/train_job.sh || status=1
fi
if [ "${BENCH_V2:-1}" = 1 ]; then
  echo; echo "bench: bench/v2.sh"
  BUILD=$BUILD bash bench/v2.sh || status=1
fi
if [ -n "${BENCH_REGRESS:-}" ]; then
  echo; echo "bench: bench/regress.sh $BENCH_REGRESS"
  BUILD=$BUILD bash bench/regress.sh "$BENCH_REGRESS" || status=1
fi
if [ "${BENCH_EXPLAIN:-1}" = 1 ]; then
  echo; echo "bench: bench/explain.sh (one explanation against one /predict)"
  BUILD=$BUILD bash bench/explain.sh || status=1
fi
exit $status
