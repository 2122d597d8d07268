#!/usr/bin/env bash
# Resource bounds: every limit set low, then an example just within it
# (served) and one just over it (the documented 4xx). Complements
# test_http.sh, which checks the same limits at their defaults (413 by
# Content-Length, before reading and chunked; 413 for 65 images; 422 for a
# 100000x100000 PNG header and a 5000-pixel-wide image; 503 for a full queue)
# and test_hardening_slow.py (connections, timeouts, 414 and 431 for the
# request line and headers). The table of limits is docs/limits.md.
. "$(dirname "$0")/../contract/lib.sh"
lib_init
I=$WORK/img
mkdir -p "$I"
[ -f "$ROOT/models/mnist-cnn.safetensors" ] || { skip test_hardening_limits "no shipped model"; exit 0; }
M=$WORK/model.safetensors
cp "$ROOT/models/mnist-cnn.safetensors" "$M"

"$MKPNG" --bar 100 100 -o "$I/px_at.png"       # 10000 pixels: at --max-image-pixels
"$MKPNG" --bar 101 100 -o "$I/px_over.png"     # 10100 pixels
"$MKPNG" --bar 150 20 -o "$I/side_at.png"      # 150 wide: at --max-image-side
"$MKPNG" --bar 151 20 -o "$I/side_over.png"
"$MKPNG" --bar 28 28 -o "$I/d.png"
head -c 4096 /dev/zero >"$I/body_at.bin"
head -c 4097 /dev/zero >"$I/body_over.bin"

expect() {  # expect NAME STATUS: the last answer has STATUS and is a JSON error when >= 400
  local name=$1 want=$2
  if [ "$status" != "$want" ]; then
    fail "$name" "status $status (want $want): $(head -c 300 "$body")"
  elif [ "$want" -ge 400 ] && [ "$(jget "$body" 'd["status"]')" != "$want" ]; then
    fail "$name" "not a JSON error: $(head -c 300 "$body")"
  else
    pass "$name"
  fi
}

start_daemon limits --model "$M" --max-body-bytes 4096 --max-image-pixels 10000 --max-image-side 150 \
  --max-images 2 --max-queue 4 || { fail test_hardening_limits_start "daemon did not start"; exit 1; }
png() { req POST /predict -H 'Content-Type: image/png' --data-binary "@$1"; }
png "$I/px_at.png";     expect test_hardening_limits_pixels_at 200
png "$I/px_over.png";   expect test_hardening_limits_pixels_over_422 422
check test_hardening_limits_pixels_detail "detail: $(jget "$body" 'd.get("detail")')" grep -q 'pixels' "$body"
png "$I/side_at.png";   expect test_hardening_limits_side_at 200
png "$I/side_over.png"; expect test_hardening_limits_side_over_422 422
# A body of exactly the limit is read (and refused as no PNG); one byte more is 413 unread.
png "$I/body_at.bin";   expect test_hardening_limits_body_at 400
png "$I/body_over.bin"; expect test_hardening_limits_body_over_413 413
req POST /predict -H 'Content-Type: image/png' -H 'Transfer-Encoding: chunked' --data-binary "@$I/body_over.bin"
expect test_hardening_limits_body_chunked_over_413 413
req POST /predict -F "a=@$I/d.png" -F "b=@$I/d.png"
expect test_hardening_limits_images_at 200
req POST /predict -F "a=@$I/d.png" -F "b=@$I/d.png" -F "c=@$I/d.png"
expect test_hardening_limits_images_over_413 413
# POST /train keeps at most 64 KiB of JSON.
python3 -c 'import sys; sys.stdout.write("{\"epochs\":1" + " " * 70000 + "}")' >"$I/train_big.json"
req POST /train -H 'Content-Type: application/json' --data-binary "@$I/train_big.json"
expect test_hardening_limits_train_body_413 413
req GET /healthz
check test_hardening_limits_alive "status $status after the refusals" test "$status" = 200
stop_daemon || fail test_hardening_limits_exit_0 "exit status $?"

# Settings that could not work are refused at startup (exit 2, the flag named).
bad_setting() {  # bad_setting NAME WANT-IN-MESSAGE FLAGS...
  local name=$1 want=$2; shift 2
  "$MNISTD_BIN" serve --port 0 --model "$M" "$@" >/dev/null 2>"$WORK/bad.err"
  local rc=$?
  check "$name" "exit $rc: $(cat "$WORK/bad.err")" test $rc -eq 2 -a -n "$(grep -- "$want" "$WORK/bad.err")"
}
bad_setting test_hardening_limits_refuse_images_over_queue max-images --max-images 8 --max-queue 4
bad_setting test_hardening_limits_refuse_tiny_header_memory --max-header-bytes --max-header-bytes 1024
bad_setting test_hardening_limits_refuse_zero_history --job-history --job-history 0
bad_setting test_hardening_limits_refuse_huge_body --max-body-bytes --max-body-bytes 2147483648

# ---- job history: the oldest finished jobs are dropped -------------------------------
if [ -z "${MNISTD_DATA:-}" ]; then
  skip test_hardening_limits_job_history "MNISTD_DATA is not set"
  [ "$FAILS" -eq 0 ]; exit
fi
start_daemon history --model "$M" --data "$MNISTD_DATA" --job-history 2 ||
  { fail test_hardening_limits_job_history "daemon did not start"; exit 1; }
for k in 1 2 3; do
  req POST /train -H 'Content-Type: application/json' --data-binary '{"epochs":50,"limit":256}'
  [ "$status" = 202 ] || fail test_hardening_limits_job_history "POST /train $k: $status $(head -c 200 "$body")"
  id=$(jget "$body" 'd["id"]')
  req DELETE "/train/$id"
  ended() { req GET "/train/$id"; [ "$(jget "$body" 'd["status"]')" = cancelled ]; }
  wait_until 30 ended || fail test_hardening_limits_job_history "job $id did not end"
done
req GET /train
ids=$(jget "$body" '" ".join(str(j["id"]) for j in d["jobs"])')
req GET /train/1
check test_hardening_limits_job_history "listed '$ids' (want '3 2'), GET /train/1 $status (want 404)" \
  test "$ids" = "3 2" -a "$status" = 404
stop_daemon
[ "$FAILS" -eq 0 ]
