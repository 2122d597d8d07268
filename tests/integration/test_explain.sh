#!/usr/bin/env bash
# Integration test of POST /explain: explanations of real test digits as
# JSON and as a PNG heat map, several images, every limit and its error, the
# Open Inference Protocol's explain extension (POST /v2/models/{m}/explain),
# and the explanation queue apart from the inference queue (a prediction is
# answered while explanations fill their queue, which answers 503).
# With MNISTD_CAPTURE=FILE every exchange is recorded for the contract test.
. "$(dirname "$0")/../contract/lib.sh"
lib_init
need_data test_explain
ensure_model || { fail test_explain_model "could not train a model"; exit 1; }
D=$MNISTD_DATA
I=$WORK/img
mkdir -p "$I"
for i in 0 1; do "$MKPNG" --mnist "$D" --index $i -o "$I/d$i.png" --raw-out "$I/d$i.bin"; done
"$MKPNG" --mnist "$D" --index 1 --scale 4 --invert --type rgb -o "$I/paper.png"
printf 'this is not a png' >"$I/text.txt"

start_daemon main --model "$MODEL" --explain-max-images 3 || { fail test_explain_start "daemon did not start"; exit 1; }

# ---- JSON ---------------------------------------------------------------------
# The answer for test digit 0 (a 7): the prediction, 28x28 attributions that
# are 0 exactly where the input is black, and completeness within 0.1.
req POST /explain --data-binary @"$I/d0.png"
check_answer() {
  python3 - "$body" "$I/d0.bin" "$1" "$2" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
x = open(sys.argv[2], 'rb').read()
target, steps = int(sys.argv[3]), int(sys.argv[4])
a = d["attributions"]
assert len(a) == 28 and all(len(r) == 28 for r in a), "not 28x28"
flat = [v for r in a for v in r]
assert d["digit"] == 7 and d["target"] == target and d["steps"] == steps, (d["digit"], d["target"], d["steps"])
assert len(x) == 784 * 4, len(x)
import struct
px = struct.unpack('<784f', x)
assert all(v == 0 for v, p in zip(flat, px) if p == 0), "attribution on a black pixel"
assert abs(sum(flat) - d["sum"]) < 1e-3 * max(1, abs(d["sum"])), (sum(flat), d["sum"])
diff = d["logit"] - d["baseline_logit"]
assert abs(d["delta"] - (d["sum"] - diff)) < 1e-3, "delta"
assert abs(d["delta"]) <= 0.02 * abs(diff) + 0.1, ("completeness", d["sum"], diff)
assert d["field"] == {"x": 0, "y": 0, "width": 28, "height": 28}, d["field"]
assert d["method"] == "integrated_gradients" and d["baseline"] == "black"
print("target %d: sum %.4f, logit difference %.4f, delta %.4f" % (target, d["sum"], diff, d["delta"]))
PY
}
if [ "$status" = 200 ] && out=$(check_answer 7 64 2>&1); then
  pass test_explain_json; echo "  $out"
else
  fail test_explain_json "status $status: $out $(head -c 300 "$body")"
fi
req POST '/explain?target=3&steps=32' --data-binary @"$I/d0.png"
if [ "$status" = 200 ] && out=$(check_answer 3 32 2>&1); then
  pass test_explain_target_and_steps; echo "  $out"
else
  fail test_explain_target_and_steps "status $status: $out"
fi

# Several images, in order; a digit on paper, 4x larger: its field is where
# the 28x28 input lies over the 112x112 image.
req POST /explain -F image=@"$I/d0.png" -F image=@"$I/paper.png"
if [ "$status" = 200 ] && [ "$(jget "$body" '[e["digit"] for e in d["explanations"]]')" = "[7, 2]" ] &&
   jget "$body" 'd["explanations"][1]["field"]' | grep -q "'width': 1[0-9][0-9]"; then
  pass test_explain_multipart
else
  fail test_explain_multipart "status $status: $(jget "$body" '[(e["digit"], e["field"]) for e in d["explanations"]]')"
fi

