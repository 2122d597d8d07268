#!/usr/bin/env bash
# The image built and run by a real Docker engine (tests/integration/
# test_deploy.sh checks the same files without one):
#   - a private dockerd (Debian's docker.io) under build/docker, with its own
#     data root, exec root, pid file and socket (tests/docker/engine.sh); the
#     Dockerfile's FROM images come from a debootstrap of bookworm;
#   - the image builds as the README says (classic builder) and the binary in
#     it names its kernels (mnistd --version);
#   - a container (read-only root file system, the image's non-root user)
#     becomes healthy, runs the CPU's best kernels and classifies MNIST test
#     digits as `mnistd predict` does on this machine;
#   - with the MNIST folder mounted read-only, a short training job runs; its
#     model is in the models volume after `docker rm` and a new container
#     serves it;
#   - `docker stop` during a client loop: no accepted request is lost (the
#     access log and the clients agree) and the container exits 0;
#   - docker-compose (Debian's) runs docker/compose.yaml with a Prometheus
#     image built from Debian's prometheus package (an override file points
#     compose at it); Prometheus reports the mnistd target up and answers a
#     query over the mnistd_ metrics;
#   - the image's size over its base, uncompressed and gzip-compressed.
# Without root, dockerd or debootstrap it prints SKIP with the reason. The
# engine is stopped and its mounts removed at the end, also on failure.
# MNISTD_DOCKER_KEEP=1 leaves the engine's images between runs (the default:
# the data root under build/docker keeps them, `make clean` removes it).
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
BUILD=${BUILD:-build}
BIN=${MNISTD_BIN:-$ROOT/$BUILD/mnistd}
VERSION=$(cat VERSION)
IMAGE=mnistd:$VERSION
unset MAKEFLAGS MFLAGS MAKELEVEL
failed=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; failed=1; }
skip() { echo "SKIP $1: $2"; }

. tests/docker/engine.sh
why=$(engine_why_not)
if [ -n "$why" ]; then
  skip docker_engine "$why: the image is not built or run (test_deploy checks the files)"
  exit 0
fi
for tool in curl python3; do
  command -v $tool >/dev/null || { fail docker_tools "$tool is not installed (scripts/deps.sh test)"; exit 1; }
done
[ -x "$BIN" ] || { fail docker_binary "$BIN is not built"; exit 1; }

tmp=$(mktemp -d)
client_pid=
cleanup() {
  [ -n "$client_pid" ] && kill "$client_pid" 2>/dev/null
  if [ -n "$ENGINE_PID" ]; then
    (cd "$tmp/compose" 2>/dev/null && docker-compose -p mnistdtest down -v >/dev/null 2>&1)
    "$DOCKER" volume rm -f mnistd-test-models >/dev/null 2>&1
  fi
  engine_stop
  rm -rf "$tmp"
  if findmnt -rn -o TARGET | grep -qF "$ROOT/build/docker/"; then
    echo "FAIL docker_engine_cleanup: mounts left under build/docker"
  fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# wait_for SECONDS CMD...: polls CMD every 0.5 s until it succeeds.
wait_for() {
  local end=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -ge $end ] && return 1
    sleep 0.5
  done
}

# ------------------------------------------------------------------ engine
if ! engine_start "$ROOT/build/docker"; then
  fail docker_engine_start "$(tail -n 5 "$ROOT/build/docker/dockerd.log" | tr '\n' ' ')"
  exit 1
fi
pass docker_engine_start
echo "  dockerd $("$DOCKER" version -f '{{.Server.Version}}') at $DOCKER_HOST"
t0=$SECONDS
if ! engine_base_images 2>"$tmp/base.err"; then
  fail docker_base_images "$(tr '\n' ' ' <"$tmp/base.err")"
  exit 1
fi
pass docker_base_images
echo "  debian:bookworm and debian:bookworm-slim from debootstrap ($((SECONDS - t0)) s)"

