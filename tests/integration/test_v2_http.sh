#!/usr/bin/env bash
# The Open Inference Protocol (KServe v2) paths with curl, every declared
# answer: metadata, health and readiness (200, and 503 on a daemon without a
# model), model metadata and readiness with and without the version, infer
# in JSON and in the binary tensor form, and every refusal (400 404 405 413
# 415 422 503). Also: the metrics count v2 requests by route, the access log
# has them, and their images go through the same batcher as /predict.
# With MNISTD_CAPTURE=FILE every exchange is recorded for the contract test.
. "$(dirname "$0")/../contract/lib.sh"
lib_init
need_data test_v2_http
ensure_model || { fail test_v2_model "could not train a model"; exit 1; }
R=$WORK/req
mkdir -p "$R"

# Request bodies: MNIST test images 0 and 1 as FP32 JSON, FP32 binary
# (with its header length), UINT8 JSON, PNG in base64, and bad ones.
python3 - "$MNISTD_DATA" "$R" <<'EOF'
import base64, gzip, json, os, struct, sys, zlib
data, out = sys.argv[1], sys.argv[2]
p = os.path.join(data, "t10k-images-idx3-ubyte")
raw = (open(p, "rb") if os.path.exists(p) else gzip.open(p + ".gz", "rb")).read()[16:16 + 2 * 784]
fp = [v / 255.0 for v in raw]
def inp(dtype, shape, **kw):
    d = {"name": "input", "shape": shape, "datatype": dtype}
    d.update(kw)
    return d
def w(name, body):
    open(os.path.join(out, name), "wb").write(body if isinstance(body, bytes) else json.dumps(body).encode())
w("fp32.json", {"id": "t-1", "inputs": [inp("FP32", [2, 28, 28, 1], data=fp)]})
w("uint8-class.json", {"inputs": [inp("UINT8", [2, 784], data=list(raw))],
                       "outputs": [{"name": "probabilities", "parameters": {"classification": 2}}]})
head = json.dumps({"inputs": [inp("FP32", [2, 784], parameters={"binary_data_size": 2 * 3136})],
                   "parameters": {"binary_data_output": True}}).encode()
w("fp32.bin", head + struct.pack("<%df" % len(fp), *fp))
w("fp32.bin.len", str(len(head)).encode())
rows = b"".join(b"\0" + raw[y * 28:(y + 1) * 28] for y in range(28))
def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 28, 28, 8, 0, 0, 0, 0))
       + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
w("png.json", {"inputs": [inp("BYTES", [1], data=[base64.b64encode(png).decode()])]})
w("bad-shape.json", {"inputs": [inp("FP32", [1, 28, 28, 3], data=[0])]})
w("bad-range.json", {"inputs": [inp("FP32", [1, 784], data=[2.0] * 784)]})
w("too-many.json", {"inputs": [inp("FP32", [65, 784], data=[0])]})
w("huge.json", {"inputs": [inp("FP32", [10 ** 15, 28, 28, 1], data=[0])]})
w("malformed.json", b'{"inputs":[{"name":"input"')
EOF

start_daemon v2 --model "$MODEL" --max-body-bytes 1048576 || { fail test_v2_start "no start"; exit 1; }
ok_json() { [ "$status" = "$1" ] && [[ "$ctype" == application/json* ]] && jget "$body" "$2" | grep -qx True; }
err_json() { [ "$status" = "$1" ] && jget "$body" 'isinstance(d["error"], str) and len(d["error"]) > 0' | grep -qx True; }

req GET /v2
check v2_server_metadata "status $status $(head -c 200 "$body")" \
  ok_json 200 'd["name"] == "mnistd" and "binary_tensor_data" in d["extensions"] and "classification" in d["extensions"]'
req HEAD /v2
check v2_server_metadata_head "status $status" [ "$status" = 200 ]
req GET /v2/health/live
check v2_live "status $status" ok_json 200 'd == {"live": True}'
req GET /v2/health/ready
check v2_ready "status $status" ok_json 200 'd == {"ready": True}'
req GET /v2/models/mnist
check v2_model_metadata "status $status $(head -c 300 "$body")" ok_json 200 \
  'd["name"] == "mnist" and d["inputs"][0]["shape"] == [-1, 28, 28, 1] and d["outputs"][0]["shape"] == [-1, 10]'
