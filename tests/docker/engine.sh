# tests/docker/engine.sh -- a private Docker engine for the container test
# and the container benchmark (sourced, not run).
#
#   engine_start DIR     start Debian's dockerd (docker.io) with everything of
#                        its own under DIR: --data-root, --exec-root, --pidfile
#                        and a unix socket (DOCKER_HOST points at it). No
#                        firewall rules and no default bridge: containers use
#                        the host's network or none. The user's own engine (if
#                        any) is never contacted.
#   engine_base_images   create debian:bookworm and debian:bookworm-slim (the
#                        Dockerfile's FROM images) from a debootstrap of
#                        bookworm (minbase; slim without documentation and
#                        translations, as the registry's), cached as tarballs
#   engine_stop          remove the containers, stop dockerd and the
#                        containerd it started, unmount what they left
#
# engine_why_not prints why no engine can run here (empty when one can).
# DOCKER is the client to use (Debian's /usr/bin/docker, which matches the
# engine's API version, before any other on PATH).
# The data root stays between runs (DIR/data: image layers and the build
# cache make a second run fast); `make clean` removes it.

DOCKER=/usr/bin/docker
[ -x "$DOCKER" ] || DOCKER=$(command -v docker 2>/dev/null || echo docker)
ENGINE_DIR=
ENGINE_PID=
# The debootstrap tarball: in /var/cache when writable (it survives `make
# clean` and serves every checkout), else next to the engine.
ENGINE_BASE_CACHE=${MNISTD_BASE_CACHE:-/var/cache/mnistd}

engine_why_not() {
  if [ "$(id -u)" -ne 0 ]; then echo "needs root to run dockerd"; return; fi
  if ! command -v dockerd >/dev/null 2>&1; then echo "dockerd is not installed (Debian package docker.io, scripts/deps.sh test)"; return; fi
  if ! command -v debootstrap >/dev/null 2>&1 && [ ! -f "$ENGINE_BASE_CACHE/debian-bookworm-minbase.tar" ]; then
    echo "debootstrap is not installed (scripts/deps.sh test)"; return
  fi
  echo ""
}

engine_start() {
  ENGINE_DIR=$1
  mkdir -p "$ENGINE_DIR/data" "$ENGINE_DIR/exec"
  # A dockerd left by a killed run: stop it first (its pidfile is ours).
  if [ -f "$ENGINE_DIR/dockerd.pid" ] && kill -0 "$(cat "$ENGINE_DIR/dockerd.pid")" 2>/dev/null; then
    ENGINE_PID=$(cat "$ENGINE_DIR/dockerd.pid")
    engine_stop
    ENGINE_DIR=$1
  fi
  engine_unmount "$ENGINE_DIR"
  export DOCKER_HOST=unix://$ENGINE_DIR/docker.sock
  dockerd --data-root "$ENGINE_DIR/data" --exec-root "$ENGINE_DIR/exec" \
    --pidfile "$ENGINE_DIR/dockerd.pid" -H "$DOCKER_HOST" \
    --iptables=false --ip-masq=false --bridge=none \
    >"$ENGINE_DIR/dockerd.log" 2>&1 &
  ENGINE_PID=$!
  local i
  for i in $(seq 120); do
    "$DOCKER" version >/dev/null 2>&1 && return 0
    kill -0 "$ENGINE_PID" 2>/dev/null || break
    sleep 0.5
  done
  echo "dockerd did not start: $(tail -n 3 "$ENGINE_DIR/dockerd.log" | tr '\n' ' ')" >&2
  engine_stop
  return 1
}

# engine_unmount DIR: every mount point under DIR, deepest first.
engine_unmount() {
  local m
  { findmnt -rn -o TARGET 2>/dev/null | grep -F "$1/" || true; } | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
}

engine_stop() {
  [ -n "$ENGINE_DIR" ] || return 0
  if [ -n "$ENGINE_PID" ] && kill -0 "$ENGINE_PID" 2>/dev/null; then
    local ids
    ids=$("$DOCKER" ps -aq 2>/dev/null)
    [ -n "$ids" ] && "$DOCKER" rm -f $ids >/dev/null 2>&1
    kill -TERM "$ENGINE_PID" 2>/dev/null
    local i
    for i in $(seq 60); do kill -0 "$ENGINE_PID" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$ENGINE_PID" 2>/dev/null
    wait "$ENGINE_PID" 2>/dev/null
  fi
  # The containerd that dockerd started (its pidfile is under the exec root).
  local cpid
  for f in "$ENGINE_DIR"/exec/containerd/containerd.pid; do
    [ -f "$f" ] || continue
    cpid=$(cat "$f")
    if [ -n "$cpid" ] && kill -0 "$cpid" 2>/dev/null; then
      kill -TERM "$cpid" 2>/dev/null
      for i in $(seq 20); do kill -0 "$cpid" 2>/dev/null || break; sleep 0.5; done
      kill -KILL "$cpid" 2>/dev/null
    fi
  done
  engine_unmount "$ENGINE_DIR"
  rm -f "$ENGINE_DIR/docker.sock" "$ENGINE_DIR/dockerd.pid"
  ENGINE_PID=
}