# ------------------------------------------------------------------- build
t0=$SECONDS
if engine_build_image "$IMAGE" "$tmp/build.log"; then
  # The image's binary names its kernels (the build's own --version line is
  # not in the log when the layer came from the cache).
  "$DOCKER" run --rm --network none --entrypoint /usr/local/bin/mnistd "$IMAGE" --version \
    >"$tmp/version.txt" 2>&1
  if grep -q '^kernels: ' "$tmp/version.txt"; then
    pass docker_build
    echo "  built in $((SECONDS - t0)) s; $(grep -m1 '^kernels: ' "$tmp/version.txt")"
  else
    fail docker_build "mnistd --version in the image named no kernels: $(tr '\n' ' ' <"$tmp/version.txt")"
  fi
else
  fail docker_build "$(tail -n 8 "$tmp/build.log" | tr '\n' ' ')"
  exit 1
fi

# ------------------------------------------------------------------ image size
base_size=$("$DOCKER" image inspect -f '{{.Size}}' debian:bookworm-slim)
img_size=$("$DOCKER" image inspect -f '{{.Size}}' "$IMAGE")
base_gz=$("$DOCKER" save debian:bookworm-slim | gzip -c | wc -c)
img_gz=$("$DOCKER" save "$IMAGE" | gzip -c | wc -c)
echo "  image size: $img_size bytes ($img_gz gzip), base $base_size ($base_gz gzip):" \
     "the Dockerfile adds $(((img_size - base_size) / 1000)) kB ($(((img_gz - base_gz) / 1000)) kB gzip)"
"$DOCKER" history --no-trunc --format '    {{.Size}}	{{.CreatedBy}}' "$IMAGE" | grep -v '^    0B' | cut -c1-110

# --------------------------------------------------- first container: serving
make -s -C "$ROOT" BUILD="$BUILD" "$BUILD/tests/tools/mkpng" >/dev/null 2>&1
MKPNG=$ROOT/$BUILD/tests/tools/mkpng
if [ -z "${MNISTD_DATA:-}" ] || [ ! -f "$MNISTD_DATA/t10k-images-idx3-ubyte.gz" ] && [ ! -f "$MNISTD_DATA/t10k-images-idx3-ubyte" ]; then
  skip docker_mnist "MNISTD_DATA has no MNIST files: the prediction and training checks need them"
  DATA_OK=0
else
  DATA_OK=1
  for i in 0 1 2 3 4 5 6 7; do "$MKPNG" --mnist "$MNISTD_DATA" --index $i -o "$tmp/d$i.png"; done
fi
"$DOCKER" volume rm -f mnistd-test-models >/dev/null 2>&1
# run_container NAME PORT: the image with the host's network (the engine has
# no bridge), listening on loopback PORT, the models volume, the MNIST folder
# read-only, a read-only root file system with a tmpfs /tmp (as compose and
# Kubernetes run it). The health probe is the image's, checked every second.
run_container() {
  local data=()
  [ "$DATA_OK" = 1 ] && data=(-v "$MNISTD_DATA:/var/lib/mnistd/data:ro")
  "$DOCKER" run -d --name "$1" --network host --read-only --tmpfs /tmp \
    --health-interval 1s --health-start-period 30s \
    -e MNISTD_BIND=127.0.0.1 -e MNISTD_PORT="$2" \
    -v mnistd-test-models:/var/lib/mnistd/models "${data[@]}" "$IMAGE" >/dev/null
}
healthy() { [ "$("$DOCKER" inspect -f '{{.State.Health.Status}}' "$1")" = healthy ]; }

port=$(free_port)
if ! run_container mnistd-test-1 "$port"; then
  fail docker_run "docker run failed"
  exit 1
fi
if wait_for 60 healthy mnistd-test-1; then
  pass container_healthy
else
  fail container_healthy "not healthy after 60 s: $("$DOCKER" inspect -f '{{json .State.Health}}' mnistd-test-1 | head -c 400); $("$DOCKER" logs mnistd-test-1 2>&1 | tail -n 3)"
fi

uid=$("$DOCKER" exec mnistd-test-1 id -u)
ro=$("$DOCKER" inspect -f '{{.HostConfig.ReadonlyRootfs}}' mnistd-test-1)
if "$DOCKER" exec mnistd-test-1 sh -c ': >/usr/local/bin/written' 2>"$tmp/ro.err"; then wrote=yes; else wrote=no; fi
if [ "$uid" != 0 ] && [ "$ro" = true ] && [ "$wrote" = no ] && grep -qi 'read-only' "$tmp/ro.err"; then
  pass container_nonroot_readonly
  echo "  uid $uid; writing to /usr/local/bin: $(head -c 100 "$tmp/ro.err")"
