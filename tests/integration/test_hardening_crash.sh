#!/usr/bin/env bash
# Crash safety of model files: a process saving a model with ckpt_save (the
# daemon's atomic save: temporary file, fsync, rename, fsync of the
# directory) is killed with SIGKILL at random moments, many times. After
# every kill the file under the model's name must be the old model or the
# new one, complete and loadable bit for bit; never a mix, a truncation or
# nothing. A kill in the middle of a save may leave its temporary file
# (MODEL.tmp.PID.N) behind: at most one per kill, and the daemon removes
# those of dead processes when it starts (test_hardening_crash_temp_cleanup).
# With MNISTD_DATA set, the daemon itself is then killed while a training
# job it runs saves its model (test_hardening_crash_daemon).
. "$(dirname "$0")/../contract/lib.sh"
lib_init
CS=$ROOT/$BUILD/tests/tools/crash_save
KILLS=${CRASH_KILLS:-50}
F=$WORK/model.safetensors

"$CS" init "$F" || { fail test_hardening_crash_init "crash_save init failed"; exit 1; }
bad=""; ones=0; twos=0; maxtmp=0
for i in $(seq "$KILLS"); do
  crash_kill "$CS" "$F" 60 || bad+=" kill $i: the loop saved nothing within $((60 * SLOW)) s"
  if [ -s "$WORK/loop.err" ]; then bad+=" kill $i: the loop failed: $(head -c 200 "$WORK/loop.err")"; fi
  got=$("$CS" check "$F" 2>&1)
  case $got in
    1) ones=$((ones + 1)) ;;
    2) twos=$((twos + 1)) ;;
    *) bad+=" kill $i: $got" ;;
  esac
  ntmp=$(find "$WORK" -maxdepth 1 -name 'model.safetensors.tmp.*' | wc -l)
  [ "$ntmp" -gt "$maxtmp" ] && maxtmp=$ntmp
  [ "$ntmp" -gt "$i" ] && bad+=" kill $i: $ntmp temporary files"
done
check test_hardening_crash_always_whole "after $KILLS kills:$bad" test -z "$bad"
# Both models seen: the kills landed on both sides of many saves.
check test_hardening_crash_old_and_new "old $ones new $twos" test "$ones" -gt 0 -a "$twos" -gt 0
# Temporary files left behind show kills landed in the middle of a save.
ntmp=$(find "$WORK" -maxdepth 1 -name 'model.safetensors.tmp.*' | wc -l)
check test_hardening_crash_mid_save "$ntmp of $KILLS kills interrupted a save" test "$ntmp" -ge 5
echo "crash: $KILLS kills, $ones old, $twos new, $ntmp temporary files left (at most one per kill)"

# The daemon starting on that model removes the stale temporary files
# (their processes are gone) and serves the model that is there.
start_daemon cleanup --model "$F" || { fail test_hardening_crash_temp_cleanup "daemon did not start"; exit 1; }
left=$(find "$WORK" -maxdepth 1 -name 'model.safetensors.tmp.*' | wc -l)
req GET /readyz
check test_hardening_crash_temp_cleanup "$left temporary files left after startup; readyz $status" \
  test "$left" -eq 0 -a "$status" = 200
check test_hardening_crash_cleanup_logged "the removal is not logged" \
  grep -q 'removed stale temporary' "$LOG"
# A temporary file of a live process (another writer of the same model) is not touched.
sleep 600 & live=$!
PIDS+=("$live")
touch "$F.tmp.$live.0"
stop_daemon
start_daemon cleanup2 --model "$F" || fail test_hardening_crash_live_temp_kept "daemon did not start"
check test_hardening_crash_live_temp_kept "a live writer's temporary file was removed" test -f "$F.tmp.$live.0"
stop_daemon
kill "$live"; wait "$live" 2>/dev/null

# ---- the daemon killed while its training job saves -------------------------------
if [ -z "${MNISTD_DATA:-}" ]; then
  skip test_hardening_crash_daemon "MNISTD_DATA is not set"
  [ "$FAILS" -eq 0 ]; exit
