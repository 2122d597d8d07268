#!/usr/bin/env bash
# The container and cluster files (docker/), checked without a container
# engine or a cluster, which the test machines do not have:
#   - the Dockerfile lints clean with two linters from the npm registry
#     (dockerlinter with shellcheck on every RUN, and dockerfile-utils, the
#     checker behind the VS Code Docker extension), every file it copies exists
#     and passes .dockerignore, and its runtime contract holds (portable -march,
#     non-root numeric USER, EXPOSE = MNISTD_PORT, VOLUMEs, HEALTHCHECK,
#     STOPSIGNAL, only real MNISTD_* settings);
#   - the runtime stage copies exactly the shared libraries ldd resolves for
#     the binary (glibc aside), as the build stage left them, with their
#     packages' copyright files;
#   - the HEALTHCHECK script probes a real daemon started with the image's ENV:
#     healthy, ready, not ready without a model, down, and a hung peer;
#   - compose.yaml validates against the compose-spec schema and its references
#     resolve; prometheus.yml (and the Kubernetes scrape config in
#     docs/deployment.md) pass promtool check config;
#   - the Kubernetes manifests validate against the Kubernetes OpenAPI schema,
#     strictly (no unknown field), and refer to each other consistently;
#   - each check fails on a broken copy of its input (the checks can fail).
# The npm packages are pinned by tests/deploy/package-lock.json and installed
# with `npm ci` into tests/deploy/node_modules (kept between runs); when the
# npm registry cannot be reached the npm-based checks print SKIP.
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
DEPLOY=$ROOT/tests/deploy
BUILD=${BUILD:-build}
BIN=${MNISTD_BIN:-$ROOT/$BUILD/mnistd}
# The image's build must not inherit the outer make's variables (MAKEFLAGS
# carries e.g. SANITIZER=address from `make test SANITIZER=address`).
unset MAKEFLAGS MFLAGS MAKELEVEL
# The image holds a normal build: under `make test SANITIZER=...` check that
# one, not the sanitized binary (which links libasan/libubsan).
if [ -n "${SANITIZER:-}" ]; then
  make -s -C "$ROOT" SANITIZER= build/mnistd >/dev/null || { echo "FAIL deploy_build: make build/mnistd"; exit 1; }
  BIN=$ROOT/build/mnistd
  export MNISTD_BIN=$BIN SANITIZER=
fi
failed=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; failed=1; }
skip() { echo "SKIP $1: $2"; }
tmp=$(mktemp -d)
daemon_pids=()
cleanup() {
  for p in "${daemon_pids[@]}"; do kill "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT

if [ ! -x "$BIN" ]; then
  fail deploy_binary "$BIN is not built"
  exit 1
fi
"$BIN" serve --help >"$tmp/help.txt" 2>&1
if ! grep -q MNISTD_PORT "$tmp/help.txt"; then
  fail deploy_settings "mnistd serve --help lists no settings"
  exit 1
fi

# ---------------------------------------------------------------- tools
# Debian packages for the checks, installed when missing (scripts/deps.sh
# installs only what is not there): shellcheck for the RUN lines, promtool,
# and Node.js with npm (the machine's own Node.js normally brings npm).
need=()
command -v shellcheck >/dev/null 2>&1 || need+=(shellcheck)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  MNISTD_EXTRA_PKGS="${need[*]}" bash scripts/deps.sh test >&2 ||
    echo "could not install ${need[*]}" >&2
fi

# An unsupported Node.js is a failure, with the reason.
if command -v node >/dev/null 2>&1 && ! why=$(node tests/node-engines.js tests/deploy 2>&1); then
  fail deploy_node_version "$why"
  exit 1
fi

npm_ok=0
if ! command -v npm >/dev/null 2>&1; then
  fail npm_install "npm is not installed and could not be installed"
else
  sum=$(sha256sum "$DEPLOY/package-lock.json" | cut -d' ' -f1)
  stamp=$DEPLOY/node_modules/.mnistd-lock-sha256
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ]; then
    npm_ok=1
  else
    # --ignore-scripts: no package may run code at install (dockerlinter's
    # shellcheck dependency would download a binary; Debian's is used).
    if (cd "$DEPLOY" && npm ci --ignore-scripts --no-audit --no-fund --fetch-retries=1 \
          --fetch-timeout=60000) >"$tmp/npm.log" 2>&1; then
      echo "$sum" >"$stamp"
      npm_ok=1
    elif grep -qE 'ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|network' "$tmp/npm.log"; then
      skip npm_install "the npm registry is unreachable: Dockerfile lint, compose schema and Kubernetes schema checks not run ($(grep -m1 -oE 'E[A-Z]+' "$tmp/npm.log"))"
    else
      fail npm_install "npm ci failed: $(tail -n 5 "$tmp/npm.log" | tr '\n' ' ')"
    fi
  fi