V=$(jget "$body" 'd["versions"][0]')
req GET /v2/models/mnist/versions/$V
check v2_model_metadata_version "status $status" ok_json 200 "d['versions'] == ['$V']"
req GET /v2/models/mnist/ready
check v2_model_ready "status $status" ok_json 200 'd == {"name": "mnist", "ready": True}'
req GET /v2/models/mnist/versions/$V/ready
check v2_model_version_ready "status $status" ok_json 200 'd["ready"] is True'
req GET /v2/models/digits
check v2_unknown_model_404 "status $status" err_json 404
req GET /v2/models/digits/ready
check v2_unknown_model_ready_404 "status $status" err_json 404
req GET /v2/models/mnist/versions/0000000000000000
check v2_unknown_version_404 "status $status" err_json 404
req GET /v2/models/mnist/versions/0000000000000000/ready
check v2_unknown_version_ready_404 "status $status" err_json 404
req GET /v2/models/mnist/generate
check v2_unknown_path_404 "status $status" err_json 404
req GET /v2/models/mnist/explain
check v2_explain_get_405 "status $status" err_json 405
req DELETE /v2/models/mnist
check v2_method_405 "status $status allow '$(resp_header Allow)'" \
  eval '[ "$status" = 405 ] && [ "$(resp_header Allow)" = "GET, HEAD" ]'
req GET /v2/models/mnist/infer
check v2_infer_get_405 "status $status" eval '[ "$status" = 405 ] && [ "$(resp_header Allow)" = POST ]'

# infer: JSON, binary, classification, PNG, versioned
before=$(metric mnistd_inference_images_total)
req POST /v2/models/mnist/infer -H 'Content-Type: application/json' --data-binary @"$R/fp32.json"
check v2_infer_json "status $status $(head -c 300 "$body")" ok_json 200 \
  'd["id"] == "t-1" and d["outputs"][0]["shape"] == [2, 10] and len(d["outputs"][0]["data"]) == 20'
digits=$(jget "$body" '",".join(str(max(range(10), key=lambda k: d["outputs"][0]["data"][i * 10 + k])) for i in range(2))')
"$MKPNG" --mnist "$MNISTD_DATA" --index 0 -o "$WORK/a.png"
"$MKPNG" --mnist "$MNISTD_DATA" --index 1 -o "$WORK/b.png"
want=$("$MNISTD_BIN" predict --model "$MODEL" "$WORK/a.png" "$WORK/b.png" | awk '{print $2}' | paste -sd,)
check v2_infer_json_digits "v2 $digits, engine $want" [ "$digits" = "$want" ]
req POST /v2/models/mnist/versions/$V/infer -H "Inference-Header-Content-Length: $(cat "$R/fp32.bin.len")" \
  -H 'Content-Type: application/octet-stream' --data-binary @"$R/fp32.bin"
hl=$(resp_header Inference-Header-Content-Length)
check v2_infer_binary "status $status type $ctype header $hl size $(stat -c %s "$body")" eval \
  '[ "$status" = 200 ] && [[ "$ctype" == application/octet-stream* ]] && [ $(( $(stat -c %s "$body") - hl )) = 80 ]'
