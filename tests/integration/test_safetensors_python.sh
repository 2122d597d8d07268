#!/usr/bin/env bash
# mnistd checkpoints read by an independent safetensors reader (json + numpy,
# scripts/check_safetensors.py), and files in the reference writer's order
# read back by mnistd. Prints PASS/FAIL/SKIP lines; exit 1 on any failure.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
TOOL=$BUILD/tests/tools/ckpt_tool
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

# 5. The reference library itself, where it is installed.
if "$PY" -c 'import safetensors.numpy' 2>/dev/null; then
  if grep -q 'load_file agrees' "$tmp/py.out"; then pass safetensors_library_agrees
  else fail safetensors_library_agrees "$(grep safetensors "$tmp/py.out")"; fi
else
  echo "SKIP safetensors_library_agrees: the safetensors Python package is not installed (no Debian package)"
fi
exit $failed
