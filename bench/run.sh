#!/usr/bin/env bash
# What `make bench` runs (make has built $BUILD/bench/bench_net already):
# our network (bench/bench_net.c) and the same network in PyTorch
# (bench/torch_bench.py) on the same MNIST files, interleaved in one run,
# BENCH_REPS times each, then a table of the medians, our ratio to PyTorch,
# and the performance targets each figure is held to.
#
# Settings (environment):
#   MNISTD_DATA         directory of the MNIST IDX files (make sets it)
#   BENCH_REPS=3        repetitions of each side
#   BENCH_QUICK=1       our recipe runs 1 epoch instead of 5 (the recipe time and
#                       accuracy targets are then not judged)
#   BENCH_TORCH_RECIPE=1  PyTorch also runs the full 5-epoch recipe (slow:
#                       minutes per repetition); by default it times 1 epoch
#   BENCH_HTTP=1        also run bench/http.sh when it exists
#   BENCH_V2=0          skip bench/v2.sh (the v2 protocol against /predict)
#   TORCH_PYTHON        interpreter with torch (default /usr/bin/python3)
# Raw lines of every run are kept in $BUILD/bench/results-<time>.txt.
set -u
BUILD=${BUILD:-build}
REPS=${BENCH_REPS:-3}
QUICK=${BENCH_QUICK:-0}
TORCH_RECIPE=${BENCH_TORCH_RECIPE:-0}
PY=${TORCH_PYTHON:-/usr/bin/python3}
OURS=$BUILD/bench/bench_net

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
if ! "$PY" -c 'import torch, numpy' 2>/dev/null; then
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

status=0
for ((r = 1; r <= REPS; r++)); do
  # Alternate who goes first so that slow phases of a shared machine hit both.
  if [ $((r % 2)) -eq 1 ]; then
    run_ours "$r" || status=1; run_torch "$r" || status=1
  else
    run_torch "$r" || status=1; run_ours "$r" || status=1
  fi
done

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
# Every run's value, in run order, to show the spread behind the medians.
each() { grep "^$1=" "$log" | cut -d= -f2 | tr '\n' ' '; }
echo "each run: ours recipe s: $(each ours.recipe_seconds)| test acc: $(each ours.test_accuracy)"
echo "          ours train samples/s: $(each ours.train_samples_per_s)| pytorch: $(each torch.train_samples_per_s)"
echo "          ours images/s: $(each ours.infer_images_per_s)| pytorch: $(each torch.infer_images_per_s)"
echo "(ours: train_run ${epochs} epoch(s) took a median $(fmt "$o_tsec" %.1f) s; raw lines in $log)"

if [ "${BENCH_HTTP:-0}" = 1 ]; then
  if [ -f bench/http.sh ]; then
    echo; echo "bench: bench/http.sh"
    BUILD=$BUILD bash bench/http.sh || status=1
  else
    echo "bench: BENCH_HTTP=1 but bench/http.sh does not exist"
  fi
fi
if [ "${BENCH_V2:-1}" = 1 ]; then
  echo; echo "bench: bench/v2.sh"
  BUILD=$BUILD bash bench/v2.sh || status=1
fi
exit $status