fi
# A training job ends with: evaluate on the test set, save, publish. Each run
# starts a short job, watches the model's directory and, once the save's
# temporary file appears, kills the daemon at a random moment of the next
# 70 ms. A save takes well under a millisecond on a fast disk, so fsync is
# slowed to 30 ms (an LD_PRELOAD shim, built here) to stretch the save over
# that window: the kill then lands before the rename (the temporary file is
# left, the old model stays) or after it (the new model is in place).
cat >"$WORK/slowfsync.c" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <time.h>
int fsync(int fd)
{
    static int (*real)(int);
    if (!real)
        real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    struct timespec d = {0, 30 * 1000 * 1000};
    nanosleep(&d, 0);
    return real(fd);
}
C
cc -shared -fPIC -O2 -o "$WORK/slowfsync.so" "$WORK/slowfsync.c" -ldl || {
  fail test_hardening_crash_daemon "cannot build the fsync shim"; exit 1; }
# Sanitizer builds want their runtime first; the shim does not mind.
SLOWFSYNC=$WORK/slowfsync.so ASAN_OPTIONS=${ASAN_OPTIONS:-}:verify_asan_link_order=0 ROOT=$ROOT python3 - "$MNISTD_BIN" "$F" "$MNISTD_DATA" "$ROOT/$BUILD/tests/tools/ckpt_tool" "$CS" \
  "${CRASH_DAEMON_KILLS:-6}" <<'PY'
import json, os, random, signal, subprocess, sys, time
sys.path.insert(0, os.path.join(os.environ.get("ROOT", "."), "tests", "tools"))
import hardening as H
bin_, model, data, ckpt_tool, cs, runs = sys.argv[1:7]
work = os.path.dirname(model)
base = os.path.basename(model) + ".tmp."
bad, mid, new = [], 0, 0
for run in range(int(runs)):
    subprocess.run([cs, "init", model], check=True)  # the old model: set 1
    d = H.Daemon("kill%d" % run, ["--model", model, "--data", data], work,
                 env={"LD_PRELOAD": os.environ["SLOWFSYNC"]})
    st, _, b = d.request("POST", "/train", json.dumps({"epochs": 1, "limit": 256, "validation_split": 0,
                                                      "promote": "always"}),
                         {"Content-Type": "application/json"})
    if st != 202:
        bad.append("run %d: POST /train %d %s" % (run, st, b[:200]))
        d.stop(signal.SIGKILL)
        continue
    before = set(f for f in os.listdir(work) if f.startswith(base))
    # The job trains, evaluates, then saves: its temporary file appearing is
    # the event; the deadline only bounds a failure.
    end = time.monotonic() + 60 * H.SLOW
    why = "no save seen within %d s" % (60 * H.SLOW)
    while time.monotonic() < end:
        if any(f.startswith(base) and f not in before for f in os.listdir(work)):
            time.sleep(random.uniform(0, 0.07))  # the random moment is the point
            why = "during the save"
            break
        if d.proc.poll() is not None:
            why = "the daemon exited"
            break
        time.sleep(0.002)  # polling period: the slowed save lasts over 60 ms
    if why != "during the save":
        bad.append("run %d: %s" % (run, why))
    d.stop(signal.SIGKILL)
    left = [f for f in os.listdir(work) if f.startswith(base) and f not in before]
    mid += bool(left)
    r = subprocess.run([ckpt_tool, "show", model], capture_output=True, text=True)
    if r.returncode != 0:
        bad.append("run %d: not loadable: %s" % (run, r.stderr[:200]))
    elif subprocess.run([cs, "check", model], capture_output=True).returncode != 0:
        new += 1
print("daemon kills: %s runs, %d before the rename (a temporary file left), %d after it (new model)"
      % (runs, mid, new))
H.report("test_hardening_crash_daemon", not bad, "; ".join(bad))
H.finish()
PY
[ $? -eq 0 ] || FAILS=$((FAILS + 1))
[ "$FAILS" -eq 0 ]
