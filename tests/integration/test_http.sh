#!/usr/bin/env bash
# Integration test of the HTTP daemon: starts the real build/mnistd on a free
# port and drives it with curl. Covers every path, every PNG colour type and
# bit depth, raw and multipart bodies, several images per request, every
# error status, the access log, not-ready startup, a refused model file,
# queue-full and deadline answers, and settings errors.
# With MNISTD_CAPTURE=FILE every exchange is recorded for the contract test.
. "$(dirname "$0")/../contract/lib.sh"
lib_init
need_data test_http
ensure_model || { fail test_http_model "could not train a model"; exit 1; }
D=$MNISTD_DATA
I=$WORK/img
mkdir -p "$I"

# ---- images ------------------------------------------------------------------
TYPES="gray gray16 ga ga16 rgb rgb16 rgba rgba16 palette palette-trns gray1 gray2 gray4"
for t in $TYPES; do
  "$MKPNG" --mnist "$D" --index 3 --type "$t" -o "$I/t_$t.png"
  "$MKPNG" --mnist "$D" --index 3 --type "$t" --interlace -o "$I/ti_$t.png"
done
"$MKPNG" --mnist "$D" --index 3 --invert -o "$I/inverted.png"
"$MKPNG" --mnist "$D" --index 3 --scale 4 --invert --type rgb -o "$I/scaled.png"
"$MKPNG" --mnist "$D" --index 3 --transparent-bg --type rgba -o "$I/transparent.png"
for i in 0 1 2; do "$MKPNG" --mnist "$D" --index $i -o "$I/d$i.png"; done
"$MKPNG" --blank 28 28 -o "$I/blank.png"
"$MKPNG" --huge-header 100000 100000 -o "$I/huge.png"
"$MKPNG" --bar 5000 8 -o "$I/wide.png"
head -c 120 "$I/d0.png" >"$I/truncated.png"
printf 'this is not a png' >"$I/text.txt"
head -c $((1048576 + 1)) /dev/zero >"$I/big.bin"
head -c $((2 * 1048576)) /dev/zero >"$I/big2.bin"

# What the engine says for each file, straight from the model file.
"$MNISTD_BIN" predict --model "$MODEL" --probs "$I"/t_*.png "$I"/ti_*.png "$I/inverted.png" \
  "$I/scaled.png" "$I/transparent.png" "$I"/d?.png >"$WORK/expect.txt" 2>"$WORK/expect.err" || {
  fail test_http_engine "mnistd predict failed: $(cat "$WORK/expect.err")"; exit 1; }
expect_digit() { awk -v f="$1" '$1 == f { print $2 }' "$WORK/expect.txt"; }
expect_conf() { awk -v f="$1" '$1 == f { print $3 }' "$WORK/expect.txt"; }
# same_float A B: equal to 1e-5 (the answer prints 6 significant digits)
same_float() { python3 -c 'import sys; sys.exit(abs(float(sys.argv[1]) - float(sys.argv[2])) > 1e-5)' "$1" "$2"; }

start_daemon main --model "$MODEL" || { fail test_http_start "daemon did not start"; exit 1; }
check test_http_startup_line "no startup line with the address" \
  grep -q "\"msg\":\"listening on http://127.0.0.1:$PORT\"" "$LOG"

# ---- GET paths -------------------------------------------------------------------
req GET /healthz
check test_http_healthz "status $status body $(cat "$body")" \
  test "$status" = 200 -a "$(jget "$body" 'd["status"]')" = ok
req HEAD /healthz
check test_http_healthz_head "status $status" test "$status" = 200
req GET /model
version=$(jget "$body" 'd["version"]')
check test_http_model "status $status: $(cat "$body")" test "$status" = 200 \
  -a "$(jget "$body" 'd["parameters"]')" = 93322 -a "$(jget "$body" 'd["architecture"]')" = mnist-cnn-v1 \
  -a "$(jget "$body" 'd["source"]')" = "$MODEL" -a "${#version}" = 16
check test_http_model_accuracy "accuracy $(jget "$body" 'd["accuracy"]')" \
  python3 -c "import sys; a=$(jget "$body" 'd["accuracy"]'); sys.exit(not (0.5 < a <= 1))"
