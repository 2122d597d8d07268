#!/usr/bin/env bash
# tests/fresh/run.sh -- the README's two commands on a fresh Debian 12 machine.
#
# Builds a minimal Debian 12 (bookworm) root with debootstrap, adds only git
# and make with apt-get, puts a clean clone of the current commit at
# /src/mnistd and ../shared (the MNIST data) read-only beside it at
# /src/shared, and runs in it with chroot, as root:
#   1. bash scripts/deps.sh build && make run   in the background; waits for
#      GET /readyz, classifies one PNG with POST /predict, stops the daemon;
#   2. bash scripts/deps.sh test && make test   which must end
#      "N passed, 0 failed, N skipped".
# Node.js in the root is Debian's (18.20), not the one of this machine.
#
#   make test-fresh        (root; about an hour on 2 cores, ~1 GB of packages the first time)
#
# Kept between runs in build/fresh/: the debootstrap tarball, apt's downloaded
# packages and npm's cache (delete build/fresh/ to download everything again).
# The root itself is new on every run, at $FRESH_ROOT (outside build/, which
# make searches for dependency files); it is removed after a successful run
# and kept for inspection after a failed one. Logs go to build/fresh/logs/.
#
# Differences from a machine of its own, all forced by sharing this one:
#   - the daemon of step 1 listens on a free port (MNISTD_PORT=0), not 8080;
#   - the root gets this machine's /etc/resolv.conf and the CA certificates
#     added here (/usr/local/share/ca-certificates), which ca-certificates
#     trusts once git has pulled it in, so that a network that inspects TLS
#     works in the root as it does here.
# Everything runs in private mount and PID namespaces: the mounts (proc, sys,
# dev, a fresh /dev/shm for Chromium, the caches, ../shared) are unmounted on
# the way out, failure and Ctrl-C included, and no process of the root
# outlives the run.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=$ROOT/build/fresh
LOGS=$CACHE/logs
SUITE=bookworm
ARCH=$(dpkg --print-architecture)
FRESH_ROOT=${FRESH_ROOT:-/var/tmp/mnistd-fresh-root}
CHROOT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

say() { echo "fresh: $*"; }
die() { echo "FAIL fresh: $*"; exit 1; }

# ------------------------------------------------------------------ inside
# The part that runs in the private namespaces (see the end of the script).
in_root() {  # in_root [VAR=value...] COMMAND...: COMMAND in the root, with a login's environment
  chroot "$FRESH_ROOT" /usr/bin/env -i PATH=$CHROOT_PATH HOME=/root USER=root LOGNAME=root \
    SHELL=/bin/bash TERM=dumb "$@"
}

mounted=()
unmount_all() {  # the EXIT trap of inside: a mount left behind is a failure
  local i left
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
    umount -R "${mounted[i]}" 2>/dev/null || umount -R -l "${mounted[i]}" || true
  done
  mounted=()
  if left=$(findmnt -rn -o TARGET | grep "^$FRESH_ROOT\(/\|$\)"); then
    echo "FAIL fresh_unmounted: still mounted: $left"
    exit 1
  fi
}
mnt() {  # mnt TARGET MOUNT-ARGS...
  local target=$FRESH_ROOT$1; shift
  mkdir -p "$target"
  mount "$@" "$target"
  mounted+=("$target")
}

# interruptible COMMAND...: runs COMMAND and waits for it in a way a signal interrupts.
# This bash is the first process of its PID namespace: it gets INT and TERM
# only because it traps them, and leaving ends every process of the namespace.
interruptible() { "$@" & wait $!; }

