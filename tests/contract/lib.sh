# tests/contract/lib.sh -- helpers for the HTTP integration tests (sourced).
#
#   lib_init                      temp dir $WORK, cleanup trap, $MNISTD_BIN, $MKPNG
#   ensure_model                  sets $MODEL: the shipped model, or a small one trained now
#   start_daemon NAME [flags...]  starts the daemon on a free port; sets $PORT, $PID,
#                                 $LOG (its stderr); waits for the startup line
#   stop_daemon                   SIGTERM, waits, checks exit status 0
#   req METHOD PATH [curl args]   one request; sets $status, $ctype, $body (a file),
#                                 $hdrs (a file); records the exchange in $MNISTD_CAPTURE
#   pass NAME / fail NAME WHY / skip NAME WHY / check NAME COND-COMMAND...
#   expect_error NAME STATUS [HEADER]  the last response is a JSON error with STATUS
#   metric NAME{labels}           the value of one series from GET /metrics
#   wait_until TIMEOUT CMD...     polls CMD (no fixed sleeps) until it succeeds
#   wait_job ID                   waits until training job ID has ended; $body is its record
#   models_init TEST              lib_init for a test of the model repository: SKIP without
#                                 MNISTD_DATA; sets $D (the data), $MODEL, $R (a path for
#                                 the repository) and writes $WORK/d0.png (test image 0)
#   crash_kill TOOL PATH MS       runs `TOOL loop PATH` (a crash tool), waits for its first
#                                 line, kills it with SIGKILL at a random moment of the next MS ms
#
# A ThreadSanitizer build runs 5-20 times slower: wait_until's timeouts and
# req's are $SLOW (10) times longer there. They bound a failure; a passing
# run never waits them out.

lib_init() {
  set -u
  ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  BUILD=${BUILD:-build}
  MNISTD_BIN=${MNISTD_BIN:-$ROOT/$BUILD/mnistd}
  MKPNG=${MKPNG:-$ROOT/$BUILD/tests/tools/mkpng}
  WORK=$(mktemp -d /tmp/mnistd-test.XXXXXX)
  PIDS=()
  FAILS=0
  REQ_N=0
  SLOW=1
  [ "${SANITIZER:-}" = thread ] && SLOW=10
  # Recorded exchanges keep their files beside the capture, past our cleanup.
  OUTDIR=$WORK
  if [ -n "${MNISTD_CAPTURE:-}" ]; then
    OUTDIR=$MNISTD_CAPTURE.d
    mkdir -p "$OUTDIR"
  fi
  trap lib_cleanup EXIT
}

lib_cleanup() {
  local p
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
  done
  rm -rf "$WORK"
}

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; FAILS=$((FAILS + 1)); }
skip() { echo "SKIP $1: $2"; }
# check NAME WHY-IF-FALSE COMMAND...: PASS when COMMAND succeeds.
check() {
  local name=$1 why=$2; shift 2
  if "$@"; then pass "$name"; else fail "$name" "$why"; fi
}

wait_until() {
  local timeout=$1; shift
  local end=$((SECONDS + timeout * ${SLOW:-1}))
  until "$@"; do
    [ "$SECONDS" -ge "$end" ] && return 1
    sleep 0.05
  done
}

wait_job() {
  wait_until 120 bash -c "curl -s http://127.0.0.1:$PORT/train/$1 | grep -qE '\"status\":\"(succeeded|failed|cancelled)\"'"
  req GET "/train/$1"
}

models_init() {
  lib_init
  need_data "$1"
  D=$MNISTD_DATA
  ensure_model || { fail "$1_model" "could not get a model"; exit 1; }
  R=$WORK/repo
  "$MKPNG" --mnist "$D" --index 0 -o "$WORK/d0.png"
}

# crash_kill TOOL PATH MS: a crash tool (tests/tools/crash_*) changes PATH in
# a loop and prints one line once its first round is complete; from then on
# every moment is inside a round, so the random kill lands where the test
# wants it however slowly the (sanitized) tool starts. The tool's stderr is
# left in $WORK/loop.err; status 1 if the line never came.
crash_kill() {
  local tool=$1 path=$2 ms=$3 fifo=$WORK/loop.fifo line rc=0 pid
  [ -p "$fifo" ] || mkfifo "$fifo"
  "$tool" loop "$path" >"$fifo" 2>"$WORK/loop.err" &
  pid=$!
  read -r -t $((60 * ${SLOW:-1})) line <"$fifo" || rc=1
  # The random moment is the point of the test, not a wait for something.
  sleep "$(printf '0.%03d' $((RANDOM % ms)))"
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  return $rc
}

