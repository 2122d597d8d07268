#!/usr/bin/env bash
# Crash safety of the model repository: a process adding versions,
# activating them and deleting old ones (tests/tools/crash_repo: the same
# repo_add, repo_activate and repo_delete the daemon uses) is killed with
# SIGKILL at random moments, many times. After every kill the repository is
# consistent: the active record reads and names a complete version holding
# exactly that content, and so does the previous one; no file under a
# version's name is incomplete. A daemon then starts on the repository,
# removes the temporary files the kills left, and serves the active version.
. "$(dirname "$0")/../contract/lib.sh"
lib_init
CR=$ROOT/$BUILD/tests/tools/crash_repo
KILLS=${CRASH_KILLS:-40}
R=$WORK/repo

"$CR" init "$R" || { fail test_models_crash_init "crash_repo init failed"; exit 1; }
bad=""; actives=""
for i in $(seq "$KILLS"); do
  crash_kill "$CR" "$R" 80 || bad+=" kill $i: the loop completed no round within $((60 * SLOW)) s"
  [ -s "$WORK/loop.err" ] && bad+=" kill $i: the loop failed: $(head -c 200 "$WORK/loop.err")"
  if got=$("$CR" check "$R" 2>&1); then
    actives+=" $(echo "$got" | awk '{print $2}')"
  else
    bad+=" kill $i: $got"
  fi
done
check test_models_crash_consistent "after $KILLS kills:$bad" test -z "$bad"
distinct=$(echo "$actives" | tr ' ' '\n' | sort -u | grep -c .)
check test_models_crash_progress "only $distinct distinct active versions over $KILLS kills" test "$distinct" -ge 3
ntmp=$(find "$R" -name '*.tmp.*' | wc -l)
echo "repository crash: $KILLS kills, $distinct distinct active versions, $ntmp temporary files left"

active=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["active"])' "$R/active")
start_daemon crash --model-dir "$R" || { fail test_models_crash_daemon "daemon did not start"; exit 1; }
req GET /model
left=$(find "$R" -name '*.tmp.*' | wc -l)
check test_models_crash_daemon_serves_active "serves $(jget "$body" 'd["version"]'), active $active; $left temporary files left" \
  test "$(jget "$body" 'd["version"]')" = "$active" -a "$left" -eq 0
stop_daemon
[ "$FAILS" -eq 0 ]
