#!/usr/bin/env bash
# The robustness table of the README: the reference recipe's model against
# the augmented recipe's, on the plain test set and on its shifted, rotated
# and thickened copies (mnistd evaluate --set transformed, model/robust.h).
#
#   scripts/robustness.sh          (or: make robustness)
#
# It trains the augmented recipe (10 epochs on all 60,000 training images,
# one thread so that the weights are the same bits on every machine: about
# 10 minutes on an idle core), evaluates both models, and prints a Markdown
# table, also written to $OUT/robustness.md.
#
# Settings (environment):
#   MNISTD_DATA   the MNIST directory (make sets it)
#   MNISTD_BIN    the binary (default build/mnistd)
#   OUT           where the models and the table go (default build/robustness)
#   REFERENCE     the reference recipe's model (default the shipped
#                 models/mnist-cnn.safetensors, which `make model` retrains);
#                 REFERENCE=train trains it here with the recipe
#   AUGMENTED     an augmented model to evaluate instead of training one
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${MNISTD_BIN:-build/mnistd}
OUT=${OUT:-build/robustness}
REFERENCE=${REFERENCE:-models/mnist-cnn.safetensors}
AUGMENTED=${AUGMENTED:-}
DATA=${MNISTD_DATA:-}
[ -n "$DATA" ] && [ -d "$DATA" ] || { echo "robustness: set MNISTD_DATA to the MNIST directory" >&2; exit 2; }
[ -x "$BIN" ] || { echo "robustness: $BIN is not built (make)" >&2; exit 2; }
mkdir -p "$OUT"

# The published recipes: the reference one (as `make model`) and the
# augmented one.
REFERENCE_FLAGS=(--epochs 5 --seed 1 --threads 2)
AUGMENTED_FLAGS=(--epochs 10 --seed 1 --threads 1 --validation-split 0
                 --augment-shift 2.5 --augment-rotate 12 --augment-scale 0.1
                 --augment-thicken 1.5 --augment-thin 0.5)

if [ "$REFERENCE" = train ]; then
  REFERENCE=$OUT/reference.safetensors
  echo "robustness: training the reference recipe into $REFERENCE" >&2
  "$BIN" train --quiet --data "$DATA" "${REFERENCE_FLAGS[@]}" --out "$REFERENCE" >&2
fi
if [ -z "$AUGMENTED" ]; then
  AUGMENTED=$OUT/augmented.safetensors
  echo "robustness: training the augmented recipe into $AUGMENTED" >&2
  "$BIN" train --quiet --data "$DATA" "${AUGMENTED_FLAGS[@]}" --out "$AUGMENTED" >&2
fi

# "set NAME accuracy A loss L" lines -> NAME A
evaluate() {
  "$BIN" evaluate --model "$1" --data "$DATA" --set transformed | awk '$1 == "set" { print $2, $4 }'
}
evaluate "$REFERENCE" >"$OUT/reference.txt"
evaluate "$AUGMENTED" >"$OUT/augmented.txt"

python3 - "$OUT/reference.txt" "$OUT/augmented.txt" "${AUGMENTED_FLAGS[*]}" >"$OUT/robustness.md" <<'PY'
import sys
ref, aug = (dict(l.split() for l in open(p)) for p in sys.argv[1:3])
sets = ["test", "shifted", "rotated", "thickened"]
print("| model | plain test | shifted 3 px | rotated 20 deg | thickened 1.5 steps |")
print("|---|---|---|---|---|")
for name, r in (("reference recipe", ref), ("augmented recipe", aug)):
    print("| %s | %s |" % (name, " | ".join("%.2f%%" % (100 * float(r[s])) for s in sets)))
print("| difference (points) | %s |" % " | ".join("%+.2f" % (100 * (float(aug[s]) - float(ref[s]))) for s in sets))
print()
print("augmented recipe: mnistd train %s" % sys.argv[3])
PY
cat "$OUT/robustness.md"