need_data() {
  if [ -z "${MNISTD_DATA:-}" ]; then
    skip "$1" "MNISTD_DATA is not set (the MNIST files are needed)"
    exit 0
  fi
}

# ensure_model: the shipped model if there is one, else a small one trained
# here (1 epoch on 4000 samples: a few seconds, accuracy far above chance).
ensure_model() {
  if [ -f "$ROOT/models/mnist-cnn.safetensors" ]; then
    MODEL=$ROOT/models/mnist-cnn.safetensors
    return 0
  fi
  MODEL=$WORK/model.safetensors
  "$MNISTD_BIN" train --data "$MNISTD_DATA" --limit 4000 --epochs 1 --threads 1 --quiet \
    --out "$MODEL" >"$WORK/train.log" 2>&1 || { cat "$WORK/train.log"; return 1; }
}

# start_daemon NAME [flags...]
start_daemon() {
  local name=$1; shift
  LOG=$WORK/daemon-$name.log
  "$MNISTD_BIN" serve --port 0 --bind 127.0.0.1 "$@" 2>"$LOG" &
  PID=$!
  PIDS+=("$PID")
  if ! wait_until 20 grep -qs '"msg":"listening' "$LOG"; then
    echo "daemon $name did not start:"; cat "$LOG"
    return 1
  fi
  PORT=$(grep -o '"msg":"listening on http://[^"]*"' "$LOG" | head -1 | sed 's/.*:\([0-9]*\)"$/\1/')
  [ -n "$PORT" ]
}

stop_daemon() {
  kill -TERM "$PID"
  wait "$PID"
  local rc=$?
  local p new=()
  for p in "${PIDS[@]}"; do [ "$p" != "$PID" ] && new+=("$p"); done
  PIDS=("${new[@]:-}")
  return $rc
}

# req METHOD PATH [curl args...]
req() {
  local method=$1 path=$2; shift 2
  REQ_N=$((REQ_N + 1))
  local out=$OUTDIR/r.$BASHPID.$REQ_N w
  local mflag=(-X "$method")
  [ "$method" = HEAD ] && mflag=(--head)
  w=$(curl -sS --max-time $((30 * ${SLOW:-1})) "${mflag[@]}" -o "$out.body" -D "$out.hdr" \
      -w '%{http_code} %{content_type}' "$@" "http://127.0.0.1:$PORT$path")
  status=${w%% *}
  ctype=${w#* }
  body=$out.body
  hdrs=$out.hdr
  if [ -n "${MNISTD_CAPTURE:-}" ]; then
    printf '{"method":"%s","path":"%s","status":%s,"content_type":"%s","body":"%s","headers":"%s"}\n' \
      "$method" "$path" "${status:-0}" "$ctype" "$out.body" "$out.hdr" >>"$MNISTD_CAPTURE"
  fi
}

# expect_error NAME STATUS [header]: the last response is JSON {"error","status"} with STATUS.
expect_error() {
  local name=$1 want=$2 hdr=${3:-}
  local s e
  s=$(jget "$body" 'd["status"]'); e=$(jget "$body" 'd["error"]')
  if [ "$status" != "$want" ] || [ "$s" != "$want" ] || [ -z "$e" ] || [ "${ctype%%;*}" != application/json ]; then
    fail "$name" "status $status (want $want), body $(head -c 300 "$body")"
  elif [ -n "$hdr" ] && [ -z "$(resp_header "$hdr")" ]; then
    fail "$name" "no $hdr header"
  else
    pass "$name"
  fi
}

# The header's value in the last response ("" if absent).
resp_header() {
  grep -i "^$1:" "$hdrs" | head -1 | sed 's/^[^:]*: *//; s/\r$//'
}

# jget FILE EXPR: a value from a JSON file (python3 expression over `d`).
jget() {
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2" 2>/dev/null
}

# metric 'name{labels}': the value from /metrics ("" if absent).
metric() {
  curl -sS "http://127.0.0.1:$PORT/metrics" | awk -v k="$1" '$1 == k { print $2 }'
}

# threads [PID]: one line per thread of the daemon (default $PID): its name,
# nice value and CPU time in clock ticks (user + system), from /proc.
threads() {
  local t
  for t in /proc/"${1:-$PID}"/task/*; do
    printf '%s %s\n' "$(cat "$t/comm")" "$(awk '{ print $19, $14 + $15 }' "$t/stat")"
  done
}