else
  fail container_nonroot_readonly "uid $uid, ReadonlyRootfs $ro, a write to /usr/local/bin: $wrote ($(cat "$tmp/ro.err"))"
fi

# The kernels: the container runs the best level this CPU has, as the
# native binary does here.
host_kernels=$(MNISTD_KERNELS= "$BIN" --version | sed -n 's/^kernels: \([a-z0-9]*\) .*/\1/p')
cont_kernels=$(curl -sf "127.0.0.1:$port/model" | python3 -c 'import json,sys; print(json.load(sys.stdin)["kernels"]["in_use"])' 2>/dev/null)
start_line=$("$DOCKER" logs mnistd-test-1 2>&1 | grep -m1 '"kernels"' | grep -o '"kernels":"[^"]*"' | head -n1)
if [ -n "$host_kernels" ] && [ "$cont_kernels" = "$host_kernels" ] && [ -n "$start_line" ]; then
  pass container_kernels_match_host
  echo "  GET /model kernels.in_use $cont_kernels; startup line $start_line"
else
  fail container_kernels_match_host "container runs '$cont_kernels' (startup: $start_line), this machine's best is '$host_kernels'"
fi

if [ "$DATA_OK" = 1 ]; then
  bad=0; shown=
  for i in 0 1 2 3 4 5 6 7; do
    want=$("$BIN" predict --model models/mnist-cnn.safetensors "$tmp/d$i.png" 2>/dev/null | awk '{print $2}')
    got=$(curl -sf -H 'Content-Type: image/png' --data-binary @"$tmp/d$i.png" "127.0.0.1:$port/predict" |
          python3 -c 'import json,sys; o=json.load(sys.stdin); print(o.get("digit", o.get("predictions", [{}])[0].get("digit")))' 2>/dev/null)
    shown="$shown $i:$got/$want"
    [ -n "$want" ] && [ "$got" = "$want" ] || bad=$((bad + 1))
  done
  if [ $bad -eq 0 ]; then pass container_predicts_like_cli; echo "  image:container/cli$shown"
  else fail container_predicts_like_cli "$bad of 8 differ (image:container/cli$shown)"; fi
fi

