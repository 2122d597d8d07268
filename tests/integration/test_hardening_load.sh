#!/usr/bin/env bash
# Load and soak: wrk drives 200,000 POST /predict (a PNG) over 64 keep-alive
# connections. Asserts every response is 2xx with no socket error (wrk's own
# counts and a Lua count of every status), that the daemon counted the same
# number of 200s, and that resident memory does not grow after warm-up: the
# daemon's VmRSS (/proc/PID/status) and mnistd_process_resident_memory_bytes
# (/metrics) are sampled during the run, and the largest sample after the
# first LOAD_WARMUP (50,000) predictions may exceed the sample taken at that
# point by at most LOAD_RSS_SLACK_KB (4096 KiB).
# Under a sanitizer build the run is 20,000 requests and the memory check is
# skipped (ASan's quarantine holds freed memory by design).
. "$(dirname "$0")/../contract/lib.sh"
lib_init
command -v wrk >/dev/null || { fail test_hardening_load "wrk is not installed (scripts/deps.sh test)"; exit 1; }
TOTAL=${LOAD_REQUESTS:-200000}
WARMUP=${LOAD_WARMUP:-50000}
SLACK_KB=${LOAD_RSS_SLACK_KB:-4096}
if [ -n "${SANITIZER:-}" ]; then TOTAL=${LOAD_REQUESTS_SANITIZER:-20000}; WARMUP=$((TOTAL / 4)); fi
CONNS=64
THREADS=2

M=$WORK/model.safetensors
[ -f "$ROOT/models/mnist-cnn.safetensors" ] || { skip test_hardening_load "no shipped model"; exit 0; }
cp "$ROOT/models/mnist-cnn.safetensors" "$M"
python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import hardening as H; open(sys.argv[2], "wb").write(H.png_digit())' \
  "$ROOT/tests/tools" "$WORK/d.png"