inside() {
  trap unmount_all EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  mnt /proc -t proc proc
  mnt /sys --rbind /sys
  mount --make-rslave "$FRESH_ROOT/sys"
  mnt /dev --rbind /dev
  mount --make-rslave "$FRESH_ROOT/dev"
  mnt /dev/shm -t tmpfs -o mode=1777,size=1g shm
  mnt /var/cache/apt/archives --bind "$CACHE/apt-archives"
  mnt /root/.npm --bind "$CACHE/npm-cache"
  mnt /src/shared --bind "$SHARED"
  mount -o remount,bind,ro "$FRESH_ROOT/src/shared"

  say "adding git and make (apt-get)"
  interruptible in_root bash -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq git make' \
    >"$LOGS/0-git-make.log" 2>&1 || die "apt-get install git make: $(tail -n 3 "$LOGS/0-git-make.log")"

  # 1. bash scripts/deps.sh build && make run, in a session of its own so that
  #    stopping it reaches make and the daemon.
  say "bash scripts/deps.sh build && make run   (log: $LOGS/1-run.log)"
  local log=$LOGS/1-run.log url='' pid answer code
  : >"$log"
  setsid bash -c 'in_root MNISTD_PORT=0 bash -c "cd /src/mnistd && bash scripts/deps.sh build && make run"' \
    >"$log" 2>&1 &
  pid=$!
  local end=$((SECONDS + 3600))
  until url=$(grep -o -m 1 'listening on http://[0-9.:]*' "$log" | sed 's/^listening on //') && [ -n "$url" ]; do
    kill -0 "$pid" 2>/dev/null || die "make run stopped before the daemon listened: $(tail -n 5 "$log")"
    [ "$SECONDS" -lt "$end" ] || die "make run did not listen within an hour: $(tail -n 5 "$log")"
    sleep 1
  done
  code=
  for _ in $(seq 300); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url/readyz" || true)
    [ "$code" = 200 ] && break
    sleep 0.1
  done
  [ "$code" = 200 ] && echo "PASS fresh_make_run_ready ($url/readyz 200)" \
    || die "GET /readyz answered '$code': $(tail -n 5 "$log")"
  answer=$(curl -s --max-time 10 --data-binary @"$FRESH_ROOT/src/mnistd/tests/fixtures/png/one-28x28.png" \
    "$url/predict")
  if [[ $answer == *'"digit":1,'* ]]; then
    echo "PASS fresh_make_run_predict: ${answer:0:60}..."
  else
    kill -TERM -- "-$pid" 2>/dev/null
    die "POST /predict of a 1 answered: ${answer:0:300}"
  fi
  kill -TERM -- "-$pid"
  wait "$pid" || true
  for _ in $(seq 100); do
    kill -0 -- "-$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 -- "-$pid" 2>/dev/null && die "make run's processes are still there 10 s after SIGTERM"
  echo "PASS fresh_make_run_stopped"

  # 2. bash scripts/deps.sh test && make test
  say "bash scripts/deps.sh test && make test   (log: $LOGS/2-test.log)"
  interruptible bash -c 'in_root bash -c "cd /src/mnistd && bash scripts/deps.sh test && make test" 2>&1 | tee "$0"' \
    "$LOGS/2-test.log" || true
  local last
  last=$(tail -n 1 "$LOGS/2-test.log")
  say "node in the root: $(in_root node --version 2>&1), npm $(in_root npm --version 2>&1)"
  if [[ $last =~ ^[0-9]+\ passed,\ 0\ failed,\ [0-9]+\ skipped$ ]]; then
    echo "PASS fresh_make_test: $last"
  else
    die "make test ended: $last"
  fi
}

# ----------------------------------------------------------------- outside
# Never delete through a mount point (a mount left by a killed run would
# lead rm into /dev or ../shared).
remove_root() {
  if findmnt -rn -o TARGET | grep -q "^$FRESH_ROOT\(/\|$\)"; then
    die "something is mounted under $FRESH_ROOT; unmount it first"
  fi
  rm -rf --one-file-system "$FRESH_ROOT"
}

