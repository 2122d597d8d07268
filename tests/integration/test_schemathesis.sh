#!/usr/bin/env bash
# schemathesis (PyPI, pinned in requirements/test.txt, installed into
# build/venv-test by scripts/deps.sh test) against a running daemon with
# openapi.yaml: every operation, every check (settings and the one check
# turned off, with the reason, in tests/contract/schemathesis.toml), a bounded
# number of examples, and the daemon still serving afterwards.
# The daemon trains on a 320-image cut of the training set (so that the
# POST /train jobs schemathesis starts are cheap) and evaluates on the full
# test set (so that every documented /samples.png offset exists). It takes
# as many multipart parts as the schema allows (--max-images 1024).
# Prints PASS/FAIL/SKIP lines; exit 1 on any failure.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
BIN=${MNISTD_BIN:-$BUILD/mnistd}
ST=build/venv-test/bin/schemathesis
EXAMPLES=${SCHEMATHESIS_EXAMPLES:-25}
failed=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; failed=1; }

if [ ! -x "$ST" ]; then
  echo "FAIL schemathesis: $ST is missing (scripts/deps.sh test installs it)"; exit 1
fi
if [ -z "${MNISTD_DATA:-}" ] || [ ! -d "$MNISTD_DATA" ]; then
  echo "SKIP schemathesis: MNISTD_DATA is not set (the daemon needs data for /train and /evaluate)"; exit 0
fi
tmp=$(mktemp -d); DPID=
cleanup() { [ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

mkdir "$tmp/data"
for f in t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  for src in "$MNISTD_DATA/$f" "$MNISTD_DATA/$f.gz"; do
    [ -f "$src" ] && ln -s "$(cd "$(dirname "$src")" && pwd)/$(basename "$src")" "$tmp/data/"
  done
done
# The first 320 training images and labels (IDX: big-endian header, then data).
/usr/bin/python3 - "$MNISTD_DATA" "$tmp/data" <<'PY' || { echo "FAIL schemathesis: cannot cut the training set"; exit 1; }
import gzip, os, struct, sys
src, dst = sys.argv[1:3]
for stem, ndim in (("train-images-idx3-ubyte", 3), ("train-labels-idx1-ubyte", 1)):
    p = os.path.join(src, stem)
    b = open(p, "rb").read() if os.path.exists(p) else gzip.open(p + ".gz").read()
    dims = struct.unpack(">%dI" % ndim, b[4:4 + 4 * ndim])
    per = 1
    for d in dims[1:]:
        per *= d
    off = 4 + 4 * ndim
    open(os.path.join(dst, stem), "wb").write(b[:4] + struct.pack(">I", 320) + b[8:off] + b[off:off + 320 * per])
PY
cp models/mnist-cnn.safetensors "$tmp/m.safetensors"
"$BIN" serve --port 0 --model "$tmp/m.safetensors" --data "$tmp/data" --threads 1 \
  --max-images 1024 2>"$tmp/daemon.log" &
DPID=$!
PORT=
for _ in $(seq 200); do
  PORT=$(grep -o '"msg":"listening on http://[^"]*"' "$tmp/daemon.log" | sed 's/.*:\([0-9]*\)"$/\1/')
  [ -n "$PORT" ] && break
  sleep 0.05
done
[ -n "$PORT" ] || { echo "FAIL schemathesis: the daemon did not start: $(tail -3 "$tmp/daemon.log")"; exit 1; }

ops=$(/usr/bin/python3 - <<'PY'
import re
n, in_paths = 0, False
for line in open("openapi.yaml"):
    if line.startswith("paths:"):
        in_paths = True
    elif in_paths and re.match(r"^\S", line):
        break
    elif in_paths and re.match(r"^    (get|put|post|delete|patch|head|options):", line):
        n += 1
print(n)
PY
)
# A ThreadSanitizer daemon is 5-20 times slower (POST /evaluate runs the whole
# test set): its answers get ten times as long.
RT=30
[ "${SANITIZER:-}" = thread ] && RT=300
cd "$tmp"
timeout $((RT * 20)) "$OLDPWD/$ST" --config-file "$OLDPWD/tests/contract/schemathesis.toml" run "$OLDPWD/openapi.yaml" \
  --url "http://127.0.0.1:$PORT" --checks all --max-examples "$EXAMPLES" --seed 1 --workers 1 \
  --request-timeout $RT --no-color --exclude-checks use_after_free --max-response-time $RT >"$tmp/st.out" 2>&1
rc=$?
[ -n "${SCHEMATHESIS_KEEP:-}" ] && cp "$tmp/st.out" "$SCHEMATHESIS_KEEP"
cd "$OLDPWD"
tested=$(sed -n 's/^ *Tested: \([0-9]*\).*/\1/p' "$tmp/st.out")
summary=$(grep -E '^=+ .* in [0-9.]+s =+$' "$tmp/st.out" | tail -1)
echo "# $summary"
grep -E '^ *(Selected|Tested):|^ *[0-9]+ generated' "$tmp/st.out" | sed 's/^ */# /'
if [ "$rc" -eq 0 ] && [ -n "$tested" ] && [ "$tested" -eq "$ops" ] && [ "$ops" -gt 0 ]; then
  pass "schemathesis_all_operations_no_failures ($tested of $ops operations)"
else
  fail schemathesis_all_operations_no_failures "exit $rc, $tested of $ops operations tested; findings:"
  grep -E '^(- ST[0-9]+|    curl |\[[0-9]{3}\])' "$tmp/st.out" | cut -c1-300 | head -60 | sed 's/^/# /'
fi
if kill -0 "$DPID" 2>/dev/null && curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null; then
  pass schemathesis_daemon_still_serving
else
  fail schemathesis_daemon_still_serving "the daemon died or stopped answering: $(tail -5 "$tmp/daemon.log")"
fi
exit $failed
