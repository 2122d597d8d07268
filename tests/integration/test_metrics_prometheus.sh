#!/usr/bin/env bash
# /metrics against real Prometheus tooling: `promtool check metrics` reports
# nothing on the exposition, and a real Prometheus server (Debian package
# prometheus) scrapes the daemon; queries over its HTTP API return the
# request counter and the latency histogram with the values the daemon
# served. No fixed sleeps: the test polls Prometheus until a scrape landed.
. "$(dirname "$0")/../contract/lib.sh"
lib_init
need_data test_metrics_prometheus
if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
  skip test_metrics_prometheus "prometheus/promtool not installed (Debian package prometheus)"; exit 0
fi
ensure_model || { fail test_metrics_prometheus_model "could not train a model"; exit 1; }
"$MKPNG" --mnist "$MNISTD_DATA" --index 0 -o "$WORK/d.png"
start_daemon prom --model "$MODEL" || { fail test_metrics_prometheus_start "no start"; exit 1; }
for i in $(seq 7); do req POST /predict -H 'Content-Type: image/png' --data-binary "@$WORK/d.png"; done
req GET /nope
req POST /predict -H 'Content-Type: text/plain' --data-binary 'x'

curl -sS "http://127.0.0.1:$PORT/metrics" >"$WORK/metrics.txt"
promtool check metrics <"$WORK/metrics.txt" >"$WORK/promtool.out" 2>&1
rc=$?
check test_metrics_promtool_clean "promtool rc=$rc: $(head -c 500 "$WORK/promtool.out")" \
  test $rc -eq 0 -a ! -s "$WORK/promtool.out"
for fam in mnistd_http_requests_total mnistd_http_request_duration_seconds_bucket \
           mnistd_inference_queue_wait_seconds_bucket mnistd_inference_compute_seconds_bucket \
           mnistd_inference_batch_size_bucket mnistd_inference_queue_depth mnistd_predict_rejected_total \
           mnistd_model_info mnistd_model_ready mnistd_process_resident_memory_bytes \
           mnistd_process_cpu_seconds_total mnistd_process_open_fds mnistd_process_start_time_seconds \
           mnistd_build_info; do
  grep -q "^$fam[ {]" "$WORK/metrics.txt" || fail test_metrics_families "no $fam"
done
[ "$FAILS" -eq 0 ] && pass test_metrics_families

PP=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$WORK/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: mnistd
    static_configs:
      - targets: ['127.0.0.1:$PORT']
YML
promtool check config "$WORK/prometheus.yml" >/dev/null 2>&1 || fail test_metrics_prometheus_config "bad config"
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" \
  --web.listen-address="127.0.0.1:$PP" >"$WORK/prometheus.log" 2>&1 &
PROM=$!
PIDS+=("$PROM")
api() { curl -sS -G 2>/dev/null "http://127.0.0.1:$PP/api/v1/query" --data-urlencode "query=$1"; }
# value QUERY: the first sample's value, or "".
value() { api "$1" | python3 -c 'import json,sys
try:
    r = json.load(sys.stdin)["data"]["result"]
    print(r[0]["value"][1] if r else "")
except Exception:
    print("")'; }
scraped() { [ "$(value 'up{job="mnistd"}')" = 1 ] && [ -n "$(value 'mnistd_http_requests_total{route="/predict",code="200"}')" ]; }
if wait_until 60 scraped; then
  pass test_metrics_prometheus_scrapes
else
  fail test_metrics_prometheus_scrapes "no scrape seen: $(tail -5 "$WORK/prometheus.log")"
fi
v=$(value 'mnistd_http_requests_total{job="mnistd",route="/predict",code="200"}')
check test_metrics_prometheus_request_counter "predict 200 = '$v', want 7" test "$v" = 7
v=$(value 'mnistd_http_requests_total{job="mnistd",route="other",code="404"}')
check test_metrics_prometheus_404_counter "other 404 = '$v', want 1" test "$v" = 1
v=$(value 'mnistd_http_request_duration_seconds_bucket{job="mnistd",route="/predict",le="+Inf"}')
check test_metrics_prometheus_latency_histogram "+Inf bucket = '$v', want 8" test "$v" = 8
v=$(value 'histogram_quantile(0.99, sum by (le) (mnistd_http_request_duration_seconds_bucket{job="mnistd",route="/predict"}))')
check test_metrics_prometheus_quantile "p99 = '$v'" python3 -c "import sys; v=float('${v:-nan}'); sys.exit(not (0 < v <= 10))"
v=$(value 'mnistd_predict_rejected_total{job="mnistd",reason="unsupported_media_type"}')
check test_metrics_prometheus_rejected "unsupported_media_type = '$v'" test "$v" = 1
kill -TERM "$PROM"; wait "$PROM" 2>/dev/null
stop_daemon || fail test_metrics_prometheus_stop "daemon exit status"
[ "$FAILS" -eq 0 ]