# ------------------------------------------- training persists in the volume
if [ "$DATA_OK" = 1 ]; then
  v0=$(curl -sf "127.0.0.1:$port/model" | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
  job=$(curl -sf -H 'Content-Type: application/json' \
          -d '{"epochs":1,"limit":3000,"validation_split":0,"promote":"always"}' "127.0.0.1:$port/train" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' 2>/dev/null)
  job_done() {
    curl -sf "127.0.0.1:$port/train/$job" >"$tmp/job.json" &&
      python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1]))["status"] not in ("succeeded","failed","cancelled"))' "$tmp/job.json"
  }
  if [ -z "$job" ]; then
    fail container_training_persists "POST /train was refused"
  elif ! wait_for 300 job_done; then
    fail container_training_persists "job $job did not finish in 300 s: $(head -c 300 "$tmp/job.json")"
  else
    status=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["status"])' "$tmp/job.json")
    v1=$(curl -sf "127.0.0.1:$port/model" | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
    "$DOCKER" rm -f mnistd-test-1 >/dev/null
    port=$(free_port)
    run_container mnistd-test-2 "$port"
    wait_for 60 healthy mnistd-test-2
    v2=$(curl -sf "127.0.0.1:$port/model" | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
    if [ "$status" = succeeded ] && [ "$v1" != "$v0" ] && [ "$v2" = "$v1" ]; then
      pass container_training_persists
      echo "  job $job $status: model $v0 -> $v1; a new container after docker rm serves $v2"
    else
      fail container_training_persists "job $status; versions before $v0, after training $v1, new container $v2"
    fi
  fi
fi
if ! "$DOCKER" inspect mnistd-test-2 >/dev/null 2>&1; then
  "$DOCKER" rm -f mnistd-test-1 >/dev/null 2>&1
  port=$(free_port)
  run_container mnistd-test-2 "$port"
  wait_for 60 healthy mnistd-test-2
fi

# ------------------------------------------------ docker stop drains requests
png=$tmp/d0.png
[ -f "$png" ] || python3 -c '
import sys; sys.path.insert(0, "tests/tools"); import hardening as H
open(sys.argv[1], "wb").write(H.png_digit())' "$png"
python3 tests/docker/drain_client.py "$port" "$png" "$tmp/ready" >"$tmp/drain.json" 2>"$tmp/drain.err" &
client_pid=$!
if ! wait_for 60 test -s "$tmp/ready"; then
  fail container_stop_drains "the clients got no answers: $(tail -n 3 "$tmp/drain.err")"
fi
t0=$SECONDS
"$DOCKER" stop -t 30 mnistd-test-2 >/dev/null
stop_s=$((SECONDS - t0))
wait "$client_pid"; client_pid=
rc=$("$DOCKER" inspect -f '{{.State.ExitCode}}' mnistd-test-2)
"$DOCKER" logs mnistd-test-2 >"$tmp/stop.log" 2>&1
python3 - "$tmp/drain.json" "$tmp/stop.log" "$rc" "$stop_s" <<'PY'
import json, re, sys
d = json.load(open(sys.argv[1]))
log = open(sys.argv[2]).read()
c = d["counts"]
logged = len(re.findall(r'"path":"/predict","status":(?:200|503)', log))
lost = len(re.findall(r'"path":"/predict","status":499', log))
answered = c.get("ok", 0) + c.get("shutting_down", 0)
rc, stop_s = int(sys.argv[3]), int(sys.argv[4])
problems = []
if rc != 0: problems.append("exit code %d" % rc)
if c.get("other", 0): problems.append("unexpected answers %s" % d["other"])
if lost or logged != answered:
    problems.append("the daemon logged %d answers and %d dropped (499); the clients received %d" % (logged, lost, answered))
if not c.get("refused"): problems.append("no client saw the listener close")
if problems:
    print("FAIL container_stop_drains: %s (clients %s)" % ("; ".join(problems), c))
else:
    print("PASS container_stop_drains")
    print("  docker stop took %d s, exit code 0; clients %s; the access log has %d answers, as received" % (stop_s, c, logged))
PY

# ----------------------------------------------------- compose + Prometheus
if ! command -v docker-compose >/dev/null; then
  fail compose_prometheus "docker-compose is not installed (scripts/deps.sh test)"
else
  t0=$SECONDS
  if DOCKER_BUILDKIT=0 "$DOCKER" build --network host -f tests/docker/prometheus.Dockerfile \
       -t mnistd-test/prometheus:debian tests/docker >"$tmp/prom-build.log" 2>&1; then
    pass prometheus_image_from_debian
    echo "  $("$DOCKER" run --rm mnistd-test/prometheus:debian --version 2>&1 | head -n1) ($((SECONDS - t0)) s)"
  else
    fail prometheus_image_from_debian "$(tail -n 5 "$tmp/prom-build.log" | tr '\n' ' ')"
  fi
  # compose.yaml as shipped, next to its prometheus.yml, plus an override
  # that swaps the registry's Prometheus image for the local one.
  mkdir -p "$tmp/compose"
  cat >"$tmp/compose/override.yaml" <<'EOF'
services:
  prometheus:
    image: mnistd-test/prometheus:debian
EOF
  mport=$(free_port); pport=$(free_port)
  export MNISTD_PUBLISH=127.0.0.1:$mport PROMETHEUS_PUBLISH=127.0.0.1:$pport
  export MNIST_DIR=${MNISTD_DATA:-$tmp/compose/mnist}
  mkdir -p "$MNIST_DIR" 2>/dev/null
  dc() { docker-compose -p mnistdtest -f docker/compose.yaml -f "$tmp/compose/override.yaml" "$@"; }
  if ! dc up -d --no-build >"$tmp/compose.log" 2>&1; then
    fail compose_up "$(tail -n 8 "$tmp/compose.log" | tr '\n' ' ')"
  else
    pass compose_up
    target_up() {
      curl -sf "127.0.0.1:$pport/api/v1/targets" >"$tmp/targets.json" &&
        python3 -c '
import json, sys
t = json.load(open(sys.argv[1]))["data"]["activeTargets"]
sys.exit(not any(x["labels"].get("job") == "mnistd" and x["health"] == "up" for x in t))' "$tmp/targets.json"
    }
    if wait_for 120 target_up; then
      pass compose_prometheus_target_up
      echo "  $(python3 -c '
import json, sys
for x in json.load(open(sys.argv[1]))["data"]["activeTargets"]:
    print("target %s %s %s" % (x["labels"].get("job"), x["scrapeUrl"], x["health"]))' "$tmp/targets.json")"
    else
      fail compose_prometheus_target_up "$(head -c 600 "$tmp/targets.json" 2>/dev/null); $(dc ps 2>&1 | tail -n 3 | tr '\n' ' ')"
    fi
    q='sum(mnistd_model_info) by (version)'
    query_ok() {
      curl -sf --get --data-urlencode "query=$q" "127.0.0.1:$pport/api/v1/query" >"$tmp/query.json" &&
        python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
sys.exit(not (d["status"] == "success" and d["data"]["result"]))' "$tmp/query.json"
    }
    if wait_for 60 query_ok; then
      pass compose_prometheus_query
      echo "  $q: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["data"]["result"])' "$tmp/query.json")"
    else
      fail compose_prometheus_query "$(head -c 400 "$tmp/query.json" 2>/dev/null)"
    fi
    # The mnistd service is published where compose says and answers.
    if curl -sf "127.0.0.1:$mport/readyz" >/dev/null; then pass compose_mnistd_published
    else fail compose_mnistd_published "no answer on $MNISTD_PUBLISH"; fi
  fi
  dc down -v >/dev/null 2>&1

  # The same over HTTPS: docker/compose.tls.yaml with certificates made
  # here; the image's healthcheck probes over TLS, Prometheus scrapes
  # https://mnistd:8080/metrics trusting the CA, curl reaches the published
  # port with --cacert.
  export TLS_DIR=$tmp/compose/tls
  if bash tests/tools/mkcerts.sh "$tmp/compose/pki" >"$tmp/mkcerts.log" 2>&1; then
    mkdir -p "$TLS_DIR"
    cp "$tmp/compose/pki/server.pem" "$TLS_DIR/tls.crt"
    cp "$tmp/compose/pki/server.key" "$TLS_DIR/tls.key"
    cp "$tmp/compose/pki/ca.pem" "$TLS_DIR/ca.crt"
    chmod 755 "$TLS_DIR"; chmod 644 "$TLS_DIR"/*  # the container's uid 10001 reads them
    dct() { docker-compose -p mnistdtest -f docker/compose.yaml -f docker/compose.tls.yaml \
              -f "$tmp/compose/override.yaml" "$@"; }
    if ! dct up -d --no-build >"$tmp/compose-tls.log" 2>&1; then
      fail compose_tls_up "$(tail -n 8 "$tmp/compose-tls.log" | tr '\n' ' ')"
    else
      pass compose_tls_up
      https_target_up() {
        target_up && grep -q '"scrapeUrl":"https://mnistd:8080/metrics"' "$tmp/targets.json"
      }
      if wait_for 120 https_target_up; then pass compose_tls_prometheus_scrapes_https
      else fail compose_tls_prometheus_scrapes_https "$(head -c 600 "$tmp/targets.json" 2>/dev/null)"; fi
      healthy() { [ "$("$DOCKER" inspect -f '{{.State.Health.Status}}' "$(dct ps -q mnistd)" 2>/dev/null)" = healthy ]; }
      if wait_for 90 healthy; then pass compose_tls_healthcheck_https
      else fail compose_tls_healthcheck_https "health: $("$DOCKER" inspect -f '{{json .State.Health}}' "$(dct ps -q mnistd)" 2>&1 | head -c 400)"; fi
      if curl -sf --cacert "$TLS_DIR/ca.crt" "https://localhost:$mport/readyz" >/dev/null &&
         ! curl -sf "http://127.0.0.1:$mport/readyz" >/dev/null 2>&1; then pass compose_tls_published_https_only
      else fail compose_tls_published_https_only "https with the CA did not answer, or plain http did"; fi
    fi
    dct down -v >/dev/null 2>&1
  else
    fail compose_tls_certificates "$(tail -n 3 "$tmp/mkcerts.log")"
  fi
fi

exit $failed