# The Debian mirror apt uses on this machine (the first deb URI), for
# debootstrap.
engine_mirror() {
  local uri
  uri=$(grep -hs -m1 -E '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -n1)
  [ -n "$uri" ] || uri=$(grep -hs -E '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}' | grep -v security | head -n1)
  echo "$uri"
}

# engine_slimify ROOT: what makes debian:bookworm-slim slimmer than
# debian:bookworm (debuerreotype's slimify): dpkg leaves out documentation
# (copyright files aside), manual pages, info pages and translations, now and
# for every later install; apt keeps no package cache or translations.
engine_slimify() {
  mkdir -p "$1/etc/dpkg/dpkg.cfg.d" "$1/etc/apt/apt.conf.d"
  cat >"$1/etc/dpkg/dpkg.cfg.d/docker-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
CFG
  cat >"$1/etc/apt/apt.conf.d/docker-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT
  echo 'Acquire::Languages "none";' >"$1/etc/apt/apt.conf.d/docker-no-languages"
  find "$1/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete 2>/dev/null
  find "$1/usr/share/locale" -mindepth 1 ! -type d ! -name locale.alias -delete 2>/dev/null
  rm -rf "$1"/usr/share/man/* "$1"/usr/share/groff/* "$1"/usr/share/info/* \
         "$1"/usr/share/lintian/* "$1"/usr/share/linda/* "$1"/var/cache/apt/*.bin
}

# The label that marks base images made by this script, and their recipe.
ENGINE_BASE_LABEL=org.mnistd.test-base=bookworm-minbase-2

engine_base_images() {
  local label=${ENGINE_BASE_LABEL#*=} have
  have=$("$DOCKER" image inspect -f '{{index .Config.Labels "org.mnistd.test-base"}}' debian:bookworm-slim 2>/dev/null) || have=
  [ "$have" = "$label" ] && "$DOCKER" image inspect debian:bookworm >/dev/null 2>&1 && return 0
  local cache=$ENGINE_BASE_CACHE
  mkdir -p "$cache" 2>/dev/null && [ -w "$cache" ] || cache=$ENGINE_DIR
  local full=$cache/debian-bookworm-minbase.tar slim=$cache/debian-bookworm-slim.tar root
  if [ ! -s "$full" ]; then
    local mirror
    mirror=$(engine_mirror)
    [ -n "$mirror" ] || { echo "no Debian mirror in /etc/apt/sources.list*" >&2; return 1; }
    root=$(mktemp -d "$cache/rootfs.XXXXXX")
    echo "debootstrap bookworm (minbase) from $mirror: a few minutes, once" >&2
    if ! debootstrap --variant=minbase bookworm "$root" "$mirror" >"$cache/debootstrap.log" 2>&1; then
      echo "debootstrap failed: $(tail -n 3 "$cache/debootstrap.log" | tr '\n' ' ')" >&2
      rm -rf "$root"
      return 1
    fi
    # As the registry's images: no package lists or downloaded packages.
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb
    tar -C "$root" --numeric-owner -cf "$full.tmp" . && mv "$full.tmp" "$full"
    rm -rf "$root"
  fi
  if [ ! -s "$slim" ]; then
    root=$(mktemp -d "$cache/rootfs.XXXXXX")
    tar -C "$root" --numeric-owner -xf "$full" && engine_slimify "$root" &&
      tar -C "$root" --numeric-owner -cf "$slim.tmp" . && mv "$slim.tmp" "$slim"
    rm -rf "$root"
    [ -s "$slim" ] || { echo "could not make the slim root file system" >&2; return 1; }
  fi
  "$DOCKER" import -c "LABEL $ENGINE_BASE_LABEL" "$full" debian:bookworm >/dev/null &&
    "$DOCKER" import -c "LABEL $ENGINE_BASE_LABEL" "$slim" debian:bookworm-slim >/dev/null
}

# engine_build_image IMAGE LOG: docker/Dockerfile built as the README says,
# with the classic builder and the host's network for apt. The build stage
# is tagged too, so that pruning the untagged leftovers keeps its cache.
engine_build_image() {
  DOCKER_BUILDKIT=0 "$DOCKER" build --network host --target build -t mnistd-build-stage:cache \
    -f docker/Dockerfile . >"$2" 2>&1 &&
    DOCKER_BUILDKIT=0 "$DOCKER" build --network host -f docker/Dockerfile -t "$1" . >>"$2" 2>&1 &&
    { "$DOCKER" image prune -f >/dev/null 2>&1; true; }
}
