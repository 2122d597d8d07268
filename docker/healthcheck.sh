#!/bin/bash
# mnistd-healthcheck [PATH]: exit 0 when GET PATH (default /healthz) on the
# local daemon answers 200, 1 otherwise. It reads the daemon's own settings
# (MNISTD_PORT, MNISTD_BIND) so that it probes where the daemon listens.
# The slim runtime image has no curl or wget; bash's /dev/tcp speaks enough
# HTTP/1.0 for a probe and costs no extra package. A daemon serving HTTPS
# (MNISTD_TLS_CERT set) is probed by the binary itself, which speaks TLS.
set -u
path=${1:-/healthz}
if [ -n "${MNISTD_TLS_CERT:-}" ]; then
  exec "${MNISTD_BIN:-/usr/local/bin/mnistd}" healthcheck "$path"
fi
port=${MNISTD_PORT:-8080}
# A wildcard bind is reached on loopback; a specific address only on itself.
bind=${MNISTD_BIND:-127.0.0.1}
case $bind in
  0.0.0.0) host=127.0.0.1 ;;
  ::) host=::1 ;;
  *) host=$bind ;;
esac
{ exec 3<>"/dev/tcp/$host/$port"; } 2>/dev/null || { echo "no connection to $host:$port" >&2; exit 1; }
printf 'GET %s HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n' "$path" >&3
# The status line is "HTTP/1.x CODE REASON"; a daemon that accepts but never
# answers fails after the timeout instead of hanging the probe.
if ! read -r -t "${MNISTD_HEALTHCHECK_TIMEOUT:-2}" _ code _ <&3; then
  echo "no answer from $host:$port$path" >&2
  exit 1
fi
exec 3<&-
[ "$code" = 200 ] && exit 0
echo "$path answered $code" >&2
exit 1