# All of it in a function, so that bash has read the whole script before it
# starts: an edit of this file during a run does not change the run.
main() {
  if [ "${1:-}" = --inside ]; then
    SHARED=$2
    export -f in_root
    export FRESH_ROOT CHROOT_PATH
    inside
    exit 0
  fi

  [ "$(id -u)" -eq 0 ] || { echo "tests/fresh/run.sh: run as root (debootstrap, chroot, mounts)" >&2; exit 2; }
  mkdir -p "$CACHE/apt-archives/partial" "$CACHE/npm-cache" "$LOGS"
  exec 9>"$CACHE/lock"
  flock -n 9 || die "another run holds $CACHE/lock"
  SHARED=$(cd "$ROOT/.." && pwd)/shared
  [ -d "$SHARED/data/mnist" ] || die "no $SHARED/data/mnist: the tests need the MNIST data in ../shared"
  command -v debootstrap >/dev/null || MNISTD_EXTRA_PKGS=debootstrap bash "$ROOT/scripts/deps.sh" build
  commit=$(git -C "$ROOT" rev-parse HEAD)
  [ -z "$(git -C "$ROOT" status --porcelain --untracked-files=no)" ] ||
    say "uncommitted changes are not part of the run: it uses commit $commit"

  remove_root

  tarball=$CACHE/$SUITE-minbase-$ARCH.tgz
  if [ ! -f "$tarball" ]; then
    say "downloading Debian $SUITE (minbase) into $tarball"
    debootstrap --variant=minbase --arch="$ARCH" --make-tarball="$tarball.tmp" "$SUITE" "$FRESH_ROOT.dl" \
      >"$LOGS/debootstrap.log" 2>&1 || die "debootstrap --make-tarball: $(tail -n 3 "$LOGS/debootstrap.log")"
    mv "$tarball.tmp" "$tarball"
    rm -rf --one-file-system "$FRESH_ROOT.dl"
  fi
  say "debootstrap $SUITE into $FRESH_ROOT"
  debootstrap --variant=minbase --arch="$ARCH" --unpack-tarball="$tarball" "$SUITE" "$FRESH_ROOT" \
    >"$LOGS/debootstrap.log" 2>&1 || die "debootstrap: $(tail -n 3 "$LOGS/debootstrap.log")"

  # The sources the Debian installer writes: the release, its updates and
  # security (Debian's chromium comes from the last).
  mirror=$(awk '$1 == "deb" { print $2; exit }' "$FRESH_ROOT/etc/apt/sources.list")
  printf 'deb %s %s main\ndeb %s %s-updates main\ndeb %s-security %s-security main\n' \
    "$mirror" "$SUITE" "$mirror" "$SUITE" "$mirror" "$SUITE" >"$FRESH_ROOT/etc/apt/sources.list"
  cp /etc/resolv.conf "$FRESH_ROOT/etc/resolv.conf"
  if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
    mkdir -p "$FRESH_ROOT/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$FRESH_ROOT/usr/local/share/ca-certificates/"
  fi

  mkdir -p "$FRESH_ROOT/src"
  git clone -q --no-hardlinks "$ROOT" "$FRESH_ROOT/src/mnistd"
  git -C "$FRESH_ROOT/src/mnistd" checkout -q --detach "$commit"
  say "clean clone of $(git -C "$ROOT" log -1 --format='%h %s' "$commit" | cut -c 1-72)"

  rc=0
  unshare --mount --pid --fork --kill-child bash "${BASH_SOURCE[0]}" --inside "$SHARED" || rc=$?
  if findmnt -rn -o TARGET | grep -q "^$FRESH_ROOT\(/\|$\)"; then
    echo "FAIL fresh_unmounted: mounts left under $FRESH_ROOT"; rc=1
  fi
  if [ "$rc" -eq 0 ]; then
    remove_root
    say "passed; the root was removed"
  else
    say "failed; the root is kept in $FRESH_ROOT, logs in $LOGS"
  fi
  return "$rc"
}
main "$@"; exit
