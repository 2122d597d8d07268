#!/usr/bin/env bash
# Concurrent clients get their own answers: 32 clients at once, each posting
# a different test image (in a different PNG colour type), three rounds, with
# a batch timeout long enough that their images share forward passes. Each
# answer must be the engine's answer for that client's own image (digit and
# confidence, which differ from image to image, so a mix-up in a batch shows).
. "$(dirname "$0")/../contract/lib.sh"
lib_init
need_data test_http_concurrent
ensure_model || { fail test_http_concurrent_model "could not train a model"; exit 1; }
TYPES=(gray rgb rgba ga palette gray16 rgb16 palette-trns)
N=32
for i in $(seq 0 $((N - 1))); do
  "$MKPNG" --mnist "$MNISTD_DATA" --index $((i * 7)) --type "${TYPES[$((i % 8))]}" -o "$WORK/c$i.png"
done
"$MNISTD_BIN" predict --model "$MODEL" "$WORK"/c*.png >"$WORK/expect.txt" || {
  fail test_http_concurrent_engine "mnistd predict failed"; exit 1; }

start_daemon conc --model "$MODEL" --batch-timeout-us 20000 || { fail test_http_concurrent_start "no start"; exit 1; }
: >"$WORK/results.txt"
for round in 1 2 3; do
  pids=()
  for i in $(seq 0 $((N - 1))); do
    ( req POST /predict -H 'Content-Type: image/png' --data-binary "@$WORK/c$i.png"
      echo "$WORK/c$i.png $status $(jget "$body" '"%d %s %d" % (d["digit"], d["confidence"], d["batch_size"])')" \
        >>"$WORK/results.txt" ) &
    pids+=($!)
  done
  wait "${pids[@]}"
done

python3 - "$WORK/expect.txt" "$WORK/results.txt" "$N" <<'PY' || FAILS=$((FAILS + 1))
import sys
failed = 0
expect = {}
for line in open(sys.argv[1]):
    f, d, c = line.split()[:3]
    expect[f] = (int(d), float(c))
rows = [l.split() for l in open(sys.argv[2]) if l.strip()]
n = int(sys.argv[3])
bad = []
for r in rows:
    if r[1] != "200" or len(r) < 5:
        bad.append(" ".join(r)); continue
    d, c = int(r[2]), float(r[3])
    ed, ec = expect[r[0]]
    if d != ed or abs(c - ec) > 1e-5:
        bad.append("%s: got %d %.6f, engine %d %.6f" % (r[0], d, c, ed, ec))
if len(rows) != 3 * n:
    print("FAIL test_http_concurrent_all_answered: %d of %d answers" % (len(rows), 3 * n)); failed = 1
else:
    print("PASS test_http_concurrent_all_answered")
if bad:
    print("FAIL test_http_concurrent_own_answers: %d wrong: %s" % (len(bad), "; ".join(bad[:5]))); failed = 1
else:
    print("PASS test_http_concurrent_own_answers")
sizes = [int(r[4]) for r in rows if len(r) >= 5]
distinct = len({expect[f] for f in expect})
print("batch sizes seen: max %d, mean %.2f; %d distinct engine answers" %
      (max(sizes or [0]), sum(sizes) / max(len(sizes), 1), distinct))
if max(sizes or [0]) > 1:
    print("PASS test_http_concurrent_batched")
else:
    print("FAIL test_http_concurrent_batched: no two clients shared a forward pass"); failed = 1
sys.exit(failed)
PY

# The inference workers run below the HTTP threads' priority (batcher.h):
# under load the HTTP threads keep the queue fed while a batch computes.
threads=$(threads)
ninfer=$(awk '$1 == "mnistd-infer" && $2 == 5' <<<"$threads" | wc -l)
nhttp=$(awk '$1 == "MHD-worker" && $2 == 0' <<<"$threads" | wc -l)
if [ "$ninfer" -eq 2 ] && [ "$nhttp" -eq 2 ] && ! awk '$1 == "mnistd-infer" && $2 != 5 { bad = 1 } END { exit !bad }' <<<"$threads"; then
  pass test_http_concurrent_worker_priority
else
  fail test_http_concurrent_worker_priority "want 2 mnistd-infer threads at nice 5 and 2 HTTP threads at 0: $(tr '\n' ';' <<<"$threads")"
fi
stop_daemon || fail test_http_concurrent_stop "exit status $?"
[ "$FAILS" -eq 0 ]