fi
CHECK=(node "$DEPLOY/check.js")

# expect_fail NAME CHECKNAME CMD...: the command must report FAIL CHECKNAME.
expect_fail() {
  local name=$1 check=$2; shift 2
  "$@" >"$tmp/mut.out" 2>&1
  if grep -q "^FAIL $check" "$tmp/mut.out"; then pass "$name"
  else fail "$name" "a broken input did not fail $check: $(tr '\n' ' ' <"$tmp/mut.out" | head -c 400)"; fi
}

# ----------------------------------------------------------- Dockerfile lint
if [ "$npm_ok" = 1 ]; then
  if ! command -v shellcheck >/dev/null; then
    fail dockerfile_lint_dockerlinter "shellcheck is not installed (scripts/deps.sh test)"
  else
    mkdir -p "$tmp/lint"
    # dockerlinter writes its shellcheck scratch files into the current
    # directory: run it in a scratch one. -e info: any finding fails.
    if (cd "$tmp/lint" && node "$DEPLOY/node_modules/dockerlinter/bin/dockerfilelinter" \
          -f "$ROOT/docker/Dockerfile" -e info) >"$tmp/lint.out" 2>&1; then
      pass dockerfile_lint_dockerlinter
    else
      fail dockerfile_lint_dockerlinter "$(tr '\n' ' ' <"$tmp/lint.out")"
    fi
    printf 'FROM debian\nRUN apt-get install curl\nRUN cd /tmp && echo $x\n' >"$tmp/lint/Bad.Dockerfile"
    if (cd "$tmp/lint" && node "$DEPLOY/node_modules/dockerlinter/bin/dockerfilelinter" \
          -f Bad.Dockerfile -e info) >"$tmp/lint.out" 2>&1; then
      fail dockerlinter_rejects_bad_dockerfile "exit 0 on a Dockerfile with known faults"
    elif grep -q ER0002 "$tmp/lint.out" && grep -q SC2086 "$tmp/lint.out"; then
      pass dockerlinter_rejects_bad_dockerfile
    else
      fail dockerlinter_rejects_bad_dockerfile "missing ER0002 or SC2086: $(tr '\n' ' ' <"$tmp/lint.out")"
    fi
  fi

  # Lint, COPY sources, runtime contract.
  "${CHECK[@]}" dockerfile docker/Dockerfile . "$tmp/help.txt" || failed=1

  sed 's|COPY docker/healthcheck.sh|COPY docker/no-such-file.sh|' docker/Dockerfile >"$tmp/Dockerfile.nofile"
  expect_fail dockerfile_check_catches_missing_copy dockerfile_copy_sources_exist \
    "${CHECK[@]}" dockerfile "$tmp/Dockerfile.nofile" . "$tmp/help.txt"
  sed 's|ARCH="-march=${MARCH}"||; s|^USER .*|USER root|' docker/Dockerfile >"$tmp/Dockerfile.native"
  expect_fail dockerfile_check_catches_native_root dockerfile_runtime_contract \
    "${CHECK[@]}" dockerfile "$tmp/Dockerfile.native" . "$tmp/help.txt"
  sed 's|MNISTD_THREADS=|MNISTD_THREDS=|; s|--interval=15s|--interval=15x|' docker/Dockerfile >"$tmp/Dockerfile.env"
  expect_fail dockerfile_check_catches_bad_setting dockerfile_lint_dockerfile_utils \
    "${CHECK[@]}" dockerfile "$tmp/Dockerfile.env" . "$tmp/help.txt"
  expect_fail dockerfile_check_catches_unknown_env dockerfile_runtime_contract \
    "${CHECK[@]}" dockerfile "$tmp/Dockerfile.env" . "$tmp/help.txt"
