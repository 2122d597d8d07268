#!/usr/bin/env bash
# mnistd checkpoints read by an independent safetensors reader (json + numpy,
# scripts/check_safetensors.py) and by Hugging Face's safetensors library, and
# files in the reference writer's order or written by the library read back
# by mnistd. Prints PASS/FAIL/SKIP lines; exit 1 on any failure.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
TOOL=$BUILD/tests/tools/ckpt_tool
MKPNG=$BUILD/tests/tools/mkpng
MNISTD_BIN=${MNISTD_BIN:-$BUILD/mnistd}
PY=/usr/bin/python3
CHECK=scripts/check_safetensors.py
failed=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; failed=1; }

if [ ! -x "$TOOL" ]; then
  echo "FAIL ckpt_tool: $TOOL not built (make $TOOL)"; exit 1
fi
if ! "$PY" -c 'import numpy' 2>/dev/null; then
  echo "SKIP safetensors_python: $PY has no numpy (Debian python3-numpy)"; exit 0
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# 1. C writes, Python validates the layout and the network's tensors.
if "$TOOL" write "$tmp/m.safetensors" 7 2>"$tmp/err"; then pass ckpt_tool_write
else fail ckpt_tool_write "$(cat "$tmp/err")"; fi
if "$PY" "$CHECK" "$tmp/m.safetensors" --mnistd >"$tmp/py.out" 2>"$tmp/err"; then
  cat "$tmp/py.out" | sed 's/^/# /'
  if grep -q 'conv1.weight *F32 \[32, 3, 3, 1\]' "$tmp/py.out" &&
     grep -q "meta test_accuracy = '0.9901'" "$tmp/py.out" &&
     grep -q "meta architecture = 'mnist-cnn-v1'" "$tmp/py.out"; then
    pass python_validates_layout
  else fail python_validates_layout "tensors or metadata missing from the listing"; fi
else fail python_validates_layout "$(cat "$tmp/err")"; fi

# 2. The same values on both sides, bit for bit.
"$TOOL" show "$tmp/m.safetensors" | grep '^tensor ' >"$tmp/c.fnv"
"$PY" "$CHECK" "$tmp/m.safetensors" --fnv >"$tmp/py.fnv" 2>"$tmp/err"
if [ -s "$tmp/c.fnv" ] && [ "$(wc -l <"$tmp/c.fnv")" -eq 10 ] && cmp -s "$tmp/c.fnv" "$tmp/py.fnv"; then
  pass python_reads_same_values
else fail python_reads_same_values "$(diff "$tmp/c.fnv" "$tmp/py.fnv" | head -5) $(cat "$tmp/err")"; fi

# 3. A file in the reference writer's order (sorted by name) loads in C with
#    the same values and metadata.
if "$PY" "$CHECK" "$tmp/m.safetensors" --rewrite "$tmp/r.safetensors" >/dev/null 2>"$tmp/err" &&
   "$TOOL" show "$tmp/r.safetensors" >"$tmp/r.show" 2>>"$tmp/err"; then
  grep '^tensor ' "$tmp/r.show" >"$tmp/r.fnv"
  "$TOOL" show "$tmp/m.safetensors" | grep '^meta ' | sort >"$tmp/m.meta"
  grep '^meta ' "$tmp/r.show" | sort >"$tmp/r.meta"
  if ! cmp -s "$tmp/m.safetensors" "$tmp/r.safetensors" && cmp -s "$tmp/c.fnv" "$tmp/r.fnv" &&
     cmp -s "$tmp/m.meta" "$tmp/r.meta"; then
    pass c_reads_reference_order
  else fail c_reads_reference_order "values or metadata differ after the rewrite"; fi
else fail c_reads_reference_order "$(cat "$tmp/err")"; fi

# 4. Both readers refuse a truncated copy and one with trailing bytes.
head -c -100 "$tmp/m.safetensors" >"$tmp/t.safetensors"
{ cat "$tmp/m.safetensors"; printf 'xx'; } >"$tmp/x.safetensors"
ok=1
for f in t x; do
  "$PY" "$CHECK" "$tmp/$f.safetensors" >/dev/null 2>"$tmp/err.$f" && ok=0
  "$TOOL" show "$tmp/$f.safetensors" >/dev/null 2>&1 && ok=0
done
if [ $ok -eq 1 ] && grep -q truncated "$tmp/err.t" && grep -q 'trailing' "$tmp/err.x"; then
  pass both_refuse_damaged_files
else fail both_refuse_damaged_files "$(cat "$tmp/err.t" "$tmp/err.x")"; fi

