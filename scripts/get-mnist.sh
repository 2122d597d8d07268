#!/usr/bin/env bash
# Downloads the four canonical MNIST files into DIR and verifies each by MD5.
#
#   scripts/get-mnist.sh DIR                 download what is missing or wrong
#   scripts/get-mnist.sh --verify-only DIR   only check the files already there
#
# Files already present with the right checksum are kept. A download whose
# checksum is wrong is deleted and the next mirror tried; if no mirror gives
# the right file, a wrong file already there is deleted too and the script
# exits 1. --verify-only never downloads or
# deletes; it exits 1 if any file is missing or wrong.
# MNIST_MIRRORS (space-separated base URLs, each ending in /) overrides the
# mirror list, e.g. for a local copy: MNIST_MIRRORS=file:///srv/mnist/
set -euo pipefail

FILES=(train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz
       t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz)
declare -A MD5=(
  [train-images-idx3-ubyte.gz]=f68b3c2dcbeaaa9fbdd348bbdeb94873
  [train-labels-idx1-ubyte.gz]=d53e105ee54ea40749a09fcbcd1e9432
  [t10k-images-idx3-ubyte.gz]=9fb629c4189551a2d022fa330f9573f3
  [t10k-labels-idx1-ubyte.gz]=ec29112dd5afa0611ce80d1b7f02629c
)
DEFAULT_MIRRORS="https://ossci-datasets.s3.amazonaws.com/mnist/
https://storage.googleapis.com/cvdf-datasets/mnist/
http://yann.lecun.com/exdb/mnist/"

usage() { echo "usage: $0 [--verify-only] DIR" >&2; exit 2; }

verify_only=0
dir=
for a in "$@"; do
  case "$a" in
    --verify-only) verify_only=1 ;;
    -h|--help) usage ;;
    -*) echo "get-mnist: unknown option $a" >&2; usage ;;
    *) [ -z "$dir" ] || usage; dir=$a ;;
  esac
done
[ -n "$dir" ] || usage

md5_of() { md5sum "$1" | cut -d' ' -f1; }

fetch() { # URL OUT
  if command -v curl >/dev/null; then
    curl --fail --location --silent --show-error --connect-timeout 15 --max-time 600 \
         --retry 2 -o "$2" "$1"
  elif command -v wget >/dev/null; then
    wget -q --timeout=15 -O "$2" "$1"
  else
    echo "get-mnist: neither curl nor wget is installed" >&2; return 1
  fi
}

if [ $verify_only -eq 1 ]; then
  [ -d "$dir" ] || { echo "get-mnist: $dir: no such directory" >&2; exit 1; }
else
  mkdir -p "$dir"
fi

read -r -a mirrors <<<"$(echo ${MNIST_MIRRORS:-$DEFAULT_MIRRORS})"
status=0
for f in "${FILES[@]}"; do
  want=${MD5[$f]}
  path=$dir/$f
  if [ -f "$path" ]; then
    got=$(md5_of "$path")
    if [ "$got" = "$want" ]; then
      echo "ok       $f (md5 $got)"
      continue
    fi
    if [ $verify_only -eq 1 ]; then
      echo "BAD      $f: md5 $got, expected $want" >&2
      status=1; continue
    fi
    echo "replace  $f: md5 $got, expected $want" >&2
  elif [ $verify_only -eq 1 ]; then
    echo "MISSING  $f in $dir" >&2
    status=1; continue
  fi

  # Download beside the target, verify, then move into place: a wrong or
  # partial download never takes the canonical name.
  part=$path.part.$$
  done_ok=0
  for m in "${mirrors[@]}"; do
    rm -f "$part"
    if ! why=$(fetch "$m$f" "$part" 2>&1); then
      echo "         $f: not available from $m: ${why##*$'\n'}" >&2
      continue
    fi
    got=$(md5_of "$part")
    if [ "$got" != "$want" ]; then
      echo "         $f from $m: md5 $got, expected $want; deleted" >&2
      continue
    fi
    mv -f "$part" "$path"
    echo "fetched  $f from $m (md5 $got)"
    done_ok=1
    break
  done
  rm -f "$part"
  if [ $done_ok -eq 0 ]; then
    # A wrong file under the canonical name would be loaded as MNIST.
    if [ -f "$path" ]; then rm -f "$path"; echo "deleted  $path (wrong md5)" >&2; fi
    echo "FAILED   $f: no mirror gave a file with md5 $want" >&2
    status=1
  fi
done
exit $status