fi

# ------------------------------------------------- the build stage, emulated
# The build stage's COPY and RUN carried out on this machine (Debian 12, like
# debian:bookworm) in a scratch root: only what the Dockerfile copies, minus
# what .dockerignore drops, must build the binary. The package-install RUN is
# skipped: it would touch this machine, which has the build packages already.
IMAGE_BIN=
if [ "$npm_ok" = 1 ]; then
  mkdir -p "$tmp/stage-build"
  if "${CHECK[@]}" emulate docker/Dockerfile build "$tmp/stage-build" . host \
       --skip-run 'scripts/deps\.sh' >"$tmp/emu.json" 2>"$tmp/emu.log"; then
    wd=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["workdir"])' "$tmp/emu.json")
    IMAGE_BIN=$tmp/stage-build$wd/build/mnistd
    if [ -x "$IMAGE_BIN" ] && grep -q "^mnistd $(cat VERSION)" "$tmp/emu.log"; then
      pass dockerfile_build_stage_emulated
    else
      fail dockerfile_build_stage_emulated "no $IMAGE_BIN or no --version line: $(tail -n 5 "$tmp/emu.log" | tr '\n' ' ')"
      IMAGE_BIN=
    fi
  else
    fail dockerfile_build_stage_emulated "$(grep -E 'emulate:|rror' "$tmp/emu.log" | tail -n 8 | tr '\n' ' ')"
  fi
  # The image must run on any x86-64 host of its baseline: AVX (ymm) and
  # AVX-512 (zmm) instructions only in the kernel objects chosen at startup
  # by the CPU (ymm in the avx2 and avx512 ones, zmm in the avx512 one; the
  # same for the integer kernels of int8, qkernels-*.o, where avxvnni has ymm
  # and its EVEX twin, for the tests, zmm).
  if [ -n "$IMAGE_BIN" ]; then
    objdir=$(dirname "$IMAGE_BIN")/obj
    wide=()
    while IFS= read -r o; do
      case ${o#"$objdir"/} in
        model/isa/kernels-avx512.o|model/isa/qkernels-avx512.o|model/isa/qkernels-avxvnni_evex.o) continue ;;
        model/isa/kernels-avx2.o|model/isa/qkernels-avx2.o|model/isa/qkernels-avxvnni.o) re='%zmm' ;;
        *) re='%[yz]mm' ;;
      esac
      n=$(objdump -d "$o" | grep -cE "$re")
      [ "$n" -gt 0 ] && wide+=("${o#"$objdir"/}: $n")
    done < <(find "$objdir" -name '*.o' | sort)
    nobj=$(find "$objdir" -name '*.o' | wc -l)
    if [ "$nobj" -gt 10 ] && [ ${#wide[@]} -eq 0 ] && [ -f "$objdir/model/isa/kernels-avx512.o" ]; then
      pass image_binary_portable_baseline
      echo "  $nobj objects: AVX/AVX-512 registers only in the per-level kernels"
    else
      fail image_binary_portable_baseline "$nobj objects; wide registers outside the kernels: ${wide[*]}"
    fi
  fi
  # A COPY that .dockerignore empties must break the emulated build.
  mkdir -p "$tmp/ctx" "$tmp/stage-build2"
  cp -r Makefile VERSION openapi.yaml model server api web scripts models docker "$tmp/ctx/" 2>/dev/null
  { cat .dockerignore; echo 'model/*.c'; } >"$tmp/ctx/.dockerignore"
  if "${CHECK[@]}" emulate docker/Dockerfile build "$tmp/stage-build2" "$tmp/ctx" host \
       --skip-run 'scripts/deps\.sh' >/dev/null 2>&1; then
    fail dockerfile_build_emulation_catches_missing_sources "built without model/*.c"
  else pass dockerfile_build_emulation_catches_missing_sources; fi
fi

# ----------------------------------------- runtime libraries against the binary
# The build stage leaves in build/runtime/ what the runtime stage copies over
# its base: every shared library ldd resolves for the binary except glibc's,
# at its /usr/lib path, byte for byte, nothing else, and the copyright file
# of each library's Debian package.
# check_runtime_libs NAME DIR: DIR is that build/runtime/ of binary $IMAGE_BIN.
check_runtime_libs() {
  local name=$1 dir=$2 lib path want problems=() n=0 pkg real
  local -A expected=()
  while read -r lib path; do
    case $lib in libc.so.*|libm.so.*|libpthread.so.*|libdl.so.*|librt.so.*) continue ;; esac
    want=usr${path#/usr}
    expected[$want]=1
    n=$((n + 1))
    if [ ! -f "$dir/$want" ]; then problems+=("$lib missing (/$want)")
    elif ! cmp -s "$path" "$dir/$want"; then problems+=("/$want differs from $path")
    fi
    real=$(readlink -f "$path")
    for pkg in $(dpkg -S "${real##*/}" 2>/dev/null | cut -d: -f1 | sort -u); do
      [ -f "$dir/usr/share/doc/$pkg/copyright" ] || problems+=("no copyright file of $pkg")
    done
  done < <(ldd "$IMAGE_BIN" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }')
  while IFS= read -r f; do
    f=${f#"$dir"/}
    case $f in usr/share/doc/*/copyright) continue ;; esac
    [ -n "${expected[$f]:-}" ] || problems+=("/$f is not a library the binary loads")
  done < <(find "$dir" -type f)
  if [ "$n" -lt 5 ]; then problems+=("ldd resolved only $n libraries")
  fi
  if [ ${#problems[@]} -eq 0 ]; then
    pass "$name"
    echo "  $n libraries: $(cd "$dir" && find usr/lib -type f -printf '%f ' | sed 's/ $//')"
    echo "  $(du -sk "$dir" | cut -f1) kB in all"
  else
    local msg
    msg=$(printf '%s; ' "${problems[@]}")
    fail "$name" "${msg%; }"
  fi
}
if ! grep -qE '^COPY --from=build /src/build/runtime/ /runtime/$' docker/Dockerfile ||
   [ "$(sed -n '/^FROM debian:bookworm-slim$/,$p' docker/Dockerfile | grep -c '^COPY --from=libs /runtime/ /$')" != 1 ]; then
  fail runtime_stage_copies_libraries "the runtime stage does not copy build/runtime/ of the build stage (through the libs stage)"
elif [ -z "$IMAGE_BIN" ]; then
  skip runtime_libraries_match_ldd "needs the emulated build stage (npm packages)"
else
  pass runtime_stage_copies_libraries
  rt=$(dirname "$IMAGE_BIN")/runtime
  check_runtime_libs runtime_libraries_match_ldd "$rt"
  # The check fails on a copy that lacks a library or holds an extra one.
  cp -a "$rt" "$tmp/rt-missing"
  rm -f "$tmp"/rt-missing/usr/lib/*/libpng16.so.16
  (check_runtime_libs runtime_libraries_mut_missing "$tmp/rt-missing") >"$tmp/mut.out"
  if grep -q '^FAIL .*libpng16' "$tmp/mut.out"; then pass runtime_libraries_check_catches_missing
  else fail runtime_libraries_check_catches_missing "$(tr '\n' ' ' <"$tmp/mut.out")"; fi
  cp -a "$rt" "$tmp/rt-extra"
  cp "$(readlink -f "$(command -v bash)")" "$tmp/rt-extra/usr/lib/libextra.so.1"
  (check_runtime_libs runtime_libraries_mut_extra "$tmp/rt-extra") >"$tmp/mut.out"
  if grep -q '^FAIL .*libextra' "$tmp/mut.out"; then pass runtime_libraries_check_catches_extra
  else fail runtime_libraries_check_catches_extra "$(tr '\n' ' ' <"$tmp/mut.out")"; fi
fi

# ------------------------------------------------ HEALTHCHECK against a daemon
# The image's ENV, with the paths and the port of this machine: the daemon's
# own parser checks every value the image sets.
image_env=()
while read -r kv; do image_env+=("$kv"); done < <(
  sed -n '/^FROM debian:bookworm-slim/,$p' docker/Dockerfile |
    sed -n '/^ENV /,/^[A-Z]/p' | grep -oE 'MNISTD_[A-Z_]+=[^ \\]*')
# start_daemon LOG ENV...: starts mnistd on a free loopback port; sets $port.
start_daemon() {
  local log=$1; shift
  : >"$log"
  env "${image_env[@]}" "$@" MNISTD_BIND=127.0.0.1 MNISTD_PORT=0 "$BIN" serve >"$log" 2>&1 &
  daemon_pids+=($!)
  last_pid=$!
  port=
  for _ in $(seq 100); do
    port=$(grep -m1 -oE '"port":[0-9]+' "$log" | head -n1 | cut -d: -f2)
    [ -n "$port" ] && return 0
    kill -0 "$last_pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
HC=docker/healthcheck.sh
if [ ${#image_env[@]} -lt 3 ]; then
  fail healthcheck_image_env "could not read the ENV of the runtime stage"
elif ! start_daemon "$tmp/d1.log" MNISTD_MODEL="$ROOT/models/mnist-cnn.safetensors" MNISTD_MODEL_DIR="$tmp/repo1" MNISTD_DATA=; then
  fail healthcheck_daemon_start "mnistd did not start with the image's ENV: $(tail -n 3 "$tmp/d1.log")"
else
  pid1=$last_pid
  # As in the image: MNISTD_BIND=0.0.0.0, which the probe reaches on loopback.
  if MNISTD_BIND=0.0.0.0 MNISTD_PORT=$port bash $HC /healthz 2>"$tmp/hc.err"; then pass healthcheck_healthy
  else fail healthcheck_healthy "exit $? on a live daemon: $(cat "$tmp/hc.err")"; fi
  if MNISTD_BIND=0.0.0.0 MNISTD_PORT=$port bash $HC /readyz 2>"$tmp/hc.err"; then pass healthcheck_ready_with_model
  else fail healthcheck_ready_with_model "exit $?: $(cat "$tmp/hc.err")"; fi
  if MNISTD_BIND=0.0.0.0 MNISTD_PORT=$port bash $HC /no-such-path 2>"$tmp/hc.err"; then
    fail healthcheck_non_200 "exit 0 on a 404"
  elif grep -q 404 "$tmp/hc.err"; then pass healthcheck_non_200
  else fail healthcheck_non_200 "$(cat "$tmp/hc.err")"; fi
  # STOPSIGNAL SIGTERM: the daemon exits 0 on it, and the probe then fails.
  kill -TERM "$pid1"
  wait "$pid1"; rc=$?
  if [ $rc -eq 0 ]; then pass daemon_exits_0_on_stopsignal
  else fail daemon_exits_0_on_stopsignal "exit status $rc after SIGTERM"; fi
  if MNISTD_PORT=$port timeout 10 bash $HC /healthz 2>/dev/null; then fail healthcheck_down "exit 0 with no daemon"
  elif [ $? -eq 124 ]; then fail healthcheck_down "hung with no daemon"
  else pass healthcheck_down; fi
fi
# No model and no data: alive (/healthz) but not ready (/readyz), the state in
# which Kubernetes keeps a pod out of the Service without restarting it.
if start_daemon "$tmp/d2.log" MNISTD_MODEL="$tmp/no-model.safetensors" MNISTD_MODEL_DIR="$tmp/repo2" MNISTD_DATA=; then
  if MNISTD_PORT=$port bash $HC /healthz 2>/dev/null && ! MNISTD_PORT=$port bash $HC /readyz 2>/dev/null; then
    pass healthcheck_alive_not_ready_without_model
  else
    fail healthcheck_alive_not_ready_without_model "/healthz and /readyz did not answer 200 and non-200"
  fi
  kill -TERM "$last_pid"; wait "$last_pid" 2>/dev/null
else
  fail healthcheck_alive_not_ready_without_model "mnistd without a model did not start: $(tail -n 3 "$tmp/d2.log")"
fi
# A peer that accepts the connection and never answers: the probe gives up.
if command -v python3 >/dev/null; then
  python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(4)
print(s.getsockname()[1], flush=True)
conns = []
end = time.time() + 20
while time.time() < end:
    s.settimeout(max(0.1, end - time.time()))
    try:
        conns.append(s.accept()[0])
    except OSError:
        break
' >"$tmp/hung.port" &
  hung_pid=$!
  daemon_pids+=($hung_pid)
  for _ in $(seq 50); do [ -s "$tmp/hung.port" ] && break; sleep 0.1; done
  MNISTD_PORT=$(cat "$tmp/hung.port") MNISTD_HEALTHCHECK_TIMEOUT=1 timeout 10 bash $HC /healthz 2>"$tmp/hc.err"
  rc=$?
  if [ $rc -eq 1 ] && grep -q 'no answer' "$tmp/hc.err"; then pass healthcheck_hung_peer
  else fail healthcheck_hung_peer "exit $rc (124 = hung): $(cat "$tmp/hc.err")"; fi
  kill "$hung_pid" 2>/dev/null
fi

# HTTPS (MNISTD_TLS_CERT set, here with mutual TLS too): the script hands
# the probe to `mnistd healthcheck`, which speaks TLS; reading endpoints need
# no client certificate. A plain probe of the TLS port fails.
if bash tests/tools/mkcerts.sh "$tmp/pki" >"$tmp/pki.log" 2>&1 &&
   start_daemon "$tmp/d3.log" MNISTD_MODEL="$ROOT/models/mnist-cnn.safetensors" MNISTD_MODEL_DIR="$tmp/repo3" \
     MNISTD_DATA= MNISTD_TLS_CERT="$tmp/pki/server.pem" MNISTD_TLS_KEY="$tmp/pki/server.key" \
     MNISTD_TLS_CLIENT_CA="$tmp/pki/ca.pem"; then
  tlsenv=(MNISTD_BIN="$BIN" MNISTD_BIND=0.0.0.0 MNISTD_PORT="$port" MNISTD_TLS_CERT="$tmp/pki/server.pem")
  if env "${tlsenv[@]}" bash $HC /healthz 2>"$tmp/hc.err" && env "${tlsenv[@]}" bash $HC /readyz 2>>"$tmp/hc.err"
  then pass healthcheck_https_healthy_ready
  else fail healthcheck_https_healthy_ready "exit $?: $(cat "$tmp/hc.err")"; fi
  if env "${tlsenv[@]}" bash $HC /no-such-path 2>"$tmp/hc.err"; then fail healthcheck_https_non_200 "exit 0 on a 404"
  elif grep -q 404 "$tmp/hc.err"; then pass healthcheck_https_non_200
  else fail healthcheck_https_non_200 "$(cat "$tmp/hc.err")"; fi
  if MNISTD_PORT=$port MNISTD_HEALTHCHECK_TIMEOUT=1 timeout 10 bash $HC /healthz 2>/dev/null; then
    fail healthcheck_plain_probe_of_https_fails "exit 0"
  else pass healthcheck_plain_probe_of_https_fails; fi
  kill -TERM "$last_pid"; wait "$last_pid" 2>/dev/null
else
  fail healthcheck_https_healthy_ready "mnistd with TLS did not start: $(tail -n 3 "$tmp/d3.log" "$tmp/pki.log")"
fi

# ------------------------------------------------------ compose + Prometheus
if command -v promtool >/dev/null; then
  if promtool check config docker/prometheus.yml >"$tmp/prom.out" 2>&1; then pass prometheus_config_promtool
  else fail prometheus_config_promtool "$(tr '\n' ' ' <"$tmp/prom.out")"; fi
  sed 's/scrape_interval: 5s/scrape_interval: 5 seconds/' docker/prometheus.yml >"$tmp/prometheus.yml"
  if promtool check config "$tmp/prometheus.yml" >/dev/null 2>&1; then
    fail promtool_rejects_bad_config "a bad duration passed"
  else pass promtool_rejects_bad_config; fi
  if [ "$npm_ok" = 1 ] && [ -f docs/deployment.md ]; then
    # Debian's Prometheus is built without Kubernetes service discovery, so
    # promtool does not know kubernetes_sd_configs: it checks the job with the
    # discovery swapped for a static target (the relabelling rules, regexes
    # and labels are what can go wrong), and the discovery role is read here.
    if "${CHECK[@]}" yaml-block docs/deployment.md prometheus-kubernetes >"$tmp/prom-k8s.yml" 2>"$tmp/prom.out" &&
       grep -qE '^ +kubernetes_sd_configs:$' "$tmp/prom-k8s.yml" &&
       grep -A1 -E '^ +kubernetes_sd_configs:$' "$tmp/prom-k8s.yml" | grep -qE -- '- role: pod$' &&
       sed -e '/^ *kubernetes_sd_configs:$/{N;s/kubernetes_sd_configs:\n\( *\)- role: pod/static_configs:\n\1- targets: ["10.0.0.1:8080"]/}' \
           "$tmp/prom-k8s.yml" >"$tmp/prom-k8s-static.yml" &&
       ! grep -q kubernetes_sd_configs "$tmp/prom-k8s-static.yml" &&
       promtool check config "$tmp/prom-k8s-static.yml" >>"$tmp/prom.out" 2>&1; then
      pass prometheus_kubernetes_config_in_docs_promtool
    else fail prometheus_kubernetes_config_in_docs_promtool "$(tr '\n' ' ' <"$tmp/prom.out")"; fi
  fi
else
  fail prometheus_config_promtool "promtool is not installed (Debian package prometheus, scripts/deps.sh test)"
fi
if [ "$npm_ok" = 1 ]; then
  "${CHECK[@]}" compose docker/compose.yaml docker/Dockerfile "$tmp/help.txt" || failed=1
  mkdir -p "$tmp/compose"
  cp docker/prometheus.yml "$tmp/compose/"
  sed 's|^    restart: unless-stopped|    restrat: unless-stopped|; s|context: \.\.|context: '"$ROOT"'|' \
    docker/compose.yaml >"$tmp/compose/compose.yaml"
  expect_fail compose_check_catches_unknown_key compose_schema \
    "${CHECK[@]}" compose "$tmp/compose/compose.yaml" docker/Dockerfile "$tmp/help.txt"
  sed 's|"mnistd:8080"|"mnistd:9999"|' docker/prometheus.yml >"$tmp/compose/prometheus.yml"
  sed 's|context: \.\.|context: '"$ROOT"'|' docker/compose.yaml >"$tmp/compose/compose.yaml"
  expect_fail compose_check_catches_wrong_scrape_target compose_references \
    "${CHECK[@]}" compose "$tmp/compose/compose.yaml" docker/Dockerfile "$tmp/help.txt"
fi

# ------------------------------------------------------------------ Kubernetes
if [ "$npm_ok" = 1 ]; then
  "${CHECK[@]}" k8s docker/k8s docker/Dockerfile "$tmp/help.txt" || failed=1
  mut() {  # mut NAME CHECK SED-EXPR FILE (the TypeScript pass only where it is the target)
    rm -rf "$tmp/k8s"; cp -r docker/k8s "$tmp/k8s"
    sed -i "$3" "$tmp/k8s/$4"
    local strict=0
    [ "$2" = k8s_schema_strict ] && strict=1
    expect_fail "$1" "$2" env MNISTD_K8S_STRICT=$strict "${CHECK[@]}" k8s "$tmp/k8s" docker/Dockerfile "$tmp/help.txt"
  }
  mut k8s_check_catches_misspelt_field k8s_schema_strict 's/periodSeconds: 5/periodSecond: 5/' deployment.yaml
  mut k8s_check_catches_wrong_type k8s_schema_deployment 's/replicas: 2/replicas: "2"/' deployment.yaml
  mut k8s_check_catches_bad_api_version k8s_schema_hpa 's|autoscaling/v2|autoscaling/v9|' hpa.yaml
  mut k8s_check_catches_unknown_setting k8s_references 's/MNISTD_THREADS/MNISTD_THREAD/' deployment.yaml
  mut k8s_check_catches_probe_path k8s_references 's|path: /readyz|path: /ready|' deployment.yaml
  mut k8s_check_catches_second_writer k8s_references 's/replicas: 1/replicas: 2/' trainer.yaml
  mut k8s_check_catches_http_probe_on_https k8s_references 's/scheme: HTTPS/scheme: HTTP/' deployment.yaml
  mut k8s_check_catches_http_scrape_on_https k8s_references 's|prometheus.io/scheme: https|prometheus.io/scheme: http|' trainer.yaml
  mut k8s_check_catches_key_outside_secret k8s_references 's|value: /etc/mnistd/tls/tls.key|value: /var/lib/mnistd/tls.key|' deployment.yaml
fi

# ---------------------------------------------------------------------- KServe
# docker/k8s/kserve: the ServingRuntime and InferenceService of the v2
# protocol (tests/deploy/kserve.js), and broken copies it must refuse.
if [ "$npm_ok" = 1 ]; then
  KS=(node "$DEPLOY/kserve.js")
  "${KS[@]}" docker/k8s/kserve docker/k8s "$tmp/help.txt" || failed=1
  kmut() {  # kmut NAME CHECK SED-EXPR FILE
    rm -rf "$tmp/ks"; cp -r docker/k8s/kserve "$tmp/ks"
    sed -i "$3" "$tmp/ks/$4"
    expect_fail "$1" "$2" "${KS[@]}" "$tmp/ks" docker/k8s "$tmp/help.txt"
  }
  kmut kserve_check_catches_protocol kserve_references 's/protocolVersion: v2/protocolVersion: v1/' inferenceservice.yaml
  kmut kserve_check_catches_unknown_field kserve_schema_InferenceService 's/storageUri:/storageURI:/' \
    inferenceservice.yaml
  kmut kserve_check_catches_unknown_flag kserve_references 's/--model-name=/--model-nam=/' servingruntime.yaml
  kmut kserve_check_catches_runtime_name kserve_references 's/runtime: mnistd/runtime: triton/' inferenceservice.yaml
  kmut kserve_check_catches_probe_path kserve_references 's|/v2/health/ready|/v2/ready|' servingruntime.yaml
  kmut kserve_check_catches_container_type kserve_runtime_containers_k8s_schema 's/containerPort: 8080/containerPort: "8080"/' \
    servingruntime.yaml
fi

exit $failed