# Each wrk thread stops itself after its share of responses and leaves a
# marker file (wrk itself only ends at -d or SIGINT, so the test sends SIGINT
# once every thread is done); done() prints the totals of every thread: 2xx,
# other statuses, and wrk's error counters.
cat >"$WORK/load.lua" <<EOF
local f = assert(io.open("$WORK/d.png", "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "image/png"
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end
function init(args)
  share = math.floor($TOTAL / $THREADS)
  n2xx = 0
  nother = 0
  seen = 0
end
function response(status, headers, body)
  seen = seen + 1
  if status >= 200 and status < 300 then n2xx = n2xx + 1 else nother = nother + 1 end
  if seen == share then
    local m = assert(io.open("$WORK/done." .. id, "w"))
    m:close()
    wrk.thread:stop()
  end
end
function done(summary, latency, requests)
  local a, b = 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("n2xx")
    b = b + t:get("nother")
  end
  local e = summary.errors
  io.write(string.format("LUA 2xx=%d other=%d connect=%d read=%d write=%d status=%d timeout=%d\n",
    a, b, e.connect, e.read, e.write, e.status, e.timeout))
  io.write(string.format("LUA p50_us=%d p99_us=%d\n", latency:percentile(50), latency:percentile(99)))
end
EOF

start_daemon load --model "$M" || { fail test_hardening_load "daemon did not start"; exit 1; }
count() { metric 'mnistd_http_requests_total{route="/predict",code="200"}'; }
# Sampler: predictions so far, VmRSS (KiB), the metric (bytes), every 0.25 s.
: >"$WORK/samples"
(
  while kill -0 "$PID" 2>/dev/null && [ ! -f "$WORK/stop-sampling" ]; do
    m=$(curl -s --max-time 5 "http://127.0.0.1:$PORT/metrics")
    c=$(awk '$1 == "mnistd_http_requests_total{route=\"/predict\",code=\"200\"}" { print $2 }' <<<"$m")
    r=$(awk '$1 == "mnistd_process_resident_memory_bytes" { print $2 }' <<<"$m")
    v=$(awk '/^VmRSS/ { print $2 }' "/proc/$PID/status" 2>/dev/null)
    echo "${c:-0} ${v:-0} ${r:-0}" >>"$WORK/samples"
    sleep 0.25  # the sampling period, not a wait for a state
  done
) &
sampler=$!
# CPU time (clock ticks) of each HTTP thread, to see how the load spread.
http_ticks() { threads | awk '$1 == "MHD-worker" { print $3 }'; }
http_ticks >"$WORK/http0"
t0=$(date +%s.%N)
wrk -t$THREADS -c$CONNS -d600s --timeout 10s -s "$WORK/load.lua" "http://127.0.0.1:$PORT/predict" \
  >"$WORK/wrk.txt" 2>&1 &
wpid=$!
PIDS+=("$wpid")
threads_done() { [ "$(ls "$WORK"/done.* 2>/dev/null | wc -l)" -ge "$THREADS" ]; }
wait_until "${LOAD_DEADLINE_S:-300}" threads_done || fail test_hardening_load_finished "wrk did not finish in time"
kill -INT "$wpid"
wait "$wpid"
t1=$(date +%s.%N)
http_ticks >"$WORK/http1"
# One last sample after the load.
m=$(curl -s "http://127.0.0.1:$PORT/metrics")
echo "$(awk '$1 == "mnistd_http_requests_total{route=\"/predict\",code=\"200\"}" { print $2 }' <<<"$m") \
$(awk '/^VmRSS/ { print $2 }' "/proc/$PID/status") \
$(awk '$1 == "mnistd_process_resident_memory_bytes" { print $2 }' <<<"$m")" >>"$WORK/samples"
touch "$WORK/stop-sampling"
wait "$sampler"
cat "$WORK/wrk.txt"

read -r ok other cerr rerr werr serr terr <<<"$(awk '/^LUA 2xx=/ { gsub(/[a-z0-9]+=/, ""); print $2, $3, $4, $5, $6, $7, $8 }' "$WORK/wrk.txt")"
secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
echo "load: ${ok:-?} 2xx, ${other:-?} other, errors connect ${cerr:-?} read ${rerr:-?} write ${werr:-?} status ${serr:-?} timeout ${terr:-?} in $secs s"
check test_hardening_load_all_2xx "2xx ${ok:-?} of $TOTAL, other ${other:-?}" \
  test "${ok:-0}" -ge "$TOTAL" -a "${other:-1}" -eq 0
check test_hardening_load_no_socket_errors "connect $cerr read $rerr write $werr status $serr timeout $terr" \
  test "${cerr:-1}" -eq 0 -a "${rerr:-1}" -eq 0 -a "${werr:-1}" -eq 0 -a "${serr:-1}" -eq 0 -a "${terr:-1}" -eq 0
check test_hardening_load_no_wrk_error_lines "wrk reported errors" \
  bash -c "! grep -qE 'Non-2xx|Socket errors' '$WORK/wrk.txt'"
# The connections, all opened at once, are spread over the HTTP threads:
# each of the 2 did at least a quarter of their work (one thread taking them
# all would leave the other idle and serialise every answer).
shares=$(paste "$WORK/http0" "$WORK/http1" | awk '{ d[NR] = $2 - $1; s += d[NR] }
  END { for (i = 1; i <= NR; i++) printf "%.2f ", s ? d[i] / s : 0 }')
check test_hardening_load_spread_over_http_threads "HTTP threads' shares of CPU time: $shares" \
  awk -v s="$shares" 'BEGIN { n = split(s, a, " "); if (n != 2) exit 1; for (i = 1; i <= n; i++) if (a[i] < 0.25) exit 1 }'
served=$(count)
check test_hardening_load_daemon_counted "the daemon counted ${served:-?} answers with 200, wrk saw ${ok:-?}" \
  test "${served:-0}" -ge "${ok:-1}"

# Memory after warm-up.
if [ -n "${SANITIZER:-}" ]; then
  skip test_hardening_load_rss_flat "sanitizer build: ASan's quarantine keeps freed memory"
  skip test_hardening_load_metric_rss_flat "sanitizer build"
else
  read -r base_v base_m max_v max_m n <<<"$(awk -v w="$WARMUP" '
    $1 >= w && !have { bv = $2; bm = $3; have = 1 }
    have { if ($2 > mv) mv = $2; if ($3 > mm) mm = $3; n++ }
    END { print bv + 0, bm + 0, mv + 0, mm + 0, n + 0 }' "$WORK/samples")"
  echo "rss: at $WARMUP requests ${base_v} KiB (metric $((base_m / 1024)) KiB), largest after ${max_v} KiB (metric $((max_m / 1024)) KiB), $n samples"
  check test_hardening_load_rss_flat "VmRSS grew from $base_v to $max_v KiB after warm-up ($n samples)" \
    test "$n" -ge 3 -a "$base_v" -gt 0 -a $((max_v - base_v)) -le "$SLACK_KB"
  check test_hardening_load_metric_rss_flat "the metric grew from $base_m to $max_m bytes after warm-up" \
    test "$base_m" -gt 0 -a $(( (max_m - base_m) / 1024 )) -le "$SLACK_KB"
fi
stop_daemon
rc=$?
check test_hardening_load_exit_0 "exit status $rc" test "$rc" -eq 0
[ "$FAILS" -eq 0 ]
