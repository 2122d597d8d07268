#!/usr/bin/env bash
# The serving peers under the same wrk load: POST of the same 28x28 PNG at 1
# and 64 connections, SERVE_SECONDS (default 10) per run after a 2 s warm-up,
# against mnistd, TorchServe and the FastAPI app (bench/serving/), each on
# loopback with the same model. Prints "serve.PEER.CONNS.KEY=VALUE" lines:
# rps, p50_us, p99_us, errors, rss_mb (resident memory of the server's whole
# process tree after the run).
#
#   bench/serving.sh [PEER...]    peers: mnistd torchserve fastapi (default all)
# Env: MNISTD_DATA, BUILD, SERVE_SECONDS, MNISTD_MODEL (default the shipped model).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
VENV=$ROOT/build/venv-bench
DUR=${SERVE_SECONDS:-10}
MODEL=${MNISTD_MODEL:-$ROOT/models/mnist-cnn.safetensors}
peers=("$@"); [ ${#peers[@]} -gt 0 ] || peers=(mnistd torchserve fastapi)
command -v wrk >/dev/null || { echo "serving: wrk is not installed (scripts/deps.sh bench)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/mnistd-serving.XXXXXX)
SPID=
# The pids of a process and all its descendants.
tree_pids() {
  ps -e -o pid=,ppid= | awk -v root="$1" '{ pp[$1] = $2 }
    END { for (p in pp) { q = p; while (q != "" && q != root && q in pp && q != pp[q]) q = pp[q];
          if (q == root) print p } }'
}
stop() { # the server started last, with every process it started
  [ -n "$SPID" ] || return 0
  local pids
  pids=$(tree_pids "$SPID")
  kill -TERM $pids 2>/dev/null || true
  for _ in $(seq 100); do kill -0 $pids 2>/dev/null || break; sleep 0.1; done
  kill -KILL $pids 2>/dev/null || true
  wait "$SPID" 2>/dev/null || true
  SPID=
}
cleanup() { stop; rm -rf "$WORK"; }
trap cleanup EXIT

"$ROOT/$BUILD/tests/tools/mkpng" --mnist "$MNISTD_DATA" --index 0 -o "$WORK/d.png"
export PNG=$WORK/d.png
free_port() { "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Resident memory (MB) of a process and all its descendants.
tree_rss() {
  ps -e -o pid=,ppid=,rss= | awk -v root="$1" '{ pp[$1] = $2; r[$1] = $3 }
    END { for (p in pp) { q = p; while (q != "" && q != root && q in pp && q != pp[q]) q = pp[q];
          if (q == root) s += r[p] } printf "%.1f", s / 1024 }'
}
wait_ok() { # url: until a POST of the PNG answers 200 (180 s at most)
  local end=$((SECONDS + 180))
  while [ $SECONDS -lt $end ]; do
    [ "$(curl -s -m 5 -o /dev/null -w '%{http_code}' --data-binary @"$WORK/d.png" -H 'Content-Type: image/png' "$1")" = 200 ] && return 0
    kill -0 "$SPID" 2>/dev/null || return 1
    sleep 0.2
  done
  return 1
}
us() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000; else if (v ~ /s$/) print n * 1e6; else print n }'; }
measure() { # peer url
  local peer=$1 url=$2 c
  curl -s -m 10 --data-binary @"$WORK/d.png" -H 'Content-Type: image/png' "$url" | tr -d ' \n' | head -c 160 | sed "s/^/# $peer answers: /"; echo
  for c in 1 64; do
    wrk -t"$(( c < 2 ? 1 : 2 ))" -c"$c" -d2s -s "$ROOT/bench/post_png.lua" "$url" >/dev/null 2>&1 || true
    wrk -t"$(( c < 2 ? 1 : 2 ))" -c"$c" -d"${DUR}s" --latency --timeout 10s -s "$ROOT/bench/post_png.lua" "$url" >"$WORK/wrk.txt" 2>&1 || true
    echo "serve.$peer.$c.rps=$(awk '/^Requests\/sec/ { print $2 }' "$WORK/wrk.txt")"
    echo "serve.$peer.$c.p50_us=$(us "$(awk '$1 == "50%" { print $2 }' "$WORK/wrk.txt")")"
    echo "serve.$peer.$c.p99_us=$(us "$(awk '$1 == "99%" { print $2 }' "$WORK/wrk.txt")")"
    echo "serve.$peer.$c.errors=$(awk '/Non-2xx/ { n += $NF } /Socket errors/ { n += 1 } END { print n + 0 }' "$WORK/wrk.txt")"
    echo "serve.$peer.$c.rss_mb=$(tree_rss "$SPID")"
  done
}

for peer in "${peers[@]}"; do
  port=$(free_port)
  case $peer in
    mnistd)
      "$ROOT/$BUILD/mnistd" serve --port "$port" --model "$MODEL" --log-format text 2>"$WORK/mnistd.log" &
      SPID=$!; url=http://127.0.0.1:$port/predict ;;
    fastapi)
      # Two uvicorn worker processes with one torch thread each: both cores.
      MNISTD_MODEL=$MODEL PEER_TORCH_THREADS=1 "$VENV/bin/uvicorn" --app-dir "$ROOT/bench/serving" \
        --host 127.0.0.1 --port "$port" --workers 2 --log-level warning fastapi_peer:app \
        2>"$WORK/fastapi.log" &
      SPID=$!; url=http://127.0.0.1:$port/predict ;;
    torchserve)
      TS_HOME=$WORK/ts; mkdir -p "$TS_HOME/store"
      "$VENV/bin/torch-model-archiver" --model-name mnist --version 1.0 --serialized-file "$MODEL" \
        --handler "$ROOT/bench/serving/torchserve_handler.py" \
        --extra-files "$ROOT/bench/serving/mnist_torch.py" --export-path "$TS_HOME/store" --force
      cat >"$TS_HOME/config.properties" <<EOF2
inference_address=http://127.0.0.1:$port
management_address=http://127.0.0.1:$(free_port)
metrics_address=http://127.0.0.1:$(free_port)
default_workers_per_model=2
disable_token_authorization=true
model_store=$TS_HOME/store
load_models=mnist=mnist.mar
EOF2
      # Two backend workers with one torch thread each: both cores.
      (cd "$TS_HOME" && PEER_TORCH_THREADS=1 LOG_LOCATION=$TS_HOME/logs METRICS_LOCATION=$TS_HOME/logs \
        exec "$VENV/bin/torchserve" --start --foreground --ncs --disable-token-auth \
        --ts-config "$TS_HOME/config.properties" >"$WORK/torchserve.log" 2>&1) &
      SPID=$!; url=http://127.0.0.1:$port/predictions/mnist ;;
    *) echo "serving: unknown peer $peer (mnistd torchserve fastapi)" >&2; exit 2 ;;
  esac
  if ! wait_ok "$url"; then
    echo "serving: $peer did not answer 200 at $url" >&2
    tail -20 "$WORK/$peer.log" >&2
    stop; exit 1
  fi
  measure "$peer" "$url"
  stop
done
exit 0
