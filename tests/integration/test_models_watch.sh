#!/usr/bin/env bash
# Replicas follow the repository: daemon A owns a model repository, daemon
# B serves the same directory with --watch-s. While a client predicts on B
# in a loop, A activates another version (and then rolls back): B serves
# each within --watch-s (plus a second of slack for a loaded machine), no
# request fails, and every answer names one of the two versions.
. "$(dirname "$0")/../contract/lib.sh"
models_init test_models_watch
S=2

start_daemon owner --model-dir "$R" --model "$MODEL" --data "$D" || { fail test_models_watch_start "owner did not start"; exit 1; }
PA=$PORT; PIDA=$PID
req GET /model
v0=$(jget "$body" 'd["version"]')
req POST /train -H 'Content-Type: application/json' -d '{"epochs":1,"limit":1000,"promote":"never"}'
wait_job "$(jget "$body" 'd["id"]')"
v1=$(jget "$body" 'd["model_version"]')
check test_models_watch_second_version "job $(head -c 200 "$body")" test -n "$v1" -a "$v1" != "$v0"

start_daemon replica --model-dir "$R" --watch-s "$S" || { fail test_models_watch_replica "replica did not start"; exit 1; }
PB=$PORT; PIDB=$PID
req GET /model
check test_models_watch_replica_serves_active "replica serves $(jget "$body" 'd["version"]')" \
  test "$(jget "$body" 'd["version"]')" = "$v0"

predict_loop() { # one "STATUS VERSION" line per request until the stop file appears
  while [ ! -f "$WORK/stop" ]; do
    out=$(curl -s --max-time 10 -H 'Content-Type: image/png' --data-binary @"$WORK/d0.png" \
      -w '\n%{http_code}' "http://127.0.0.1:$PB/predict")
    code=${out##*$'\n'}
    ver=$(printf '%s' "${out%$'\n'*}" | sed -n 's/.*"model_version":"\([0-9a-f]*\)".*/\1/p')
    echo "$code $ver" >>"$WORK/loop.txt"
  done
}
predict_loop & LOOP=$!
PIDS+=("$LOOP")
wait_until 10 test -s "$WORK/loop.txt"

# follows: activation on the owner, served by the replica within S seconds
follow() { # VERSION NAME
  PORT=$PA req POST "/models/$1/activate"
  local t0=$(date +%s.%N) t1
  [ "$status" = 200 ] || { fail "$2" "activate on the owner: $status $(head -c 200 "$body")"; return; }
  if wait_until $((S + 5)) bash -c "curl -s http://127.0.0.1:$PB/model | grep -q '\"version\":\"$1\"'"; then
    t1=$(date +%s.%N)
    local secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')
    echo "  replica served $1 $secs s after its activation (--watch-s $S)"
    check "$2" "after $secs s" awk -v s="$secs" -v lim="$((S + 1))" 'BEGIN{exit !(s <= lim)}'
  else
    fail "$2" "the replica did not serve $1 within $((S + 5)) s"
  fi
}
follow "$v1" test_models_watch_follows_activation
n1=$(wc -l <"$WORK/loop.txt")
wait_until 10 bash -c "[ \$(wc -l <'$WORK/loop.txt') -gt $((n1 + 5)) ]"
follow "$v0" test_models_watch_follows_rollback
n2=$(wc -l <"$WORK/loop.txt")
wait_until 10 bash -c "[ \$(wc -l <'$WORK/loop.txt') -gt $((n2 + 5)) ]"
touch "$WORK/stop"; wait "$LOOP"

total=$(wc -l <"$WORK/loop.txt")
ok=$(grep -c '^200 ' "$WORK/loop.txt")
named=$(grep -cE "^200 ($v0|$v1)\$" "$WORK/loop.txt")
new=$(grep -c "^200 $v1\$" "$WORK/loop.txt")
echo "  predictions on the replica: $total, $ok answered 200, $named named $v0 or $v1, $new named $v1"
check test_models_watch_no_failed_request "$ok of $total answered 200: $(grep -v '^200 ' "$WORK/loop.txt" | sort | uniq -c | head -3)" \
  test "$total" -gt 10 -a "$ok" = "$total"
check test_models_watch_versions_named "$named of $total named $v0 or $v1" test "$named" = "$total"
check test_models_watch_new_version_answered "$new answers from $v1" test "$new" -gt 0
PORT=$PB
check test_models_watch_metric "watch activations $(metric 'mnistd_model_activations_total{reason="watch"}')" \
  test "$(metric 'mnistd_model_activations_total{reason="watch"}')" = 2
stop_daemon
PID=$PIDA; PORT=$PA
stop_daemon
[ "$FAILS" -eq 0 ]