req GET /readyz
check test_http_readyz "status $status" test "$status" = 200 -a "$(jget "$body" 'd["model_version"]')" = "$version"
req GET /metrics
check test_http_metrics "status $status ctype $ctype" test "$status" = 200 \
  -a "${ctype%%;*}" = text/plain
check test_http_metrics_content "missing families" grep -q '^mnistd_build_info{' "$body"
req GET /openapi.yaml
check test_http_openapi "status $status, or the served spec differs from openapi.yaml" \
  test "$status" = 200 -a "${ctype%%;*}" = application/yaml
check test_http_openapi_identical "served spec differs from openapi.yaml" cmp -s "$body" "$ROOT/openapi.yaml"

req GET /
check test_http_web_page "status $status ctype $ctype" test "$status" = 200 -a "${ctype%%;*}" = text/html
req GET /static/app.js
check test_http_web_script "status $status ctype $ctype" test "$status" = 200 -a "${ctype%%;*}" = text/javascript
req HEAD /style.css
check test_http_web_style_head "status $status ctype $ctype" test "$status" = 200 -a "${ctype%%;*}" = text/css
req POST / -H 'Content-Type: application/json' --data-binary '{}'
expect_error test_http_web_405 405 Allow

# ---- every colour type and bit depth, raw body ------------------------------------
base_conf=$(expect_conf "$I/t_gray.png")
bad=""
for f in "$I"/t_*.png "$I"/ti_*.png "$I/inverted.png" "$I/scaled.png" "$I/transparent.png"; do
  req POST /predict -H 'Content-Type: image/png' --data-binary "@$f"
  n=$(basename "$f")
  if [ "$status" != 200 ]; then bad+=" $n:status=$status"; continue; fi
  d=$(jget "$body" 'd["digit"]'); c=$(jget "$body" 'd["confidence"]')
  [ "$d" = "$(expect_digit "$f")" ] || bad+=" $n:digit=$d,engine=$(expect_digit "$f")"
  same_float "$c" "$(expect_conf "$f")" || bad+=" $n:conf=$c,engine=$(expect_conf "$f")"
  [ "$(jget "$body" 'd["model_version"]')" = "$version" ] || bad+=" $n:version"
  # Lossless encodings of the same pixels must give exactly the gray answer.
  case $n in *gray1.png|*gray2.png|*gray4.png|inverted.png|scaled.png) ;;
    *) same_float "$c" "$base_conf" || bad+=" $n:differs-from-gray" ;; esac
done
check test_http_png_types "$bad" test -z "$bad"
check test_http_png_label "image 3 is a 0 in MNIST" test "$("$MKPNG" --label --mnist "$D" --index 3)" = 0

# ---- body forms ----------------------------------------------------------------------
req POST /predict -H 'Content-Type: application/octet-stream' --data-binary "@$I/d0.png"
check test_http_raw_octet_stream "status $status" test "$status" = 200 \
  -a "$(jget "$body" 'd["digit"]')" = "$(expect_digit "$I/d0.png")"
req POST /predict --data-binary "@$I/d0.png"   # curl's default Content-Type
check test_http_raw_curl_default "status $status" test "$status" = 200
req POST /predict -H 'Content-Type:' --data-binary "@$I/d0.png"
check test_http_raw_no_content_type "status $status" test "$status" = 200
req POST /predict -H 'Content-Type: image/png' -H 'Transfer-Encoding: chunked' --data-binary "@$I/d1.png"
check test_http_raw_chunked "status $status $(cat "$body")" test "$status" = 200 \
  -a "$(jget "$body" 'd["digit"]')" = "$(expect_digit "$I/d1.png")"
req POST /predict -F "image=@$I/d2.png"
check test_http_multipart_single "status $status: $(head -c 200 "$body")" test "$status" = 200 \
  -a "$(jget "$body" 'd["digit"]')" = "$(expect_digit "$I/d2.png")"
req POST /predict -F "image=@$I/d0.png" -F "image=@$I/d1.png;type=application/octet-stream" -F "other=@$I/d2.png"
got=$(jget "$body" '" ".join(str(p["digit"]) for p in d["predictions"])')
want="$(expect_digit "$I/d0.png") $(expect_digit "$I/d1.png") $(expect_digit "$I/d2.png")"
check test_http_multipart_several_in_order "got '$got' want '$want' (status $status)" \
  test "$status" = 200 -a "$got" = "$want"
