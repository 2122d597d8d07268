#!/usr/bin/env bash
# Rules of the source tree that a grep can check, so that they stay true:
#   - every header's include guard encloses the whole header (nothing is
#     declared after the guard's #endif);
#   - no header in model/ mentions HTTP (the numeric core and file formats
#     know nothing of the protocol that serves them);
#   - the training settings' ranges are defined once, in model/train.h, and
#     their messages written once, in model/train.c;
#   - the temporary-file naming of atomic writes (".tmp.": model files,
#     the repository's active record, job records) is known to
#     model/atomicfile.c alone;
#   - no #include points up a layer (model/ < server/ < api/ < cmd/: a file
#     includes headers of its own layer and those below it only);
#   - no cycle among the files of api/: with a file and its header as one
#     module (api/x.c and api/x.h), the modules' includes form no loop;
#   - the library exports no function or variable that nothing uses
#     (scripts/unused-symbols.sh).
. "$(dirname "$0")/../contract/lib.sh"
lib_init
cd "$ROOT"
dirs=$(for d in model server api cmd; do [ -d "$d" ] && echo "$d"; done)

# Depth of #if nesting; a header whose guard closes before its last
# directive has code outside the guard.
bad=""
for h in $(find $dirs -name '*.h' | sort); do
  awk '/^[ \t]*#[ \t]*if/ { d++ } /^[ \t]*#[ \t]*endif/ { d--; if (d == 0) closed = NR }
       NF && closed && NR > closed { out = 1 }
       END { exit !(out || !closed) }' "$h" && bad="$bad $h"
done
check source_include_guards_enclose_headers "outside or without a guard:$bad" test -z "$bad"

http=$(grep -il 'http' model/*.h || true)
check source_model_headers_know_no_http "$http" test -z "$http"

defs=$(grep -rln '#define TRAIN_MAX_' $dirs | tr '\n' ' ')
msgs=$(grep -rlE '(epochs|batch_size|learning_rate|validation_split|seed|limit|%s) must be (an integer|a number) in' $dirs --include='*.c' | tr '\n' ' ')
check source_training_ranges_once "ranges in: $defs; messages in: $msgs" \
  test "$defs" = "model/train.h " -a "$msgs" = "model/train.c "

tmp=$(grep -rlF '.tmp.' $dirs --include='*.c' --include='*.h' | tr '\n' ' ')
check source_temp_names_in_one_file "named in: $tmp" test "$tmp" = "model/atomicfile.c "

up=""
for pair in "model:server|api|cmd" "server:api|cmd" "api:cmd"; do
  d=${pair%%:*}
  [ -d "$d" ] || continue
  up+=$(grep -rnE "^[ \t]*#[ \t]*include \"(${pair#*:})/" "$d" --include='*.c' --include='*.h' | tr '\n' ' ' || true)
done
check source_includes_point_down "includes up a layer: $up" test -z "$up"

# One line "X Y" per api/X.[ch] that includes api/Y.h (Y another module);
# tsort fails on a loop and names its modules.
for f in api/*.c api/*.h; do
  m=$(basename "${f%.*}")
  sed -n 's|^[ \t]*#[ \t]*include "api/\([A-Za-z0-9_]*\)\.h".*|\1|p' "$f" | while read -r d; do
    [ "$d" != "$m" ] && echo "$m $d"
  done
done | sort -u >"$WORK/api-includes"
loop=$(tsort "$WORK/api-includes" 2>&1 >/dev/null | tr '\n' ' ')
check source_api_no_include_cycle "$loop" test -z "$loop" -a -s "$WORK/api-includes"

if [ -f "$ROOT/$BUILD/libmnistd.a" ]; then
  unused=$(BUILD=$BUILD bash scripts/unused-symbols.sh)
  check source_no_unused_exports "$(echo $unused)" test -z "$unused"
else
  skip source_no_unused_exports "$BUILD/libmnistd.a is not built"
fi
[ "$FAILS" -eq 0 ]