# 5. Hugging Face's safetensors library itself (PyPI, pinned in
#    requirements/test.txt, installed into build/venv-test by scripts/deps.sh
#    test): the shipped model and a freshly trained one load with
#    safetensors.numpy.load_file with the same metadata and the same tensors,
#    bit for bit, as mnistd's loader sees them.
LIB_PY=build/venv-test/bin/python
LIB=tests/tools/safetensors_lib.py
if ! "$LIB_PY" -c 'import safetensors.numpy' 2>"$tmp/err"; then
  fail safetensors_library "no safetensors in build/venv-test (run scripts/deps.sh test): $(tail -1 "$tmp/err")"
  exit 1
fi
same_as_ours() { # name file
  "$TOOL" show "$2" | sort >"$tmp/ours" 2>"$tmp/err" &&
    "$LIB_PY" "$LIB" show "$2" | sort >"$tmp/lib" 2>>"$tmp/err" || {
      fail "$1" "$(cat "$tmp/err")"; return; }
  if [ "$(grep -c '^tensor ' "$tmp/ours")" -eq 10 ] && cmp -s "$tmp/ours" "$tmp/lib"; then pass "$1"
  else fail "$1" "$(diff "$tmp/ours" "$tmp/lib" | head -4)"; fi
}
same_as_ours safetensors_library_reads_shipped_model models/mnist-cnn.safetensors
if [ -n "${MNISTD_DATA:-}" ] && [ -d "$MNISTD_DATA" ]; then
  if "$MNISTD_BIN" train --data "$MNISTD_DATA" --limit 640 --epochs 1 --threads 1 --quiet \
       --out "$tmp/fresh.safetensors" >/dev/null 2>"$tmp/err"; then
    same_as_ours safetensors_library_reads_trained_model "$tmp/fresh.safetensors"
  else fail safetensors_library_reads_trained_model "training failed: $(cat "$tmp/err")"; fi
else
  echo "SKIP safetensors_library_reads_trained_model: MNISTD_DATA is not set"
fi

# 6. Files the library writes (safetensors.numpy.save_file: its own tensor
#    order and padding, other metadata or none) load in mnistd with the same
#    tensors and predictions; the ones that do not fit the network are refused
#    with an error that names the tensor and what is wrong.
"$MKPNG" --mnist "${MNISTD_DATA:-/nonexistent}" --index 0 -o "$tmp/d.png" 2>/dev/null ||
  cp tests/fixtures/png/one-28x28.png "$tmp/d.png"
"$MNISTD_BIN" predict --probs --model models/mnist-cnn.safetensors "$tmp/d.png" >"$tmp/p.ours" 2>&1
for kind in same nometa; do
  f=$tmp/lib-$kind.safetensors
  if "$LIB_PY" "$LIB" save models/mnist-cnn.safetensors "$f" "$kind" 2>"$tmp/err" &&
     "$TOOL" show models/mnist-cnn.safetensors | grep '^tensor ' >"$tmp/t.ours" &&
     "$TOOL" show "$f" >"$tmp/show" 2>"$tmp/err" && grep '^tensor ' "$tmp/show" >"$tmp/t.lib" &&
     "$MNISTD_BIN" predict --probs --model "$f" "$tmp/d.png" >"$tmp/p.lib" 2>"$tmp/err"; then
    if cmp -s "$tmp/t.ours" "$tmp/t.lib" && cmp -s "$tmp/p.ours" "$tmp/p.lib" && [ -s "$tmp/p.ours" ] &&
       ! head -c 200 "$f" | grep -q '"architecture"'; then
      pass "mnistd_loads_library_file_$kind"
    else fail "mnistd_loads_library_file_$kind" "tensors or prediction differ: $(cat "$tmp/p.ours" "$tmp/p.lib")"; fi
  else fail "mnistd_loads_library_file_$kind" "$(cat "$tmp/err")"; fi
done
for case in 'f64|tensor "conv1.bias": dtype F64, expected F32' \
            'nchw|tensor "conv1.weight": shape [32,1,3,3], expected [32,3,3,1]' \
            'extra|unknown tensor "fc3.weight"'; do
  kind=${case%%|*} want=${case#*|} f=$tmp/lib-${case%%|*}.safetensors
  if ! "$LIB_PY" "$LIB" save models/mnist-cnn.safetensors "$f" "$kind" 2>"$tmp/err"; then
    fail "mnistd_refuses_library_file_$kind" "$(cat "$tmp/err")"; continue
  fi
  if "$MNISTD_BIN" predict --model "$f" "$tmp/d.png" >/dev/null 2>"$tmp/err"; then
    fail "mnistd_refuses_library_file_$kind" "mnistd loaded it"
  elif grep -qF "$want" "$tmp/err"; then pass "mnistd_refuses_library_file_$kind"
  else fail "mnistd_refuses_library_file_$kind" "unclear error: $(cat "$tmp/err")"; fi
done
exit $failed
