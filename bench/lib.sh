# bench/lib.sh -- helpers of the wrk benchmarks (sourced by bench/*.sh).
#
#   bench_setup NAME                sets BUILD (default build), BIN
#                                   (MNISTD_BIN, default BUILD/mnistd) and
#                                   MKPNG, makes the scratch folder WORK
#                                   (/tmp/mnistd-NAME.*), and on exit stops
#                                   the daemon (bench_stop) and removes WORK
#   bench_start LOG BIN [serve flags...]   starts BIN serve on a free port of
#                                   127.0.0.1, stderr in LOG; waits for its
#                                   "listening" line; sets DPID, PORT and
#                                   BASE (http://127.0.0.1:PORT, or https://)
#   bench_stop                      SIGTERM to DPID, waits for it
#   bench_predict_lua PNG LUA       writes a wrk script that POSTs PNG to /predict
#   bench_wrk OUT [wrk args...]     one wrk run, its output in OUT; sets RPS
#                                   (requests/s) and ERRS (non-2xx + socket errors)
#   bench_median FILE KEY [FIELD]   the median of field FIELD (default 2) of
#                                   the lines of FILE whose first field is KEY

bench_setup() {
  BUILD=${BUILD:-build}
  BIN=${MNISTD_BIN:-$ROOT/$BUILD/mnistd}
  MKPNG=$ROOT/$BUILD/tests/tools/mkpng
  WORK=$(mktemp -d "/tmp/mnistd-$1.XXXXXX")
  DPID=
  trap 'bench_stop; rm -rf "$WORK"' EXIT
}

bench_start() {
  local log=$1 bin=$2; shift 2
  "$bin" serve --port 0 --bind 127.0.0.1 "$@" 2>"$log" &
  DPID=$!
  PORT= BASE=
  local _
  for _ in $(seq 600); do
    grep -qs '"msg":"listening' "$log" && break
    kill -0 "$DPID" 2>/dev/null || break
    sleep 0.05
  done
  BASE=$(grep -o '"msg":"listening on https\?://[^"]*"' "$log" | head -1 | sed 's/^"msg":"listening on //; s/"$//' || true)
  PORT=${BASE##*:}
  [ -n "$BASE" ] || { echo "bench: $bin did not start:" >&2; tail -n 20 "$log" >&2; return 1; }
}

bench_stop() {
  [ -n "${DPID:-}" ] || return 0
  kill -TERM "$DPID" 2>/dev/null || true
  wait "$DPID" 2>/dev/null || true
  DPID=
}

bench_predict_lua() {
  cat >"$2" <<EOF
local f = assert(io.open("$1", "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "image/png"
EOF
}

bench_wrk() {
  local out=$1; shift
  wrk "$@" >"$out" 2>&1 || true
  RPS=$(awk '/^Requests\/sec/ { print $2 }' "$out")
  ERRS=$(awk '/Non-2xx/ { n += $NF } /Socket errors/ { n += 1 } END { print n + 0 }' "$out")
}

bench_median() {
  awk -v k="$2" -v f="${3:-2}" '$1 == k { print $f }' "$1" | sort -g |
    awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2];
                              else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
