#!/usr/bin/env bash
# POST /train when the daemon can start no more threads: the answer is a 503
# with a JSON error and Retry-After (the server's trouble), never a 422
# "invalid field" (the request's), and the daemon keeps serving; once threads
# can be started again the same request is accepted. The thread limit is the
# kernel's per-user one (RLIMIT_NPROC), set with prlimit on the running
# daemon to the threads it already has. Root is exempt from that limit, so
# the daemon runs as an otherwise unused user id (setpriv); SKIP without
# root, setpriv or prlimit.
. "$(dirname "$0")/../contract/lib.sh"
lib_init
SPARE_UID=54331
if [ "$(id -u)" != 0 ] || ! command -v setpriv >/dev/null || ! command -v prlimit >/dev/null; then
  skip test_train_resources "needs root, setpriv and prlimit"
  exit 0
fi
chmod 755 "$WORK"
cp "$ROOT/models/mnist-cnn.safetensors" "$WORK/m.safetensors"
chmod 644 "$WORK/m.safetensors"
LOG=$WORK/daemon.log
setpriv --reuid=$SPARE_UID --regid=$SPARE_UID --clear-groups \
  "$MNISTD_BIN" serve --port 0 --bind 127.0.0.1 --model "$WORK/m.safetensors" 2>"$LOG" &
PID=$!
PIDS+=("$PID")
if ! wait_until 20 grep -qs '"msg":"listening' "$LOG"; then
  fail test_train_resources_start "daemon did not start: $(cat "$LOG")"
  exit 1
fi
PORT=$(grep -o '"msg":"listening on http://[^"]*"' "$LOG" | head -1 | sed 's/.*:\([0-9]*\)"$/\1/')

# Set as the daemon's own user (changing another user's limits needs
# CAP_SYS_RESOURCE, which a container's root may lack): the soft limit only,
# so that it can be raised again.
as_user() { setpriv --reuid=$SPARE_UID --regid=$SPARE_UID --clear-groups "$@"; }
n=$(ls /proc/$PID/task | wc -l)
soft=$(awk '/^Max processes/ {print $3}' /proc/$PID/limits)
as_user prlimit --pid "$PID" --nproc="$n:" || { fail test_train_resources_limit "prlimit failed"; exit 1; }
req POST /train -H 'Content-Type: application/json' -d '{"epochs":1}'
check test_train_503_when_no_thread "status $status: $(cat "$body")" \
  test "$status" = 503 -a "$(jget "$body" 'd["error"]')" = "cannot start a training job"
check test_train_503_detail "$(cat "$body")" grep -q 'cannot start a training thread' "$body"
check test_train_503_retry_after "no Retry-After" test -n "$(resp_header Retry-After)"
req GET /healthz
check test_train_503_still_serving "healthz $status" test "$status" = 200
req GET /train
check test_train_503_no_job_kept "$(cat "$body")" test "$(jget "$body" 'len(d["jobs"])')" = 0

as_user prlimit --pid "$PID" --nproc="$soft:"
req POST /train -H 'Content-Type: application/json' -d '{"epochs":1}'
check test_train_accepted_after_limit "status $status: $(cat "$body")" test "$status" = 202
stop_daemon
[ "$FAILS" -eq 0 ]
