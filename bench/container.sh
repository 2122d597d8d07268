#!/usr/bin/env bash
# POST /predict requests/s of the container image against the native build
# ($BUILD/mnistd) in the same run: CONTAINER_REPS rounds (default 5), each
# running wrk at 64 connections for DUR seconds against both, the order
# swapped every round; prints each round, the medians and their ratio.
#
# The engine is the private one of the container test (tests/docker/
# engine.sh: Debian's dockerd with its data root under build/docker); the
# image is built when missing or out of date. The container uses the host's
# network (that engine has no bridge), so the figures compare the daemons,
# not Docker's port forwarding. Both daemons get the image's settings
# (MNISTD_THREADS=2 and the defaults), each runs alone while measured, and
# neither is limited in CPU. Needs root; prints why and exits 0 otherwise.
#
# CPU weight: the engine puts the container in a cgroup (docker/<id>, 1024
# shares), and wrk shares the machine's cores with the daemon it measures. In
# the root group every thread weighs 1024, so a daemon started from a shell
# would get more of the cores against wrk than the container's one group.
# The fair comparison gives each its own group of the same weight: wrk runs
# in mnistd-bench-wrk, the native daemon in mnistd-bench-native, beside
# docker/ ("native"); the native daemon in the root group ("native-root") is
# shown as well. The CPU time each daemon spends per request (from
# /proc/PID/stat, whatever the scheduler gives it) is printed beside req/s:
# it compares the work, not the share of the cores.
#   bench/container.sh [seconds per run, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD:-build}
BIN=${MNISTD_BIN:-$ROOT/$BUILD/mnistd}
DUR=${1:-10}
REPS=${CONTAINER_REPS:-5}
IMAGE=mnistd:$(cat VERSION)
. tests/docker/engine.sh
. bench/lib.sh
why=$(engine_why_not)
if [ -n "$why" ]; then echo "bench/container.sh: no container figures: $why"; exit 0; fi
command -v wrk >/dev/null || { echo "bench/container.sh: wrk is not installed (scripts/deps.sh bench)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/mnistd-bench-container.XXXXXX)
NPID=
RPID=
CG=
CGW=
cleanup() {
  set +e  # the stops below may find their process gone: not a failure of the run
  [ -n "$NPID" ] && kill "$NPID" 2>/dev/null
  [ -n "$RPID" ] && kill "$RPID" 2>/dev/null
  if [ -n "$CG" ]; then
    wait "$NPID" 2>/dev/null
    rmdir "$CG" 2>/dev/null
  fi
  [ -n "$CGW" ] && rmdir "$CGW" 2>/dev/null
  engine_stop
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

engine_start "$ROOT/build/docker"
engine_base_images
echo "bench/container.sh: building $IMAGE (cached layers when nothing changed) ..."
engine_build_image "$IMAGE" "$WORK/build.log" || { tail -n 20 "$WORK/build.log"; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
ready() { curl -sf "http://127.0.0.1:$1/readyz" >/dev/null; }
wait_ready() { for _ in $(seq 300); do ready "$1" && return 0; sleep 0.1; done; return 1; }

# The image's settings, for both.
cport=$(free_port)
"$DOCKER" rm -f mnistd-bench >/dev/null 2>&1 || true
"$DOCKER" run -d --name mnistd-bench --network host --read-only --tmpfs /tmp \
  -e MNISTD_BIND=127.0.0.1 -e MNISTD_PORT="$cport" -e MNISTD_LOG_FORMAT=text "$IMAGE" >/dev/null
native() {
  MNISTD_THREADS=2 MNISTD_LOG_FORMAT=text "$BIN" serve --port "$1" \
    --model models/mnist-cnn.safetensors 2>"$WORK/native-$1.log" &
}
nport=$(free_port)
native "$nport"
NPID=$!
rport=$(free_port)
native "$rport"
RPID=$!
# The native daemon's cgroup: beside the engine's docker/ group, same weight
# (cgroup v1 cpu controller, as this engine uses).
cgcpu=/sys/fs/cgroup/cpu
cgnote="in the root cgroup (no cgroup v1 cpu controller here)"
if [ -d "$cgcpu/docker" ] && mkdir -p "$cgcpu/mnistd-bench-native" 2>/dev/null; then
  CG=$cgcpu/mnistd-bench-native
  cat "$cgcpu/docker/cpu.shares" >"$CG/cpu.shares"
  echo "$NPID" >"$CG/cgroup.procs"
  cgnote="in cgroup mnistd-bench-native, cpu.shares $(cat "$CG/cpu.shares") as docker/"
  mkdir -p "$cgcpu/mnistd-bench-wrk" && CGW=$cgcpu/mnistd-bench-wrk
  cat "$cgcpu/docker/cpu.shares" >"$CGW/cpu.shares"
fi
wait_ready "$cport" || { "$DOCKER" logs mnistd-bench | tail -n 5; exit 1; }
wait_ready "$nport" || { tail -n 5 "$WORK/native-$nport.log"; exit 1; }
wait_ready "$rport" || { tail -n 5 "$WORK/native-$rport.log"; exit 1; }
ck=$(curl -sf "http://127.0.0.1:$cport/model" | python3 -c 'import json,sys; print(json.load(sys.stdin)["kernels"]["in_use"])')
nk=$(curl -sf "http://127.0.0.1:$nport/model" | python3 -c 'import json,sys; print(json.load(sys.stdin)["kernels"]["in_use"])')
echo "container: kernels $ck, $("$DOCKER" exec mnistd-bench sh -c 'echo threads $MNISTD_THREADS'), $("$DOCKER" inspect -f 'NanoCpus {{.HostConfig.NanoCpus}} CpuShares {{.HostConfig.CpuShares}} CpusetCpus "{{.HostConfig.CpusetCpus}}"' mnistd-bench)"
echo "native:    kernels $nk, threads 2, $BIN, $cgnote"
echo "native-root: the same, in the root cgroup"

python3 - "$WORK/d.png" <<'PY'
import sys
sys.path.insert(0, "tests/tools")
import hardening as H
open(sys.argv[1], "wb").write(H.png_digit())
PY
bench_predict_lua "$WORK/d.png" "$WORK/predict.lua"
CPID=$("$DOCKER" inspect -f '{{.State.Pid}}' mnistd-bench)
TCK=$(getconf CLK_TCK)
# wrk in its own group when there is one (see the header).
wrk_run() {
  if [ -n "$CGW" ]; then sh -c 'echo $$ >"$0/cgroup.procs" && exec wrk "$@"' "$CGW" "$@"; else wrk "$@"; fi
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# one SIDE PORT PID: a warm-up second, then DUR seconds at 64 connections.
one() {
  wrk_run -t2 -c64 -d1s -s "$WORK/predict.lua" "http://127.0.0.1:$2/predict" >/dev/null 2>&1
  local t0 t1
  t0=$(cpu_ticks "$3")
  wrk_run -t2 -c64 -d"${DUR}s" -s "$WORK/predict.lua" "http://127.0.0.1:$2/predict" >"$WORK/wrk.txt" 2>&1
  t1=$(cpu_ticks "$3")
  local rps errs n us
  rps=$(awk '/^Requests\/sec/ { print $2 }' "$WORK/wrk.txt")
  n=$(awk '/requests in/ { print $1 }' "$WORK/wrk.txt")
  us=$(awk -v d=$((t1 - t0)) -v n="$n" -v t="$TCK" 'BEGIN { printf "%.1f", (n > 0 ? d * 1e6 / t / n : 0) }')
  errs=$(awk '/Non-2xx/ { n += $NF } /Socket errors/ { n += 1 } END { print n + 0 }' "$WORK/wrk.txt")
  echo "$1 $rps $us" >>"$WORK/samples"
  printf '  round %d %-12s %10s req/s  %6s CPU-us/request  errors %s\n' "$r" "$1" "$rps" "$us" "$errs"
}
: >"$WORK/samples"
echo "$REPS round(s) of ${DUR} s at 64 connections, alternating:"
for r in $(seq "$REPS"); do
  if [ $((r % 2)) = 1 ]; then one container "$cport" "$CPID"; one native "$nport" "$NPID"; one native-root "$rport" "$RPID"
  else one native-root "$rport" "$RPID"; one native "$nport" "$NPID"; one container "$cport" "$CPID"; fi
done
median() { bench_median "$WORK/samples" "$1" "${2:-2}"; }
c=$(median container); n=$(median native); nr=$(median native-root)
cu=$(median container 3); nu=$(median native 3); ru=$(median native-root 3)
awk -v c="$c" -v n="$n" -v r="$nr" -v cu="$cu" -v nu="$nu" -v ru="$ru" 'BEGIN {
  printf "medians: container %.0f req/s, native %.0f req/s, native-root %.0f req/s\n", c, n, r
  printf "CPU per request: container %.1f us, native %.1f us, native-root %.1f us\n", cu, nu, ru
  printf "container/native %.3f (target >= 0.9); container/native-root %.3f\n", c / n, c / r
  printf "CPU per request, native/container %.3f\n", nu / cu }'
echo "bench: load now: $(cut -d' ' -f1-3 /proc/loadavg) (the machine may be shared: figures are noisy)"