check test_http_multipart_one_batch "batch sizes $(jget "$body" '[p["batch_size"] for p in d["predictions"]]')" \
  test "$(jget "$body" 'min(p["batch_size"] for p in d["predictions"])')" -ge 3
confs=$(jget "$body" '" ".join("%g" % p["confidence"] for p in d["predictions"])')
set -- $confs
check test_http_multipart_same_as_engine "confidences $confs" same_float "${1:-0}" "$(expect_conf "$I/d0.png")"

# ---- errors --------------------------------------------------------------------------
req POST /predict -H 'Content-Type: image/png' --data-binary "@$I/text.txt"
expect_error test_http_400_not_png 400
req POST /predict -H 'Content-Type: image/png' --data-binary "@$I/truncated.png"
expect_error test_http_400_corrupt_png 400
req POST /predict -H 'Content-Type: image/png' --data-binary ''
expect_error test_http_400_empty_body 400
req POST /predict -H 'Content-Type: multipart/form-data; boundary=xyz' --data-binary 'garbage'
expect_error test_http_400_bad_multipart 400
req POST /predict -H 'Content-Type: multipart/form-data' --data-binary 'garbage'
expect_error test_http_400_multipart_no_boundary 400
req POST /predict -F "image=@$I/d0.png" -F "image=@$I/text.txt;type=image/png"
expect_error test_http_400_multipart_names_part 400
check test_http_400_detail_part "detail: $(jget "$body" 'd.get("detail")')" grep -q 'part 2' "$body"
req GET /nope
expect_error test_http_404 404
req POST /predict/extra -H 'Content-Type: image/png' --data-binary "@$I/d0.png"
expect_error test_http_404_post 404
req GET /predict
expect_error test_http_405_get_predict 405 Allow
check test_http_405_allow_post "Allow: $(resp_header Allow)" test "$(resp_header Allow)" = POST
req POST /healthz -H 'Content-Type: application/json' --data-binary '{}'
expect_error test_http_405_post_healthz 405 Allow
check test_http_405_allow_get "Allow: $(resp_header Allow)" test "$(resp_header Allow)" = "GET, HEAD"
req DELETE /model
expect_error test_http_405_delete_model 405 Allow
req POST /predict -H 'Content-Type: image/png'
expect_error test_http_411 411
req POST /predict -H 'Content-Type: image/png' --data-binary "@$I/big.bin"
expect_error test_http_413_content_length 413
# Refused before the body is read: with Expect: 100-continue the client sends
# no byte of the body when the answer comes first.
up=$(curl -sS -o /dev/null -w '%{http_code} %{size_upload}' -H 'Content-Type: image/png' \
     -H 'Expect: 100-continue' --expect100-timeout 10 --data-binary "@$I/big2.bin" \
     "http://127.0.0.1:$PORT/predict")
check test_http_413_before_reading "got '$up' (status, bytes uploaded)" test "$up" = "413 0"
req POST /predict -H 'Content-Type: image/png' -H 'Transfer-Encoding: chunked' --data-binary "@$I/big2.bin"
expect_error test_http_413_chunked 413
args=(); for k in $(seq 65); do args+=(-F "image=@$I/d0.png"); done
req POST /predict "${args[@]}"
expect_error test_http_413_too_many_images 413
req POST /predict -H 'Content-Type: application/json' --data-binary '{"image": "x"}'
expect_error test_http_415 415
req POST /predict -F "image=@$I/d0.png;type=text/plain"
expect_error test_http_415_part 415
req POST /predict -H 'Content-Type: image/png' --data-binary "@$I/huge.png"
expect_error test_http_422_bomb 422
req POST /predict -H 'Content-Type: image/png' --data-binary "@$I/wide.png"
expect_error test_http_422_too_wide 422
req POST /predict -H 'Content-Type: image/png' --data-binary "@$I/blank.png"
expect_error test_http_422_no_ink 422

# The daemon is unharmed by all of that.
req POST /predict -H 'Content-Type: image/png' --data-binary "@$I/d0.png"
check test_http_alive_after_errors "status $status" test "$status" = 200

# ---- metrics counted what happened ---------------------------------------------------
check test_http_metrics_counts "predict 200 count $(metric 'mnistd_http_requests_total{route="/predict",code="200"}')" \
  test "$(metric 'mnistd_http_requests_total{route="/predict",code="200"}')" -ge 30
