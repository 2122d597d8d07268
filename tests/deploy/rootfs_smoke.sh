#!/usr/bin/env bash
# The image without an engine: carries out docker/Dockerfile's build stage on
# this machine and its runtime stage in a fresh Debian 12 minbase root
# filesystem (mmdebstrap, with the files debian:bookworm-slim also leaves out),
# then runs the result the way the engine would: the image's ENV, USER and
# WORKDIR, its ENTRYPOINT + CMD, in private network, mount and PID
# namespaces, probed by the image's own HEALTHCHECK command.
#
#   bash tests/deploy/rootfs_smoke.sh [WORKDIR]      (root; downloads ~60 MB of Debian packages)
#
# Not part of `make test` (it needs the Debian mirror and a minute or two);
# docs/deployment.md shows a run. Prints PASS/FAIL lines like the tests.
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
work=${1:-$(mktemp -d)}
mkdir -p "$work"
failed=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; failed=1; }
CHECK=(node "$ROOT/tests/deploy/check.js")

[ "$(id -u)" -eq 0 ] || { echo "run as root (chroot, namespaces)" >&2; exit 2; }
command -v mmdebstrap >/dev/null || MNISTD_EXTRA_PKGS=mmdebstrap bash scripts/deps.sh build >&2
[ -d tests/deploy/node_modules ] || (cd tests/deploy && npm ci --ignore-scripts --no-audit --no-fund >&2)

# 1. The build stage, on this machine (Debian 12 like debian:bookworm).
rm -rf "$work/build"; mkdir -p "$work/build"
if "${CHECK[@]}" emulate docker/Dockerfile build "$work/build" . host --skip-run 'scripts/deps\.sh' \
     >"$work/build.json" 2>"$work/build.log"; then
  pass rootfs_build_stage
else
  fail rootfs_build_stage "$(tail -n 5 "$work/build.log" | tr '\n' ' ')"; exit 1
fi

# 2. A Debian 12 minbase root filesystem, slimmed like debian:bookworm-slim.
rm -rf "$work/root"
if mmdebstrap --variant=minbase --mode=root \
     --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
     --dpkgopt='path-exclude=/usr/share/info/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
     --dpkgopt='path-include=/usr/share/locale/locale.alias' \
     bookworm "$work/root" >"$work/mmdebstrap.log" 2>&1; then
  pass rootfs_base_bookworm
else
  fail rootfs_base_bookworm "$(tail -n 3 "$work/mmdebstrap.log" | tr '\n' ' ')"; exit 1
