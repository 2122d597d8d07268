#!/usr/bin/env bash
# tests/integration/test_web.sh -- the web page served at / in a real browser,
# over HTTPS (--tls-cert/--tls-key with a CA made here by
# tests/tools/mkcerts.sh; Chromium accepts the server key by its hash,
# Node's fetch trusts the CA).
#
# Starts the daemon (port 0, the port read back from its startup line) on a
# model repository of its own, seeded with the shipped model (the training
# step adds a version and activates it; the models panel switches back and
# forth), installs what the browser test needs (Debian's
# chromium through scripts/deps.sh, playwright-core from tests/web's
# package-lock.json with npm ci), and runs tests/web/web.test.js: it draws
# MNIST test digits on the canvas with the mouse, uploads PNGs, trains and
# cancels from the page, evaluates, and saves screenshots under $BUILD/web/.
#
# SKIP only when MNISTD_DATA is unset, Chromium cannot be installed, or the
# npm registry cannot be reached.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT" || exit 1
BUILD=${BUILD:-build}
BIN=${MNISTD_BIN:-$ROOT/$BUILD/mnistd}
OUT=$ROOT/$BUILD/web
WORK=$(mktemp -d /tmp/mnistd-web.XXXXXX)
PID=

cleanup() {
  if [ -n "$PID" ]; then
    kill "$PID" 2>/dev/null
    wait "$PID" 2>/dev/null
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

if [ -z "${MNISTD_DATA:-}" ]; then
  echo "SKIP web: MNISTD_DATA is not set (the digits drawn, /evaluate and /samples.png need the MNIST test set)"
  exit 0
fi
if [ ! -x "$BIN" ]; then
  echo "FAIL web: no daemon binary at $BIN"
  exit 1
fi

# Chromium from Debian (scripts/deps.sh test lists it; this covers a run of
# the script on its own).
if [ ! -x /usr/bin/chromium ]; then
  MNISTD_EXTRA_PKGS="chromium chromium-driver" bash scripts/deps.sh test >"$WORK/apt.log" 2>&1
fi
if [ ! -x /usr/bin/chromium ]; then
  echo "SKIP web: /usr/bin/chromium is missing and apt could not install it: $(tail -n 1 "$WORK/apt.log" 2>/dev/null)"
  exit 0
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  MNISTD_EXTRA_PKGS="nodejs npm" bash scripts/deps.sh test >>"$WORK/apt.log" 2>&1
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "SKIP web: node and npm are missing and apt could not install them: $(tail -n 1 "$WORK/apt.log" 2>/dev/null)"
  exit 0
fi
if ! why=$(node tests/node-engines.js tests/web 2>&1); then
  echo "FAIL web_node_version: $why"
  exit 1
fi

# playwright-core at the version of the lockfile; npm ci only when the
# installed copy differs.
installed_ok() {
  (cd tests/web && node -e '
    const want = require("./package-lock.json").packages["node_modules/playwright-core"].version;
    const have = require("./node_modules/playwright-core/package.json").version;
    process.exit(want === have ? 0 : 1);' 2>/dev/null)
}
if ! installed_ok; then
  if ! (cd tests/web && npm ci --prefer-offline --no-audit --no-fund) >"$WORK/npm.log" 2>&1; then
    if ! npm ping >/dev/null 2>&1; then
      echo "SKIP web: npm ci failed and the npm registry is unreachable: $(tail -n 1 "$WORK/npm.log")"
      exit 0
    fi
    echo "FAIL web: npm ci in tests/web failed:"
    tail -n 20 "$WORK/npm.log"
    exit 1
  fi
fi

# A model the training step may overwrite: a copy of the shipped one, or a
# small one trained here when the repository has none.
MODEL=$WORK/model.safetensors
if [ -f models/mnist-cnn.safetensors ]; then
  cp models/mnist-cnn.safetensors "$MODEL"
else
  if ! "$BIN" train --data "$MNISTD_DATA" --limit 20000 --epochs 1 --threads 2 --quiet --out "$MODEL" \
      >"$WORK/train.log" 2>&1; then
    echo "FAIL web: no shipped model and training one failed:"
    tail -n 20 "$WORK/train.log"
    exit 1
  fi
fi

if ! bash tests/tools/mkcerts.sh "$WORK/pki" >"$WORK/pki.log" 2>&1; then
  echo "FAIL web: tests/tools/mkcerts.sh could not make the certificates:"
  tail -n 5 "$WORK/pki.log"
  exit 1
fi
SPKI=$(openssl x509 -in "$WORK/pki/server.pem" -noout -pubkey | openssl pkey -pubin -outform der |
       openssl dgst -sha256 -binary | base64)
"$BIN" serve --port 0 --bind 127.0.0.1 --model-dir "$WORK/repo" --model "$MODEL" --data "$MNISTD_DATA" \
  --tls-cert "$WORK/pki/server.pem" --tls-key "$WORK/pki/server.key" 2>"$WORK/daemon.log" &
PID=$!
BASE=
end=$((SECONDS + 30))
while [ -z "$BASE" ]; do
  BASE=$(grep -o -m 1 'listening on https://[0-9.:]*' "$WORK/daemon.log" | sed 's/^listening on //')
  [ -n "$BASE" ] && break
  if ! kill -0 "$PID" 2>/dev/null || [ "$SECONDS" -ge "$end" ]; then
    echo "FAIL web: the daemon did not start:"
    tail -n 20 "$WORK/daemon.log"
    exit 1
  fi
  sleep 0.1
done

mkdir -p "$OUT"
BASE_URL="$BASE/" OUT_DIR="$OUT" CHROMIUM=/usr/bin/chromium CERT_SPKI="$SPKI" \
  NODE_EXTRA_CA_CERTS="$WORK/pki/ca.pem" node tests/web/web.test.js
rc=$?

# The daemon must have survived the session and stop cleanly.
if ! kill -0 "$PID" 2>/dev/null; then
  echo "FAIL web_daemon: the daemon died during the test:"
  tail -n 20 "$WORK/daemon.log"
  rc=1
else
  kill -TERM "$PID"
  wait "$PID"
  st=$?
  PID=
  if [ "$st" -ne 0 ]; then
    echo "FAIL web_daemon: exit status $st after SIGTERM"
    tail -n 20 "$WORK/daemon.log"
    rc=1
  else
    echo "PASS web_daemon"
  fi
fi
[ "$rc" -ne 0 ] && { echo "--- daemon log (last lines):"; tail -n 15 "$WORK/daemon.log"; }
echo "screenshots: $OUT/desktop.png $OUT/phone.png $OUT/train.png"
exit "$rc"
