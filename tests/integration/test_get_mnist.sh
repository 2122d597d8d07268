#!/usr/bin/env bash
# scripts/get-mnist.sh: checksum verification (--verify-only on the real files
# and on damaged copies) and the download path against local file:// mirrors
# (this machine has no internet). Prints PASS/FAIL/SKIP lines.
set -u
cd "$(dirname "$0")/../.."
GET=scripts/get-mnist.sh
failed=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; failed=1; }
FILES="train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# Checks that don't need the real files.
mkdir -p "$tmp/fake"
for f in $FILES; do echo "not mnist" >"$tmp/fake/$f"; done
if bash $GET --verify-only "$tmp/fake" >"$tmp/out" 2>&1; then
  fail verify_rejects_wrong_files "exit 0 on wrong files"
elif [ "$(grep -c '^BAD' "$tmp/out")" -eq 4 ] && [ "$(ls "$tmp/fake" | wc -l)" -eq 4 ]; then
  pass verify_rejects_wrong_files
else fail verify_rejects_wrong_files "$(cat "$tmp/out")"; fi

mkdir -p "$tmp/none"
if bash $GET --verify-only "$tmp/none" >"$tmp/out" 2>&1; then
  fail verify_rejects_missing_files "exit 0 on an empty directory"
elif [ "$(grep -c '^MISSING' "$tmp/out")" -eq 4 ]; then pass verify_rejects_missing_files
else fail verify_rejects_missing_files "$(cat "$tmp/out")"; fi

if bash $GET --verify-only "$tmp/no-such-dir" >"$tmp/out" 2>&1 || [ -e "$tmp/no-such-dir" ]; then
  fail verify_missing_dir "exit 0 or created the directory"
else pass verify_missing_dir; fi

bash $GET >/dev/null 2>&1; rc=$?
if [ $rc -eq 2 ]; then pass usage_without_dir; else fail usage_without_dir "exit $rc"; fi

if [ -z "${MNISTD_DATA:-}" ]; then
  echo "SKIP get_mnist_real_files: MNISTD_DATA not set"
  exit $failed
fi

if bash $GET --verify-only "$MNISTD_DATA" >"$tmp/out" 2>&1 && [ "$(grep -c '^ok' "$tmp/out")" -eq 4 ]; then
  pass verify_real_files
else fail verify_real_files "$(cat "$tmp/out")"; fi

# A copy with one byte changed in one file: only that file is reported.
mkdir -p "$tmp/bad"
cp "$MNISTD_DATA"/*.gz "$tmp/bad/"
chmod u+w "$tmp/bad"/*
printf '\x42' | dd of="$tmp/bad/t10k-labels-idx1-ubyte.gz" bs=1 seek=100 conv=notrunc status=none
if bash $GET --verify-only "$tmp/bad" >"$tmp/out" 2>&1; then
  fail verify_rejects_corrupt_copy "exit 0"
elif grep -q '^BAD *t10k-labels-idx1-ubyte.gz' "$tmp/out" && [ "$(grep -c '^ok' "$tmp/out")" -eq 3 ] &&
     [ -f "$tmp/bad/t10k-labels-idx1-ubyte.gz" ]; then
  pass verify_rejects_corrupt_copy
else fail verify_rejects_corrupt_copy "$(cat "$tmp/out")"; fi

# Download path: a broken mirror (one file corrupt, one missing) first, a
# good one second. The good files must arrive, the bad download must not stay.
mkdir -p "$tmp/mirror-bad" "$tmp/mirror-good" "$tmp/dl"
cp "$MNISTD_DATA"/*.gz "$tmp/mirror-good/"
cp "$tmp/bad/t10k-labels-idx1-ubyte.gz" "$tmp/mirror-bad/"
cp "$MNISTD_DATA/train-labels-idx1-ubyte.gz" "$tmp/mirror-bad/"
if MNIST_MIRRORS="file://$tmp/mirror-bad/ file://$tmp/mirror-good/" \
     bash $GET "$tmp/dl" >"$tmp/out" 2>&1 &&
   bash $GET --verify-only "$tmp/dl" >/dev/null 2>&1 &&
   grep -q "fetched  t10k-labels-idx1-ubyte.gz from file://$tmp/mirror-good/" "$tmp/out" &&
   grep -q "fetched  train-labels-idx1-ubyte.gz from file://$tmp/mirror-bad/" "$tmp/out" &&
   grep -q "t10k-labels-idx1-ubyte.gz from file://$tmp/mirror-bad/: md5 .*deleted" "$tmp/out" &&
   [ "$(ls "$tmp/dl" | wc -l)" -eq 4 ]; then
  pass download_falls_back_and_verifies
else fail download_falls_back_and_verifies "$(cat "$tmp/out"; ls "$tmp/dl")"; fi

# Everything present and right: nothing is fetched (the mirror is unusable).
if MNIST_MIRRORS="file://$tmp/nowhere/" bash $GET "$tmp/dl" >"$tmp/out" 2>&1 &&
   [ "$(grep -c '^ok' "$tmp/out")" -eq 4 ]; then
  pass download_skips_good_files
else fail download_skips_good_files "$(cat "$tmp/out")"; fi

# Only a corrupt mirror: refused, nothing left under the canonical name or
# as a partial file, exit 1.
mkdir -p "$tmp/dl2"
if MNIST_MIRRORS="file://$tmp/mirror-bad/" bash $GET "$tmp/dl2" >"$tmp/out" 2>&1; then
  fail download_refuses_bad_checksum "exit 0"
elif [ ! -e "$tmp/dl2/t10k-labels-idx1-ubyte.gz" ] && [ -f "$tmp/dl2/train-labels-idx1-ubyte.gz" ] &&
     [ -z "$(ls "$tmp/dl2" | grep part)" ] && grep -q '^FAILED   t10k-labels' "$tmp/out"; then
  pass download_refuses_bad_checksum
else fail download_refuses_bad_checksum "$(cat "$tmp/out"; ls "$tmp/dl2")"; fi

# A wrong file already in place is replaced from a good mirror.
cp "$tmp/bad/t10k-labels-idx1-ubyte.gz" "$tmp/dl/"
if MNIST_MIRRORS="file://$tmp/mirror-good/" bash $GET "$tmp/dl" >"$tmp/out" 2>&1 &&
   bash $GET --verify-only "$tmp/dl" >/dev/null 2>&1 && grep -q '^replace  t10k-labels' "$tmp/out"; then
  pass download_replaces_wrong_file
else fail download_replaces_wrong_file "$(cat "$tmp/out")"; fi
exit $failed
