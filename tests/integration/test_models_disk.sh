#!/usr/bin/env bash
# A full disk loses nothing: the model repository lives on a small tmpfs
# (mounted here; SKIP when this process may not mount). With the disk
# nearly full a training job's save fails: the job fails with a clear error,
# the versions and the active record are as before, no temporary file is
# left, and the daemon keeps serving. With the disk full an activation fails
# with 500 and changes nothing; once space is freed it succeeds.
. "$(dirname "$0")/../contract/lib.sh"
models_init test_models_disk
CR=$ROOT/$BUILD/tests/tools/crash_repo
M=$WORK/small
mkdir -p "$M"
if [ "$(id -u)" != 0 ]; then
  skip test_models_disk "not root: cannot mount a small tmpfs to fill"; exit 0
fi
if ! mount -t tmpfs -o size=2m tmpfs "$M" 2>"$WORK/mount.err"; then
  skip test_models_disk "cannot mount a tmpfs here: $(cat "$WORK/mount.err")"; exit 0
fi
trap 'lib_cleanup_disk' EXIT
lib_cleanup_disk() {
  local p
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  umount "$M" 2>/dev/null
  rm -rf "$WORK"
}
R=$M/repo
# fill: leaves about $1 KiB free on the tmpfs (0: none)
fill() {
  rm -f "$M/filler"
  local free=$(df -k --output=avail "$M" | tail -1)
  local n=$((free - $1))
  [ "$n" -gt 0 ] && dd if=/dev/zero of="$M/filler" bs=1k count="$n" 2>/dev/null
  [ "$1" = 0 ] && dd if=/dev/zero of="$M/filler2" bs=1k 2>/dev/null
  true
}

start_daemon disk --model-dir "$R" --model "$MODEL" --data "$D" || { fail test_models_disk_start "did not start"; exit 1; }
req GET /model
v0=$(jget "$body" 'd["version"]')
req POST /train -H 'Content-Type: application/json' -d '{"epochs":1,"limit":1000,"promote":"never"}'
wait_job "$(jget "$body" 'd["id"]')"
v1=$(jget "$body" 'd["model_version"]')
cp "$R/active" "$WORK/active.before"
ls "$R/versions" >"$WORK/versions.before"

# nearly full: a new version (370 KB) does not fit
fill 100
req POST /train -H 'Content-Type: application/json' -d '{"epochs":1,"limit":1000,"seed":7,"promote":"always"}'
wait_job "$(jget "$body" 'd["id"]')"
echo "  job on a full disk: $(jget "$body" 'd["error"]')"
check test_models_disk_job_fails_clearly "$(jget "$body" '{k: d[k] for k in ("status","error")}')" \
  test "$(jget "$body" 'd["status"]')" = failed -a -n "$(jget "$body" 'd["error"]' | grep 'No space left on device' | grep 'could not be saved')"
check test_models_disk_nothing_lost "active or versions changed" \
  bash -c "cmp -s '$R/active' '$WORK/active.before' && ls '$R/versions' | cmp -s - '$WORK/versions.before'"
check test_models_disk_consistent "$("$CR" check "$R" 2>&1)" "$CR" check "$R"
req POST /predict -H 'Content-Type: image/png' --data-binary @"$WORK/d0.png"
check test_models_disk_serving_goes_on "status $status $(head -c 100 "$body")" \
  test "$status" = 200 -a "$(jget "$body" 'd["model_version"]')" = "$v0"

# full: the active record cannot be replaced
fill 0
req POST "/models/$v1/activate"
check test_models_disk_activate_500 "status $status $(head -c 300 "$body")" \
  test "$status" = 500 -a -n "$(jget "$body" 'd["detail"]' | grep 'No space left')"
req GET /model
check test_models_disk_activate_unchanged "served $(jget "$body" 'd["version"]'), record $(cat "$R/active")" \
  test "$(jget "$body" 'd["version"]')" = "$v0" -a -n "$(cmp -s "$R/active" "$WORK/active.before" && echo same)"
rm -f "$M/filler" "$M/filler2"
req POST "/models/$v1/activate"
check test_models_disk_activate_after_space "status $status" test "$status" = 200
stop_daemon
[ "$FAILS" -eq 0 ]
