#!/usr/bin/env bash
# int8 serving (--precision int8): a bad value is a startup error; GET /model
# says which precision serves predictions and both test accuracies; the int8
# daemon answers /predict with the digits the fp32 one gives; a model file
# without int8 scales is served in fp32 with the reason; mnistd quantize adds
# the scales (the version stays) and refuses what it cannot read.
. "$(dirname "$0")/../contract/lib.sh"
models_init test_int8
B=$MNISTD_BIN

"$B" serve --precision foo --port 0 >"$WORK/o" 2>&1
rc=$?
check int8_bad_precision_flag "exit $rc: $(cat "$WORK/o")" test "$rc" = 2 -a -n "$(grep "'foo' is not fp32 or int8" "$WORK/o")"
MNISTD_PRECISION=INT8 "$B" serve --port 0 >"$WORK/o" 2>&1
rc=$?
check int8_bad_precision_env "exit $rc: $(cat "$WORK/o")" test "$rc" = 2 -a -n "$(grep 'MNISTD_PRECISION' "$WORK/o")"
# The AVX-VNNI table runs vpdpbusd in its VEX form only (AVX-VNNI): the EVEX
# form (AVX512-VNNI) would fault on a CPU with AVX-VNNI and no AVX-512.
o="$(dirname "$B")/obj/model/isa/qkernels-avxvnni.o"
if [ -f "$o" ] && command -v objdump >/dev/null; then
  objdump -d "$o" >"$WORK/avxvnni.s"
  vex=$(grep -c '{vex} vpdpbusd' "$WORK/avxvnni.s"); all=$(grep -c 'vpdpbusd' "$WORK/avxvnni.s")
  evex=$(grep -cE '%zmm|%[xy]mm(1[6-9]|2[0-9]|3[01])\b|%k[0-7]' "$WORK/avxvnni.s")
  check int8_avxvnni_vex_encoding "vpdpbusd $all times, VEX $vex; AVX-512-only registers $evex" \
    test "$vex" -gt 0 -a "$vex" = "$all" -a "$evex" = 0
else
  skip int8_avxvnni_vex_encoding "no $o (not an x86-64 build) or no objdump"
fi
"$B" serve --help >"$WORK/help" 2>&1
check int8_help "no --precision in serve --help" grep -q -- '--precision .*MNISTD_PRECISION' "$WORK/help"

# a copy of the model without the int8 keys (as an older mnistd wrote it)
python3 - "$MODEL" "$WORK/plain.safetensors" <<'PY'
import json, struct, sys
b = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8 + n])
for k in ('int8_scales', 'int8_test_accuracy'):
    h['__metadata__'].pop(k, None)
t = json.dumps(h).encode()
t += b' ' * (-len(t) % 8)
open(sys.argv[2], 'wb').write(struct.pack('<Q', len(t)) + t + b[8 + n:])
PY

for i in 0 1 2 3 4 5 6 7; do "$MKPNG" --mnist "$D" --index "$i" -o "$WORK/p$i.png"; done
digits() { # the daemon on $PORT's digit for each of the PNGs; the confidences to $WORK/conf.$1
  local i
  : >"$WORK/conf.$1"
  for i in 0 1 2 3 4 5 6 7; do
    req POST /predict -H 'Content-Type: image/png' --data-binary @"$WORK/p$i.png"
    printf '%s ' "$(jget "$body" 'd["digit"]')"
    jget "$body" 'd["confidence"]' >>"$WORK/conf.$1"
  done
}

start_daemon fp32 --model "$MODEL" || { fail int8_start "fp32 daemon did not start"; exit 1; }
want=$(digits fp32)
req GET /model
check int8_model_fp32_default "$(head -c 400 "$body")" \
  test "$(jget "$body" 'd["precision"]["configured"] + " " + d["precision"]["in_use"]')" = "fp32 fp32"
stop_daemon

start_daemon int8 --model "$MODEL" --precision int8 || { fail int8_start "int8 daemon did not start"; exit 1; }
req GET /model
check int8_model_reports_int8 "$(head -c 600 "$body")" \
  test "$(jget "$body" 'd["precision"]["in_use"]')" = int8
a8=$(jget "$body" 'd["precision"]["test_accuracy"]["int8"]')
a32=$(jget "$body" 'd["precision"]["test_accuracy"]["fp32"]')
check int8_model_reports_accuracies "fp32 $a32 int8 $a8" \
  awk -v a="$a8" -v b="$a32" 'BEGIN {exit !(a > 0.98 && b > 0.98 && a - b <= 0.002 && b - a <= 0.002)}'
got=$(digits int8)
check int8_predict_same_digits "fp32: $want; int8: $got" test -n "$want" -a "$got" = "$want"
# the other arithmetic shows in the probabilities
check int8_predict_is_int8 "the same confidences as fp32: $(tr '\n' ' ' <"$WORK/conf.int8")" \
  bash -c "! cmp -s '$WORK/conf.fp32' '$WORK/conf.int8'"
stop_daemon

start_daemon plain --model "$WORK/plain.safetensors" --precision int8 || { fail int8_start "daemon did not start"; exit 1; }
req GET /model
check int8_model_without_scales_serves_fp32 "$(head -c 600 "$body")" \
  test "$(jget "$body" 'd["precision"]["in_use"] + " " + str(d["precision"]["int8_scales"])')" = "fp32 None" \
    -a -n "$(jget "$body" 'd["precision"]["note"]' | grep int8_scales)"
v0=$(jget "$body" 'd["version"]')
got=$(digits plain)
check int8_fp32_fallback_predicts "fp32: $want; fallback: $got" test "$got" = "$want" -a -n "$want"
check int8_fp32_fallback_is_fp32 "other confidences than fp32's" cmp -s "$WORK/conf.fp32" "$WORK/conf.plain"
stop_daemon

"$B" quantize --model "$WORK/plain.safetensors" --out "$WORK/q.safetensors" --data "$D" >"$WORK/q.out" 2>&1
rc=$?
check int8_quantize "exit $rc: $(cat "$WORK/q.out")" test "$rc" = 0 -a -n "$(grep '^int8_scales [0-9.e-]* [0-9.e-]* [0-9.e-]*$' "$WORK/q.out")"
start_daemon quantized --model "$WORK/q.safetensors" --precision int8 || { fail int8_start "daemon did not start"; exit 1; }
req GET /model
check int8_quantized_same_version_int8 "$(head -c 400 "$body")" \
  test "$(jget "$body" 'd["version"] + " " + d["precision"]["in_use"]')" = "$v0 int8"
stop_daemon
"$B" quantize --model "$WORK/none.safetensors" --data "$D" >"$WORK/o" 2>&1
rc=$?
check int8_quantize_missing_model "exit $rc: $(cat "$WORK/o")" test "$rc" = 1
MNISTD_DATA= "$B" quantize --model "$WORK/plain.safetensors" >"$WORK/o" 2>&1
rc=$?
check int8_quantize_no_data "exit $rc: $(cat "$WORK/o")" test "$rc" = 2 -a -n "$(grep 'no data directory' "$WORK/o")"
[ "$FAILS" -eq 0 ]