# ---- the heat map --------------------------------------------------------------
png_size() { python3 -c 'import struct,sys; b=open(sys.argv[1],"rb").read(24); print("%dx%d" % struct.unpack(">II", b[16:24]) if b[:8] == b"\x89PNG\r\n\x1a\n" else "not a png")' "$1"; }
req POST '/explain?format=png' --data-binary @"$I/d0.png"
check test_explain_png "status $status $ctype $(png_size "$body")" \
  test "$status $ctype $(png_size "$body")" = "200 image/png 280x280"
req POST /explain -H 'Accept: image/png' --data-binary @"$I/d0.png"
check test_explain_accept_png "status $status $ctype" test "$status $ctype" = "200 image/png"
req POST /explain -H 'Accept: image/png, application/json' --data-binary @"$I/d0.png"
check test_explain_accept_json_wins "status $status $ctype" test "$status $ctype" = "200 application/json"

# ---- errors --------------------------------------------------------------------
for q in steps=0 steps=257 steps=abc target=10 target=-1 format=gif; do
  req POST "/explain?$q" --data-binary @"$I/d0.png"
  expect_error "test_explain_400_${q//[=-]/_}" 400
done
req POST '/explain?format=png' -F image=@"$I/d0.png" -F image=@"$I/d1.png"
expect_error test_explain_400_png_of_two 400
req POST /explain -F image=@"$I/d0.png" -F image=@"$I/d1.png" -F image=@"$I/d0.png" -F image=@"$I/d1.png"
expect_error test_explain_413_too_many_images 413
req POST /explain --data-binary @"$I/text.txt"
expect_error test_explain_400_not_png 400
req POST /explain -H 'Content-Type: text/plain' --data-binary @"$I/d0.png"
expect_error test_explain_415 415
req GET /explain
expect_error test_explain_405 405 Allow
req POST /explain -H 'Content-Type: image/png'
expect_error test_explain_411 411
# Those refusals count under mnistd_explain_rejected_total, not under the
# predictions' family (this daemon has answered no prediction).
refusals() {
  local f r out=
  for f in explain predict; do
    for r in "$@"; do out+="$f:$r=$(metric "mnistd_${f}_rejected_total{reason=\"$r\"}") "; done
  done
  echo "$out"
}
got=$(refusals length_required unsupported_media_type too_many_images)
check test_explain_refusals_counted_as_explanations "$got" test "$got" = \
  "explain:length_required=1 explain:unsupported_media_type=1 explain:too_many_images=1 predict:length_required=0 predict:unsupported_media_type=0 predict:too_many_images=0 "
# ---- the Open Inference Protocol's explain extension ------------------------------
# v2 requests: test digit 0 as FP32 pixels, and digits 0 and 1 as PNG files.
python3 - "$I" <<'PY'
import base64, json, struct, sys
d = sys.argv[1]
px = list(struct.unpack('<784f', open(d + '/d0.bin', 'rb').read()))
t = {"name": "input", "datatype": "FP32", "shape": [1, 28, 28, 1], "data": px}
json.dump({"inputs": [t]}, open(d + '/v2_fp32.json', 'w'))
json.dump({"id": "x1", "inputs": [t], "parameters": {"target": 3, "steps": 32}}, open(d + '/v2_target.json', 'w'))
pngs = [base64.b64encode(open('%s/d%d.png' % (d, i), 'rb').read()).decode() for i in (0, 1)]
json.dump({"inputs": [{"name": "input", "datatype": "BYTES", "shape": [2], "data": pngs}]}, open(d + '/v2_png.json', 'w'))
for name, params in (("steps", {"steps": 257}), ("target", {"target": 12})):
    json.dump({"inputs": [t], "parameters": params}, open('%s/v2_bad_%s.json' % (d, name), 'w'))
PY
v2req() { req POST "$1" -H 'Content-Type: application/json' --data-binary @"$I/$2"; }
# check_v2 EXPR: the last answer is 200 and EXPR holds over its outputs o[name] and body d
check_v2() {
  [ "$status" = 200 ] && python3 - "$body" "$1" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
o = {t["name"]: t for t in d["outputs"]}
a = o["attributions"]
assert a["datatype"] == "FP32" and len(a["data"]) == 784 * a["shape"][0] and a["shape"][1:] == [28, 28], a["shape"]
assert eval(sys.argv[2]), json.dumps({k: (v["shape"], v["data"][:12]) for k, v in o.items()})
PY
}
v2req /v2/models/mnist/explain v2_fp32.json
check test_explain_v2_fp32 "status $status: $(head -c 300 "$body")" \
  check_v2 'o["target"]["data"] == [7] and abs(o["delta"]["data"][0]) < 0.1 and d["parameters"]["steps"] == 64 and o["probabilities"]["shape"] == [1, 10]'
