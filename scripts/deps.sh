#!/usr/bin/env bash
# Installs the Debian 12 packages mnistd needs for a purpose, only those missing.
#   scripts/deps.sh build   compiler and libraries to build and run the daemon
#   scripts/deps.sh test    build + what the test suite uses
#   scripts/deps.sh bench   test + what the benchmarks compare against
# Needs root (or sudo) only when something is missing. `test` and `bench` also
# create Python virtual environments (see python_venv at the end).
set -euo pipefail

build_pkgs=(gcc make pkg-config libmicrohttpd-dev libgnutls28-dev libcjson-dev libpng-dev zlib1g-dev
            libjemalloc-dev libopenblas-dev)
test_pkgs=(curl openssl python3 python3-venv clang libclang-rt-14-dev python3-numpy dataset-fashion-mnist chromium chromium-driver prometheus wrk
           docker.io docker-compose debootstrap)
bench_pkgs=(python3-torch python3-numpy wrk hyperfine valgrind)

case "${1:-build}" in
  build) want=("${build_pkgs[@]}") ;;
  test)  want=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
  bench) want=("${build_pkgs[@]}" "${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
  *) echo "usage: $0 build|test|bench" >&2; exit 2 ;;
esac
# The contract, web and deployment tests run npm packages. A machine that has
# Node.js and npm already (from any source) keeps them; one without gets
# Debian's.
if [ "${1:-build}" != build ] && { ! command -v node >/dev/null || ! command -v npm >/dev/null; }; then
  want+=(nodejs npm)
fi
if [ -n "${MNISTD_EXTRA_PKGS:-}" ]; then
  read -r -a extra <<<"$MNISTD_EXTRA_PKGS"
  want+=("${extra[@]}")
fi

missing=()
for p in "${want[@]}"; do
  st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$st" = installed ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  SUDO=
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "deps: missing ${missing[*]}; run as root" >&2; exit 1; }
    SUDO=sudo
  fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Python packages from PyPI: pinned with hashes in requirements/NAME.txt
# (compiled from requirements/NAME.in), installed into build/venv-NAME with
# Debian's python3, never into the system Python. pip runs only when the
# requirements file changed since the last install, and then installs only
# what the venv lacks. `test` gets the checkers (safetensors,
# schemathesis); `bench` also the peers (TensorFlow, PyTorch, ONNX Runtime,
# TorchServe, FastAPI, matplotlib).
python_venv() {
  local root dir req stamp
  root=$(cd "$(dirname "$0")/.." && pwd)
  dir=$root/build/venv-$1 req=$root/requirements/$1.txt
  stamp=$dir/requirements.sha256
  if [ -x "$dir/bin/python" ] && [ -f "$stamp" ] && [ "$(sha256sum <"$req")" = "$(cat "$stamp")" ]; then
    return 0
  fi
  echo "deps: installing requirements/$1.txt into build/venv-$1" >&2
  [ -x "$dir/bin/python" ] || /usr/bin/python3 -m venv "$dir"
  "$dir/bin/pip" install --quiet --disable-pip-version-check --require-hashes -r "$req"
  sha256sum <"$req" >"$stamp"
}
case "${1:-build}" in
  test) python_venv test ;;
  bench) python_venv test; python_venv bench ;;
esac