bin_digits=$(python3 -c '
import struct, sys
b = open(sys.argv[1], "rb").read()[int(sys.argv[2]):]
p = struct.unpack("<20f", b)
print(",".join(str(max(range(10), key=lambda k: p[i * 10 + k])) for i in range(2)))' "$body" "$hl")
check v2_infer_binary_digits "binary $bin_digits, engine $want" [ "$bin_digits" = "$want" ]
req POST /v2/models/mnist/infer --data-binary @"$R/uint8-class.json"
check v2_infer_uint8_classification "status $status $(head -c 300 "$body")" ok_json 200 \
  "d['outputs'][0]['datatype'] == 'BYTES' and d['outputs'][0]['shape'] == [2, 2] and \
   ','.join(d['outputs'][0]['data'][i].split(':')[1] for i in (0, 2)) == '$want'"
req POST /v2/models/mnist/infer --data-binary @"$R/png.json"
check v2_infer_png "status $status" ok_json 200 "max(range(10), key=lambda k: d['outputs'][0]['data'][k]) == ${want%%,*}"
after=$(metric mnistd_inference_images_total)
check v2_shares_the_batcher "images before $before, after $after" [ $((after - before)) = 7 ]

# refusals
req POST /v2/models/mnist/infer --data-binary @"$R/malformed.json"
check v2_infer_malformed_400 "status $status" err_json 400
req POST /v2/models/mnist/infer --data-binary @"$R/bad-shape.json"
check v2_infer_shape_400 "status $status" err_json 400
req POST /v2/models/mnist/infer -H "Inference-Header-Content-Length: 999999" --data-binary @"$R/fp32.json"
check v2_infer_header_beyond_body_400 "status $status" err_json 400
req POST /v2/models/digits/infer --data-binary @"$R/fp32.json"
check v2_infer_unknown_model_404 "status $status" err_json 404
req POST /v2/models/mnist/versions/0000000000000000/infer --data-binary @"$R/fp32.json"
check v2_infer_unknown_version_404 "status $status" err_json 404
req POST /v2/models/mnist/infer --data-binary @"$R/too-many.json"
check v2_infer_too_many_images_413 "status $status" err_json 413
req POST /v2/models/mnist/infer --data-binary @"$R/huge.json"
check v2_infer_huge_shape_413 "status $status" err_json 413
head -c 1048577 /dev/zero >"$R/big.bin"
req POST /v2/models/mnist/infer --data-binary @"$R/big.bin"
check v2_infer_body_over_limit_413 "status $status" err_json 413
req POST /v2/models/mnist/infer -H 'Content-Encoding: gzip' --data-binary @"$R/fp32.json"
check v2_infer_content_encoding_415 "status $status" err_json 415
req POST /v2/models/mnist/infer --data-binary @"$R/bad-range.json"
check v2_infer_out_of_range_422 "status $status" err_json 422
req GET /v2/health/ready
check v2_still_ready_after_refusals "status $status" [ "$status" = 200 ]

# metrics by route and the access log
n=$(metric 'mnistd_http_requests_total{route="/v2/models/{model}/infer",code="200"}')
check v2_metrics_by_route "infer 200 count '$n'" [ "${n:-0}" = 3 ]
n=$(metric 'mnistd_http_requests_total{route="/v2/models/{model}/versions/{version}/infer",code="200"}')
check v2_metrics_versioned_route "versioned infer 200 count '$n'" [ "${n:-0}" = 1 ]
check v2_access_log "no access log line for the v2 infer" \
  grep -q '"path":"/v2/models/mnist/infer","status":422' "$LOG"
stop_daemon || fail v2_stop "exit status $?"

# a daemon without a model: not ready, infer refused with 503
start_daemon v2-empty --model "$WORK/none.safetensors" || { fail test_v2_start_empty "no start"; exit 1; }
req GET /v2/health/live
check v2_live_without_model "status $status" [ "$status" = 200 ]
req GET /v2/health/ready
check v2_not_ready_503 "status $status retry '$(resp_header Retry-After)'" \
  eval 'err_json 503 && [ -n "$(resp_header Retry-After)" ]'
req GET /v2/models/mnist/ready
check v2_model_not_ready_503 "status $status" err_json 503
req GET /v2/models/mnist/versions/$V/ready
check v2_model_version_not_ready_503 "status $status" err_json 503
req GET /v2/models/mnist/versions/$V
check v2_model_version_metadata_503 "status $status" err_json 503
req GET /v2/models/mnist
check v2_model_metadata_without_model "status $status" ok_json 200 'd["versions"] == []'
req POST /v2/models/mnist/infer --data-binary @"$R/fp32.json"
check v2_infer_not_ready_503 "status $status" err_json 503
req POST /v2/models/mnist/versions/$V/infer --data-binary @"$R/fp32.json"
check v2_infer_version_not_ready_503 "status $status" err_json 503
stop_daemon || fail v2_stop_empty "exit status $?"
[ "$FAILS" -eq 0 ]
