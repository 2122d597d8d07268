#!/usr/bin/env bash
# The command line on the daemon's binary: mnistd train / evaluate / predict.
# --help describes every flag the code accepts; a short training run writes a
# model that evaluate and predict read; bad flags and files exit with a
# clear message and status 2 (usage) or 1 (failure); augmented training is
# reproducible and recorded; evaluate --set reports the transformed sets.
. "$(dirname "$0")/../contract/lib.sh"
lib_init
B=$MNISTD_BIN

# --help of each command names every flag its parser accepts
for cmd in train evaluate predict; do
  "$B" $cmd --help >"$WORK/$cmd.help" 2>&1
  rc=$?
  src_flags=$(awk -v c="cli_$cmd" '$0 ~ "^int "c"\\(" {on=1} on && /^}/ {on=0} on' "$ROOT/cmd/cli.c" |
              grep -oE '"--[a-z-]+"' | tr -d '"' | sort -u)
  missing=""
  for f in $src_flags; do grep -q -- "$f" "$WORK/$cmd.help" || missing="$missing $f"; done
  check "cli_${cmd}_help" "exit $rc, flags missing from --help:$missing" test "$rc" = 0 -a -z "$missing" -a -n "$src_flags"
done
"$B" --help >"$WORK/main.help" 2>&1
check cli_main_help "no command list" grep -q "mnistd train" "$WORK/main.help"

"$B" train --epochs 0 --data /nonexistent >"$WORK/o" 2>&1
rc=$?
check cli_train_bad_epochs "exit $rc: $(cat "$WORK/o")" test "$rc" = 2
# the ranges of model/train.h (the API's): one past each end is refused
for bad in "--epochs 101" "--batch-size=1025" "--lr 1.5" "--validation-split 1" "--seed -1" \
           "--limit 100000001" "--threads 65" "--epochs 2.0" "--augment-shift 4.5" \
           "--augment-rotate -1" "--augment-scale 0.6" "--augment-thicken 2.1" "--augment-thin 1.5"; do
  "$B" train $bad --data /nonexistent >"$WORK/o" 2>&1
  rc=$?
  check "cli_train_range_${bad%% *}" "$bad: exit $rc: $(cat "$WORK/o")" \
    test "$rc" = 2 -a -n "$(grep 'bad value for --' "$WORK/o")"
done
"$B" train --bogus >"$WORK/o" 2>&1
check cli_train_unknown_flag "exit $?" test $? = 2
MNISTD_DATA= "$B" train --out "$WORK/x.safetensors" >"$WORK/o" 2>&1
rc=$?
check cli_train_no_data "exit $rc: $(cat "$WORK/o")" test "$rc" = 2 -a -n "$(grep -i 'no data directory' "$WORK/o")"
"$B" train --data "$WORK" --out "$WORK/x.safetensors" >"$WORK/o" 2>&1
rc=$?
check cli_train_missing_files "exit $rc: $(cat "$WORK/o")" test "$rc" = 1 -a -n "$(grep -i "$WORK" "$WORK/o")"
"$B" evaluate --model "$WORK/none.safetensors" --data "$WORK" >"$WORK/o" 2>&1
check cli_evaluate_missing_model "exit $?" test $? = 1
"$B" predict --model "$ROOT/models/mnist-cnn.safetensors" "$WORK/none.png" >"$WORK/o" 2>&1
rc=$?
check cli_predict_missing_file "exit $rc: $(cat "$WORK/o")" test "$rc" = 1
# a file over the 64 MiB limit (sparse: no disk spent) says so, not "Success"
truncate -s 65M "$WORK/big.png"
"$B" predict --model "$ROOT/models/mnist-cnn.safetensors" "$WORK/big.png" >"$WORK/o" 2>&1
rc=$?
check cli_predict_file_over_limit "exit $rc: $(cat "$WORK/o")" \
  test "$rc" = 1 -a -n "$(grep 'larger than 64 MiB' "$WORK/o")" -a -z "$(grep -i success "$WORK/o")"