v2req /v2/models/mnist/explain v2_target.json
check test_explain_v2_target_steps "status $status: $(head -c 300 "$body")" \
  check_v2 'o["target"]["data"] == [3] and d["parameters"]["steps"] == 32 and d["id"] == "x1"'
v2req /v2/models/mnist/explain v2_png.json
check test_explain_v2_png_bytes "status $status: $(head -c 300 "$body")" \
  check_v2 'o["target"]["data"] == [7, 2] and a["shape"] == [2, 28, 28]'
version=$(curl -s "http://127.0.0.1:$PORT/model" | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
v2req "/v2/models/mnist/versions/$version/explain" v2_fp32.json
check test_explain_v2_version "status $status" check_v2 'o["target"]["data"] == [7]'
v2req /v2/models/mnist/versions/0000000000000000/explain v2_fp32.json
expect_error test_explain_v2_404_version 404
v2req /v2/models/other/explain v2_fp32.json
expect_error test_explain_v2_404_model 404
v2req /v2/models/mnist/explain v2_bad_steps.json
expect_error test_explain_v2_400_steps 400
v2req /v2/models/mnist/explain v2_bad_target.json
expect_error test_explain_v2_400_target 400
req GET /v2
check test_explain_v2_extension_listed "$(cat "$body")" grep -q '"explain"' "$body"
stop_daemon || fail test_explain_stop "exit status $?"

# ---- the explanation queue -------------------------------------------------------
# One worker, 64 places, explanations of 1024 steps (each keeps the worker
# busy for about 0.1 s on an idle AVX-512 core, more anywhere else), 1500 ms
# for an image to start: request A's 64 images fill the queue, so B's two do
# not fit: 503 at once. A prediction is answered meanwhile, while A still
# runs (its images need 6 s and more, four times the deadline); then A's
# images not started within 1500 ms make A a 504.
start_daemon queue --model "$MODEL" --explain-threads 1 --explain-queue 64 --explain-max-images 64 \
  --explain-max-steps 1024 --explain-timeout-ms 1500 || { fail test_explain_queue_start "no daemon"; exit 1; }
parts=()
for i in $(seq 32); do parts+=(-F image=@"$I/d0.png" -F image=@"$I/d1.png"); done
curl -s -o "$WORK/a.body" -w '%{http_code}' "${parts[@]}" \
  "http://127.0.0.1:$PORT/explain?steps=1024" >"$WORK/a.status" &
APID=$!
# B is sent once A's images are queued (one may be running already): then
# at most one place is free, and B's two images do not fit.
wait_until 10 bash -c "curl -s http://127.0.0.1:$PORT/metrics | grep -qE '^mnistd_explain_queue_depth 6[3-4]$'" ||
  fail test_explain_queue_filled "A's images never showed in mnistd_explain_queue_depth"
req POST '/explain?steps=1024' -F image=@"$I/d0.png" -F image=@"$I/d1.png"
expect_error test_explain_503_queue_full 503 Retry-After
req POST /predict --data-binary @"$I/d0.png"
predict_status=$status
a_done_before_predict=$([ -s "$WORK/a.status" ] && echo yes || echo no)
check test_explain_predict_while_explaining "predict $predict_status, A already answered: $a_done_before_predict" \
  test "$predict_status $a_done_before_predict" = "200 no"
wait "$APID"
check test_explain_504_deadline "A answered $(cat "$WORK/a.status"): $(head -c 200 "$WORK/a.body")" \
  test "$(cat "$WORK/a.status")" = 504
got=$(refusals queue_full deadline)
check test_explain_queue_refusals_counted_as_explanations "$got" test "$got" = \
  "explain:queue_full=1 explain:deadline=1 predict:queue_full=0 predict:deadline=0 "
stop_daemon || fail test_explain_queue_stop "exit status $?"
[ "$FAILS" -eq 0 ]
