#!/usr/bin/env bash
# Lists the functions and variables that the library (build/libmnistd.a)
# exports but nothing uses: the symbol is named nowhere in the C sources
# (library, daemon, tests, tools, fuzz harnesses, benchmarks) or in a macro
# of a header, except where it is defined. Prints one line per symbol (symbol and defining object) and
# exits 1 when there is any, 0 when there is none.
#
#   scripts/unused-symbols.sh        after make; BUILD=build by default
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
lib=$BUILD/libmnistd.a
[ -f "$lib" ] || { echo "unused-symbols: $lib not built (run make)" >&2; exit 2; }

# Every identifier of the C sources and of the headers' macros (a function
# called through a macro is used), with how often it appears.
dirs=$(for d in model server api cmd tests bench; do [ -d "$d" ] && echo "$d"; done)
macros() {
  awk '/^[ \t]*#[ \t]*define/ { on = 1 } on { print } on && !/\\$/ { on = 0 }' "$@"
}
counts=$( { find $dirs -name '*.c' | sort | xargs cat; macros $(find $dirs -name '*.h'); } |
         grep -oE '[A-Za-z_][A-Za-z0-9_]*' | sort | uniq -c | awk '{ print $2, $1 }')
status=0
while read -r sym obj; do
  n=$(awk -v s="$sym" '$1 == s { print $2 }' <<<"$counts")
  if [ "${n:-0}" -le 1 ]; then
    echo "$sym ($obj)"
    status=1
  fi
done < <(nm -A -g --defined-only "$lib" 2>/dev/null |
         awk '$(NF-1) ~ /^[TDBRV]$/ { split($1, a, ":"); print $NF, a[2] }' | sort -u)
exit $status