check test_http_metrics_rejects "body_too_large $(metric 'mnistd_predict_rejected_total{reason="body_too_large"}')" \
  test "$(metric 'mnistd_predict_rejected_total{reason="body_too_large"}')" -ge 3

stop_daemon
rc=$?
check test_http_sigterm_exit_0 "exit status $rc" test $rc -eq 0

# ---- the access log: one JSON object per line ----------------------------------------
check test_http_log_json "a log line is not a JSON object" python3 -c '
import json, sys
n = 0
for line in open(sys.argv[1]):
    d = json.loads(line)
    assert "ts" in d and "msg" in d, line
    if d["msg"] == "request":
        n += 1
        for k in ("method", "path", "status", "duration_ms", "bytes", "remote"):
            assert k in d, (k, line)
assert n >= 50, n
' "$LOG"
check test_http_log_request_line "no line for POST /predict 200" \
  grep -q '"method":"POST","path":"/predict","status":200,"duration_ms":' "$LOG"

# ---- no model: starts, not ready ----------------------------------------------------
# (the path holds a quote, a backslash and a tab: its log lines stay JSON)
start_daemon nomodel --model "$WORK/absent \"dir\\	x.safetensors" || fail test_http_nomodel_start "did not start"
req GET /healthz
check test_http_nomodel_healthz "status $status" test "$status" = 200
req GET /readyz
expect_error test_http_nomodel_readyz_503 503 Retry-After
req GET /model
expect_error test_http_nomodel_model_503 503
req POST /predict -H 'Content-Type: image/png' --data-binary "@$I/d0.png"
expect_error test_http_nomodel_predict_503 503 Retry-After
check test_http_nomodel_metric "mnistd_model_ready $(metric mnistd_model_ready)" test "$(metric mnistd_model_ready)" = 0
check test_http_nomodel_logged "the log does not say the model is missing" grep -q 'no model file' "$LOG"
check test_http_log_escapes_paths "a log line with the path is not JSON" python3 -c '
import json, sys
lines = [json.loads(line) for line in open(sys.argv[1])]
assert any(d.get("model") == sys.argv[2] for d in lines), lines[:3]
' "$LOG" "$WORK/absent \"dir\\	x.safetensors"
stop_daemon

# ---- a corrupt model file: a clear error, exit 1, the file untouched ------------------
printf 'not a model at all, not even close' >"$WORK/corrupt.safetensors"
sum=$(md5sum <"$WORK/corrupt.safetensors")
"$MNISTD_BIN" serve --port 0 --model "$WORK/corrupt.safetensors" 2>"$WORK/corrupt.log"
rc=$?
check test_http_corrupt_model "exit $rc, log: $(cat "$WORK/corrupt.log")" \
  test $rc -eq 1 -a "$(md5sum <"$WORK/corrupt.safetensors")" = "$sum"
check test_http_corrupt_model_message "no clear message" grep -q 'cannot load the model file' "$WORK/corrupt.log"

# ---- a full queue answers 503 at once; a late request answers 504 ----------------------
# One worker that waits up to 1 s (the most --batch-timeout-us allows) for a
# batch to fill while other connections are open, a queue of 2 and a 500 ms
# deadline. Two idle connections make the worker wait; request A (2 images)
# fills the queue; request B, sent once /metrics shows A queued, is refused
# at once; A is answered 504 at its deadline, well before 1 s. (With 300 ms,
# B came after the deadline now and then on a loaded or sanitized build.)
DEADLINE_MS=500 BATCH_WAIT_MS=1000
start_daemon queue --model "$MODEL" --threads 1 --max-queue 2 --max-images 2 \
  --batch-timeout-us $((BATCH_WAIT_MS * 1000)) --request-timeout-ms $DEADLINE_MS ||
  fail test_http_queue_start "did not start"
exec 3<>"/dev/tcp/127.0.0.1/$PORT" 4<>"/dev/tcp/127.0.0.1/$PORT"
t0=$(date +%s%N)
( req POST /predict -F "image=@$I/d0.png" -F "image=@$I/d1.png"; echo "$status" >"$WORK/a.status"
  cp "$body" "$WORK/a.body"; cp "$hdrs" "$WORK/a.hdrs" ) &