need_data cli_train_run
M=$WORK/m.safetensors
"$B" train --data "$MNISTD_DATA" --limit 2000 --epochs 2 --seed 5 --out "$M" >"$WORK/train.out" 2>"$WORK/train.err"
rc=$?
check cli_train_run "exit $rc: $(tail -3 "$WORK/train.err")" test "$rc" = 0 -a -s "$M"
check cli_train_reports_epochs "no per-epoch lines: $(cat "$WORK/train.err")" \
  test "$(grep -c '^Epoch [12]/2: loss .* val_accuracy' "$WORK/train.err")" = 2
check cli_train_reports_test "$(cat "$WORK/train.out")" grep -q '^test_loss [0-9.]* test_accuracy 0\.[5-9]' "$WORK/train.out"
"$B" evaluate --model "$M" --data "$MNISTD_DATA" >"$WORK/eval.out" 2>&1
acc_train=$(awk '/^test_loss/ {print $4}' "$WORK/train.out")
acc_eval=$(awk '$1 == "accuracy" {print $2}' "$WORK/eval.out")
check cli_evaluate_agrees "train says $acc_train, evaluate says $acc_eval" test -n "$acc_eval" -a "$acc_train" = "$acc_eval"
check cli_evaluate_confusion "no 10x10 matrix" \
  test "$(sed -n '/^confusion/,$p' "$WORK/eval.out" | tail -n +2 | awk 'NF == 10' | wc -l)" = 10
"$MKPNG" --mnist "$MNISTD_DATA" --index 0 -o "$WORK/d0.png"
"$B" predict --model "$M" "$WORK/d0.png" >"$WORK/pred.out" 2>&1
check cli_predict "$(cat "$WORK/pred.out")" grep -q "d0.png 7 " "$WORK/pred.out"
# same seed, same threads: the same file bytes apart from the creation time
"$B" train --data "$MNISTD_DATA" --limit 2000 --epochs 2 --seed 5 --quiet --out "$WORK/m2.safetensors" >/dev/null 2>&1
tail -c 373288 "$M" >"$WORK/t1"; tail -c 373288 "$WORK/m2.safetensors" >"$WORK/t2"
check cli_train_reproducible "two runs with the same seed differ" cmp -s "$WORK/t1" "$WORK/t2"
# augmented: reproducible too, other weights than without, the settings in the recipe
aug=(--data "$MNISTD_DATA" --limit 2000 --epochs 2 --seed 5 --quiet --augment-shift 2 --augment-rotate 10
     --augment-scale 0.1 --augment-thicken 1 --augment-thin 0.5)
"$B" train "${aug[@]}" --out "$WORK/a1.safetensors" >/dev/null 2>&1
"$B" train "${aug[@]}" --out "$WORK/a2.safetensors" >/dev/null 2>&1
tail -c 373288 "$WORK/a1.safetensors" >"$WORK/t3"; tail -c 373288 "$WORK/a2.safetensors" >"$WORK/t4"
check cli_train_augmented_reproducible "two augmented runs with the same seed differ" cmp -s "$WORK/t3" "$WORK/t4"
check cli_train_augmented_differs "augmentation changed no weight" bash -c "! cmp -s '$WORK/t1' '$WORK/t3'"
check cli_train_augmented_recipe "no augment in the model's recipe" \
  grep -qF '\"augment\":{\"shift\":2,\"rotate\":10,\"scale\":0.1,\"thicken\":1,\"thin\":0.5}' "$WORK/a1.safetensors"
check cli_train_plain_recipe_unchanged "the reference recipe's record names augment" \
  bash -c "! grep -q augment '$M'"
# evaluate on the transformed copies of the test set
"$B" evaluate --model "$M" --data "$MNISTD_DATA" --set transformed >"$WORK/evalt.out" 2>&1
rc=$?
check cli_evaluate_transformed "exit $rc: $(grep '^set' "$WORK/evalt.out")" \
  test "$rc" = 0 -a "$(awk '$1 == "set" {print $2}' "$WORK/evalt.out" | tr '\n' ' ')" = "test shifted rotated thickened " \
  -a "$(awk '$1 == "set" && $2 == "test" {print $4}' "$WORK/evalt.out")" = "$acc_eval"
"$B" evaluate --model "$M" --data "$MNISTD_DATA" --set sheared >"$WORK/o" 2>&1
rc=$?
check cli_evaluate_bad_set "exit $rc: $(cat "$WORK/o")" test "$rc" = 2 -a -n "$(grep 'unknown set' "$WORK/o")"
[ "$FAILS" -eq 0 ]
