#!/usr/bin/env bash
# A training job over HTTP against the engine alone, interleaved in one run:
#   job     one epoch as POST /train {"epochs":1,"seed":1} to a daemon
#           serving the shipped model, from the POST until the job ended
#           "succeeded": training, the test-set evaluation, the int8
#           calibration and accuracy, saving and promotion. Two clocks: the
#           job's own record (timings.total_seconds, POST to end, with each
#           phase) and the client's, which polls GET /train/{id} every 100 ms
#           as a client would (so it sees the end up to 100 ms late);
#   engine  bench_net --epochs 1 --no-infer: train_run's epoch and the
#           test-set evaluation, in one process without HTTP.
# BENCH_JOB_REPS rounds (default 9) of one each, on the same daemon (its
# first job also loads the MNIST files; the medians hide that). Prints
# "job.KEY=VALUE" lines, then the medians and the ratios job / engine.
# With BENCH_RESULTS=FILE (bench/run.sh passes its results file) the raw
# lines, the medians (job.median_*) and the ratios (job.ratio_job_engine
# from the job's record, job.ratio_client_engine, job.ratio_epoch) are
# appended to FILE as well.
#
#   bench/train_job.sh
# Env: MNISTD_DATA, BUILD, BENCH_JOB_REPS, BENCH_RESULTS.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
BIN=$ROOT/$BUILD/mnistd
ENGINE=$ROOT/$BUILD/bench/bench_net
REPS=${BENCH_JOB_REPS:-9}
case "$REPS" in ''|*[!0-9]*|0) echo "train_job: BENCH_JOB_REPS must be a positive integer" >&2; exit 2 ;; esac
[ -d "${MNISTD_DATA:-}" ] || { echo "train_job: set MNISTD_DATA" >&2; exit 2; }
. "$ROOT/bench/lib.sh"
WORK=$(mktemp -d /tmp/mnistd-train-job.XXXXXX)
DPID=
cleanup() { bench_stop; rm -rf "$WORK"; }
trap cleanup EXIT

cp "$ROOT/models/mnist-cnn.safetensors" "$WORK/served.safetensors"
bench_start "$WORK/daemon.log" "$BIN" --model "$WORK/served.safetensors" --data "$MNISTD_DATA"

# One job: POST, poll, print its seconds (the record's, the client's), its
# epoch's and its phases'.
job() {
  python3 - "$BASE" <<'PY'
import json, sys, time, urllib.request
base = sys.argv[1]
body = json.dumps({"epochs": 1, "seed": 1}).encode()
req = urllib.request.Request(base + "/train", body, {"Content-Type": "application/json"})
t0 = time.monotonic()
jid = json.load(urllib.request.urlopen(req))["id"]
while True:
    d = json.load(urllib.request.urlopen("%s/train/%d" % (base, jid)))
    if d["status"] in ("succeeded", "failed", "cancelled"):
        break
    time.sleep(0.1)  # as a client polls; 50 polls a second at nice 0 took CPU from the job (nice +10)
t1 = time.monotonic()
if d["status"] != "succeeded":
    sys.exit("train_job: job %d %s: %s" % (jid, d["status"], d.get("error")))
print("job.client_seconds=%.3f" % (t1 - t0))
print("job.seconds=%.3f" % d["timings"]["total_seconds"])
print("job.epoch_seconds=%.3f" % d["history"][0]["seconds"])
for k in ("load", "train", "evaluate", "quantize", "save"):
    print("job.%s_seconds=%.3f" % (k, d["timings"][k + "_seconds"]))
PY
}

log=$WORK/results.txt
for ((r = 1; r <= REPS; r++)); do
  echo "  [rep $r] training job, engine ..." >&2
  job | tee -a "$log"
  "$ENGINE" --epochs 1 --no-infer --seed 1 | grep -E '^ours\.(train|eval)_seconds=' |
    sed 's/^ours\./job.engine_/' | tee -a "$log"
done

med() { tr '=' ' ' <"$log" | bench_median /dev/stdin "$1"; }
js=$(med job.seconds); jc=$(med job.client_seconds); je=$(med job.epoch_seconds)
et=$(med job.engine_train_seconds); ee=$(med job.engine_eval_seconds)
jv=$(med job.evaluate_seconds); jq=$(med job.quantize_seconds); jsv=$(med job.save_seconds)
summary=$WORK/summary.txt
{
  echo
  echo "one training epoch, medians of $REPS round(s): a POST /train job against the engine alone"
  awk -v js="$js" -v jc="$jc" -v je="$je" -v et="$et" -v ee="$ee" -v jv="$jv" -v jq="$jq" -v jsv="$jsv" 'BEGIN {
    printf "%-52s %8.2f s\n", "job, POST to succeeded (its record)", js
    printf "%-52s %8.2f s\n", "  the same seen by a client polling every 100 ms", jc
    printf "%-52s %8.2f s\n", "engine, train_run epoch + test evaluation", et + ee
    r = js / (et + ee)
    printf "%-52s %8.3f   within 10%%: %s\n", "ratio job / engine", r, r <= 1.10 ? "met" : "MISSED"
    printf "%-52s %8.3f\n", "ratio job seen by the client / engine", jc / (et + ee)
    printf "%-52s %8.2f s against %.2f s: ratio %.3f\n", "the epoch alone (job history / engine train_run)", je, et, je / et
    printf "%-52s %8.2f s against %.2f s\n", "the FP32 test evaluation (job / engine)", jv, ee
    printf "%-52s %8.2f s, %.3f s\n", "the job only: int8 calibration + accuracy, save", jq, jsv
  }'
} | tee "$summary"
if [ -n "${BENCH_RESULTS:-}" ]; then
  {
    cat "$log"
    awk -v js="$js" -v jc="$jc" -v je="$je" -v et="$et" -v ee="$ee" -v n="$REPS" 'BEGIN {
      printf "job.reps=%d\njob.median_seconds=%.3f\njob.median_client_seconds=%.3f\n", n, js, jc
      printf "job.median_epoch_seconds=%.3f\n", je
      printf "job.median_engine_seconds=%.3f\njob.median_engine_train_seconds=%.3f\n", et + ee, et
      printf "job.ratio_job_engine=%.3f\njob.ratio_client_engine=%.3f\njob.ratio_epoch=%.3f\n", js / (et + ee), jc / (et + ee), je / et
    }'
    sed 's/^/# /' "$summary"
  } >>"$BENCH_RESULTS"
fi