fi
# The apt settings the official debian images carry (debuerreotype): no .deb
# or package cache left behind by apt-get, no translations.
cat >"$work/root/etc/apt/apt.conf.d/docker-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT
echo 'Acquire::Languages "none";' >"$work/root/etc/apt/apt.conf.d/docker-no-languages"
rm -f "$work/root"/var/cache/apt/*.bin
base_kb=$(du -sk "$work/root" | cut -f1)

# 3. The runtime stage in it: apt-get install of the runtime packages,
#    useradd, the COPYs with their owners.
if "${CHECK[@]}" emulate docker/Dockerfile 1 "$work/root" . chroot build="$work/build" \
     >"$work/image.json" 2>"$work/image.log"; then
  pass rootfs_runtime_stage
else
  fail rootfs_runtime_stage "$(tail -n 5 "$work/image.log" | tr '\n' ' ')"; exit 1
fi
image_kb=$(du -sk "$work/root" | cut -f1)
echo "  root filesystem: base $((base_kb / 1024)) MB, with the runtime stage $((image_kb / 1024)) MB (+$(((image_kb - base_kb) / 1024)) MB)"

if chroot "$work/root" ldd /usr/local/bin/mnistd >"$work/ldd.out" 2>&1 && ! grep -q 'not found' "$work/ldd.out"; then
  pass rootfs_every_library_resolves
else
  fail rootfs_every_library_resolves "$(grep 'not found' "$work/ldd.out" | tr '\n' ' ')"
fi

# A trained model is saved next to the served one: the image's user must be
# able to write there (a named volume starts with these owners).
u=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["user"])' "$work/image.json")
if chroot --userspec="$u" "$work/root" /bin/sh -c \
     'd=$(dirname "$0") && touch "$d/.w" && rm "$d/.w" && test -r "$0"' \
     "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["env"]["MNISTD_MODEL"])' "$work/image.json")"; then
  pass rootfs_model_dir_writable_by_image_user
else
  fail rootfs_model_dir_writable_by_image_user "user $u cannot write next to MNISTD_MODEL"
fi

# 4. Run it as the engine would, in its own network, mount and PID namespaces.
json() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$work/image.json" "$1"; }
user=$(json 'd["user"]')
wd=$(json 'd["workdir"]')
port=$(json 'd["env"]["MNISTD_PORT"]')
cmd=$(json '" ".join(d["entrypoint"] + d["cmd"])')
hc=$(json '" ".join(d["healthcheck"][1:] if d["healthcheck"][0] == "CMD" else d["healthcheck"])')
envs=$(json '" ".join(k + "=" + v for k, v in d["env"].items())')
png=$ROOT/tests/fixtures/png/one-28x28.png
cat >"$work/inner.sh" <<EOF
set -u
ip link set lo up
mount -t proc proc "$work/root/proc"
run() { chroot --userspec=$user "$work/root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=$wd $envs /bin/sh -c "cd $wd && exec \$*"; }
# Started directly, not through run (whose subshell would get the signal):
# chroot, env and sh each exec the next, so \$! is the daemon itself.
chroot --userspec=$user "$work/root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=$wd $envs /bin/sh -c "cd $wd && exec $cmd" >"$work/daemon.log" 2>&1 &
pid=\$!
healthy=no
for _ in \$(seq 100); do
  if run $hc 2>/dev/null; then healthy=yes; break; fi
  sleep 0.1
done
echo "healthcheck=\$healthy"
echo "whoami=\$(stat -c %u "$work/root/proc/\$pid" 2>/dev/null || echo ?)"  # this PID namespace's proc
echo "predict=\$(curl -s --max-time 5 -H 'Content-Type: image/png' --data-binary @$png http://127.0.0.1:$port/predict)"
echo "model=\$(curl -s --max-time 5 http://127.0.0.1:$port/model)"
echo "readyz=\$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 http://127.0.0.1:$port/readyz)"
kill -TERM \$pid
wait \$pid
echo "exit=\$?"
umount "$work/root/proc"
EOF
unshare --net --mount --pid --fork bash "$work/inner.sh" >"$work/run.out" 2>&1
get() { sed -n "s/^$1=//p" "$work/run.out"; }
[ "$(get healthcheck)" = yes ] && pass rootfs_healthcheck_passes \
  || fail rootfs_healthcheck_passes "$(tr '\n' ' ' <"$work/daemon.log" | head -c 300)"
[ "$(get readyz)" = 200 ] && pass rootfs_ready || fail rootfs_ready "/readyz answered $(get readyz)"
get predict | grep -q '"digit":1' && pass rootfs_predicts_digit \
  || fail rootfs_predicts_digit "$(get predict | head -c 200)"
get model | grep -q '"version"' && pass rootfs_model_served || fail rootfs_model_served "$(get model | head -c 200)"
case $(get whoami) in mnistd|10001) pass rootfs_runs_non_root ;; *) fail rootfs_runs_non_root "runs as $(get whoami)" ;; esac
[ "$(get exit)" = 0 ] && pass rootfs_sigterm_exit_0 || fail rootfs_sigterm_exit_0 "exit $(get exit)"
echo "  predict: $(get predict | head -c 160)"
echo "  model version: $(get model | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])' 2>/dev/null)"
echo "  work files in $work"
exit $failed