apid=$!
queue_depth_is() { test "$(metric mnistd_inference_queue_depth)" = "$1"; }
if wait_until 10 queue_depth_is 2; then
  req POST /predict -H 'Content-Type: image/png' --data-binary "@$I/d2.png"
  expect_error test_http_503_queue_full 503 Retry-After
else
  fail test_http_503_queue_full "the queue never held request A"
fi
wait $apid
t1=$(date +%s%N)
status=$(cat "$WORK/a.status"); body=$WORK/a.body; hdrs=$WORK/a.hdrs; ctype=application/json
expect_error test_http_504_deadline 504
# The daemon's own clock (the access log): answered at the deadline, not
# when the batch wait would have ended.
wait_until 10 grep -q '"status":504' "$LOG"  # logged when the response is sent
d504=$(grep '"status":504' "$LOG" | grep -o '"duration_ms":[0-9.]*' | head -1 | cut -d: -f2)
check test_http_504_at_deadline "answered after ${d504:-?} ms (client saw $(( (t1 - t0) / 1000000 )) ms)" \
  python3 -c "import sys; sys.exit(not ($DEADLINE_MS <= float('${d504:-0}') < $BATCH_WAIT_MS))"
check test_http_rejected_metrics "queue_full/deadline not counted" \
  test "$(metric 'mnistd_predict_rejected_total{reason="queue_full"}')" = 1 \
  -a "$(metric 'mnistd_predict_rejected_total{reason="deadline"}')" = 1
exec 3<&- 4<&-
stop_daemon

# ---- settings -------------------------------------------------------------------------
"$MNISTD_BIN" serve --port 70000 >/dev/null 2>"$WORK/cfg.err"
rc=$?
check test_http_bad_flag_exit_2 "exit $rc: $(cat "$WORK/cfg.err")" test $rc -eq 2
MNISTD_MAX_BATCH=abc "$MNISTD_BIN" serve >/dev/null 2>"$WORK/cfg.err"
rc=$?
check test_http_bad_env_exit_2 "exit $rc: $(cat "$WORK/cfg.err")" test $rc -eq 2 -a -n "$(grep MNISTD_MAX_BATCH "$WORK/cfg.err")"
"$MNISTD_BIN" serve --help >"$WORK/help.txt"
check test_http_help "help lacks a flag" grep -q 'MNISTD_BATCH_TIMEOUT_US' "$WORK/help.txt"
MNISTD_PORT=0 MNISTD_LOG_FORMAT=text "$MNISTD_BIN" --model "$WORK/absent" 2>"$WORK/env.log" &
epid=$!; PIDS+=("$epid")
check test_http_env_settings "text log with a real port" wait_until 20 grep -q 'listening on http://127.0.0.1:[1-9]' "$WORK/env.log"
kill -TERM $epid; wait $epid
# Gathered log lines (--log-flush-ms): the access lines of 50 requests come
# out within the interval, and on SIGTERM nothing is left behind.
MNISTD_PORT=0 MNISTD_LOG_FORMAT=text MNISTD_LOG_FLUSH_MS=200 "$MNISTD_BIN" --model "$MODEL" 2>"$WORK/gather.log" &
gpid=$!; PIDS+=("$gpid")
if wait_until 20 grep -q 'listening on http://127.0.0.1:[1-9]' "$WORK/gather.log"; then
  gport=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$WORK/gather.log" | head -1 | sed 's/.*://')
  for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$gport/healthz"; done
  check test_http_log_gathered_lines_come_out "$(grep -c 'GET /healthz 200' "$WORK/gather.log") of 50 access lines" \
    wait_until 20 bash -c "test \$(grep -c 'GET /healthz 200' '$WORK/gather.log') = 50"
  curl -s -o /dev/null "http://127.0.0.1:$gport/readyz"
  kill -TERM $gpid; wait $gpid
  check test_http_log_gathered_flushed_on_exit "access line of the last request, or the stop line, missing" \
    bash -c "grep -q 'GET /readyz 200' '$WORK/gather.log' && grep -q 'info stopped' '$WORK/gather.log'"
else
  fail test_http_log_gathered_lines_come_out "daemon with MNISTD_LOG_FLUSH_MS did not start: $(tail -n 3 "$WORK/gather.log")"
fi

[ "$FAILS" -eq 0 ]
