#!/usr/bin/env bash
# The model repository (--model-dir) against the real daemon:
#   - the repository is seeded with the model file; a bad job (1 epoch,
#     2000 samples, learning rate 0.5) is kept as a version but not promoted
#     by default: /model and the /evaluate accuracy are unchanged; the same
#     job with "promote":"always" is promoted; one request rolls back;
#   - every error status of /models (404, 405, 409, 422, 401 with a token);
#   - after SIGTERM and a restart the active version and the jobs are
#     there and ids continue; a job killed with SIGKILL shows interrupted;
#   - a second daemon on the repository only reads it (POST /train 409);
#     the command line refuses to change it while a daemon owns it;
#   - corrupt and foreign files are reported and left in place; an
#     unreadable active version stops the startup with the command to fix it;
#   - --keep-models; the metrics; a single model file keeps a bad job out.
# With MNISTD_CAPTURE=FILE every exchange is recorded for the contract test.
. "$(dirname "$0")/../contract/lib.sh"
models_init test_models

start_daemon a --model-dir "$R" --model "$MODEL" --data "$D" || { fail test_models_start "daemon did not start"; exit 1; }
req GET /models
v0=$(jget "$body" 'd["models"][0]["version"]')
check test_models_seeded "status $status $(head -c 300 "$body")" \
  test "$status" = 200 -a "$(jget "$body" 'len(d["models"])')" = 1 -a "$(jget "$body" 'd["active"]')" = "$v0" \
  -a "$(jget "$body" 'd["models"][0]["active"]')" = True -a -f "$R/versions/$v0.safetensors"
req GET /model
check test_models_model_is_active "model $(jget "$body" 'd["version"]') active $v0" test "$(jget "$body" 'd["version"]')" = "$v0"
req POST /evaluate
acc0=$(jget "$body" 'd["accuracy"]')

# ---- the bad job: kept, not promoted ----------------------------------------------
req POST /train -H 'Content-Type: application/json' -d '{"epochs":1,"limit":2000,"learning_rate":0.5}'
j1=$(jget "$body" 'd["id"]')
check test_models_job_promote_default "$(head -c 200 "$body")" \
  test "$status" = 202 -a "$(jget "$body" 'd["promote"]')" = if_better -a "$(jget "$body" 'd["promoted"]')" = None
wait_job "$j1"
vb=$(jget "$body" 'd["model_version"]')
echo "  bad job: $(jget "$body" 'd["promotion"]')"
check test_models_bad_job_not_promoted "$(jget "$body" '{k: d[k] for k in ("status","promoted","promotion","error")}')" \
  test "$(jget "$body" 'd["status"]')" = succeeded -a "$(jget "$body" 'd["promoted"]')" = False \
  -a -n "$(jget "$body" 'd["promotion"]' | grep "$(jget "$body" '"%.4f" % d["test"]["accuracy"]')" | grep "$v0")"
req GET /model
check test_models_bad_job_model_unchanged "served $(jget "$body" 'd["version"]')" test "$(jget "$body" 'd["version"]')" = "$v0"
req POST /evaluate
check test_models_bad_job_accuracy_unchanged "evaluate $(jget "$body" 'd["accuracy"]') before $acc0" \
  test "$(jget "$body" 'd["accuracy"]')" = "$acc0" -a "$(jget "$body" 'd["model_version"]')" = "$v0"
req GET "/models/$vb"
check test_models_bad_job_kept "status $status $(head -c 300 "$body")" \
  test "$status" = 200 -a "$(jget "$body" 'd["active"]')" = False -a "$(jget "$body" 'd["job_id"]')" = "$j1" \
  -a "$(jget "$body" 'd["recipe"]["learning_rate"]')" = 0.5

# ---- the same job with promote always -------------------------------------------------
req POST /train -H 'Content-Type: application/json' -d '{"epochs":1,"limit":2000,"learning_rate":0.5,"seed":2,"promote":"always"}'
j2=$(jget "$body" 'd["id"]')
wait_job "$j2"
vc=$(jget "$body" 'd["model_version"]')
check test_models_always_promoted "$(jget "$body" '{k: d[k] for k in ("status","promoted","promotion","error")}')" \
  test "$(jget "$body" 'd["status"]')" = succeeded -a "$(jget "$body" 'd["promoted"]')" = True -a "$vc" != "$v0"
req POST /predict -H 'Content-Type: image/png' --data-binary @"$WORK/d0.png"
check test_models_always_served "$(head -c 200 "$body")" test "$(jget "$body" 'd["model_version"]')" = "$vc"
req GET /models
check test_models_list "$(head -c 400 "$body")" \
  test "$(jget "$body" 'len(d["models"])')" = 3 -a "$(jget "$body" 'd["active"]')" = "$vc" \
  -a "$(jget "$body" 'd["previous"]')" = "$v0" -a "$(jget "$body" 'd["models"][0]["version"]')" = "$vc" \
  -a "$(jget "$body" '[m["version"] for m in d["models"] if m["previous"]]')" = "['$v0']"

# ---- one request rolls back -----------------------------------------------------------
req POST "/models/$v0/activate"
check test_models_rollback "status $status $(head -c 200 "$body")" \
  test "$status" = 200 -a "$(jget "$body" 'd["version"]')" = "$v0" -a "$(jget "$body" 'd["active"]')" = True
req GET /model
check test_models_rollback_served "served $(jget "$body" 'd["version"]')" test "$(jget "$body" 'd["version"]')" = "$v0"
req POST /evaluate
check test_models_rollback_accuracy "evaluate $(jget "$body" 'd["accuracy"]') before $acc0" test "$(jget "$body" 'd["accuracy"]')" = "$acc0"
req GET /models
check test_models_rollback_previous "previous $(jget "$body" 'd["previous"]')" test "$(jget "$body" 'd["previous"]')" = "$vc"

# ---- error statuses ------------------------------------------------------------------
req GET /models/0123456789abcdef
check test_models_404_unknown "status $status" test "$status" = 404
req GET /models/NOT-A-VERSION
check test_models_404_malformed "status $status" test "$status" = 404
req POST /models/0123456789abcdef/activate
check test_models_404_activate_unknown "status $status" test "$status" = 404
req POST "/models/$v0/nothing"
check test_models_404_subpath "status $status" test "$status" = 404
req DELETE "/models/$v0"
check test_models_409_delete_active "status $status $(head -c 200 "$body")" test "$status" = 409
req DELETE "/models/$vc"
check test_models_409_delete_previous "status $status $(head -c 200 "$body")" test "$status" = 409
req PUT /models
check test_models_405_models "status $status allow $(resp_header Allow)" test "$status" = 405 -a -n "$(resp_header Allow)"
req GET "/models/$v0/activate"
check test_models_405_activate_get "status $status allow $(resp_header Allow)" test "$status" = 405 -a "$(resp_header Allow)" = POST
req POST "/models/$v0"
check test_models_405_version_post "status $status" test "$status" = 405
req POST /train -H 'Content-Type: application/json' -d '{"promote":"sometimes"}'
check test_models_422_promote "status $status field $(jget "$body" 'd["field"]')" \
  test "$status" = 422 -a "$(jget "$body" 'd["field"]')" = promote
# a damaged version file: 422, nothing changes, and it is not deleted
bad=00000000000000aa
head -c 1000 "$R/versions/$v0.safetensors" >"$R/versions/$bad.safetensors"
req POST "/models/$bad/activate"
check test_models_422_activate_corrupt "status $status $(head -c 200 "$body")" test "$status" = 422
req GET "/models/$bad"
check test_models_422_get_corrupt "status $status" test "$status" = 422
req GET /model
check test_models_422_model_unchanged "served $(jget "$body" 'd["version"]')" test "$(jget "$body" 'd["version"]')" = "$v0"
check test_models_422_active_record_unchanged "$(cat "$R/active")" grep -q "\"active\":\"$v0\"" "$R/active"
req DELETE "/models/$vb"
check test_models_204_delete "status $status" test "$status" = 204 -a ! -e "$R/versions/$vb.safetensors"
req GET "/models/$vb"
check test_models_404_deleted "status $status" test "$status" = 404

# ---- metrics -----------------------------------------------------------------------
check test_models_metrics "$(curl -s "http://127.0.0.1:$PORT/metrics" | grep -E '^mnistd_(model_activations|training_promotions|model_versions)' | tr '\n' ' ')" \
  test "$(metric 'mnistd_model_activations_total{reason="startup"}')" = 1 \
  -a "$(metric 'mnistd_model_activations_total{reason="job"}')" = 1 \
  -a "$(metric 'mnistd_model_activations_total{reason="api"}')" = 1 \
  -a "$(metric 'mnistd_training_promotions_total{outcome="promoted"}')" = 1 \
  -a "$(metric 'mnistd_training_promotions_total{outcome="not_promoted"}')" = 1 \
  -a "$(metric mnistd_model_versions)" = 2 -a -n "$(metric "mnistd_model_info{version=\"$v0\",architecture=\"mnist-cnn-v1\",source=\"$R/versions/$v0.safetensors\"}")"

# ---- one owner: a second daemon reads, the command line refuses --------------------------
PID_A=$PID; PORT_A=$PORT
start_daemon reader --model-dir "$R" --data "$D" || fail test_models_reader_start "did not start"
req GET /model
check test_models_reader_serves "served $(jget "$body" 'd["version"]')" test "$(jget "$body" 'd["version"]')" = "$v0"
req POST /train -H 'Content-Type: application/json' -d '{"epochs":1,"limit":500}'
check test_models_reader_train_409 "status $status $(head -c 300 "$body")" \
  test "$status" = 409 -a -n "$(jget "$body" 'd["detail"]' | grep "locked by process $PID_A")"
req POST "/models/$vc/activate"
check test_models_reader_activate_409 "status $status" test "$status" = 409
req GET /models
check test_models_reader_lists "status $status writable $(jget "$body" 'd["writable"]')" \
  test "$status" = 200 -a "$(jget "$body" 'd["writable"]')" = False
stop_daemon
PID=$PID_A; PORT=$PORT_A
"$MNISTD_BIN" models activate "$vc" --model-dir "$R" >"$WORK/cli.out" 2>&1
rc=$?
check test_models_cli_refused_while_owned "exit $rc: $(cat "$WORK/cli.out")" \
  test "$rc" = 1 -a -n "$(grep "locked by process $PID_A" "$WORK/cli.out")"

# ---- SIGTERM and restart: active version and jobs are kept --------------------------------
stop_daemon
check test_models_sigterm_clean "exit status $?" test $? = 0
start_daemon b --model-dir "$R" --data "$D" --keep-models 2 || fail test_models_restart "did not start"
req GET /model
check test_models_restart_active "served $(jget "$body" 'd["version"]') want $v0" test "$(jget "$body" 'd["version"]')" = "$v0"
req GET /train
check test_models_restart_jobs "$(jget "$body" '[(j["id"], j["status"], j["promoted"]) for j in d["jobs"]]')" \
  test "$(jget "$body" '[(j["id"], j["status"], j["promoted"]) for j in d["jobs"]]')" = "[($j2, 'succeeded', True), ($j1, 'succeeded', False)]"
check test_models_restart_corrupt_reported "the damaged file is not reported" \
  grep -q "00000000000000aa.safetensors" "$LOG"
# a job killed with SIGKILL while it runs
req POST /train -H 'Content-Type: application/json' -d '{"epochs":20,"limit":20000,"promote":"never"}'
j3=$(jget "$body" 'd["id"]')
check test_models_restart_ids_continue "new job id $j3 after $j2" test "$j3" = $((j2 + 1))
wait_until 60 bash -c "curl -s http://127.0.0.1:$PORT/train/$j3 | grep -q '\"status\":\"running\"'"
kill -KILL "$PID"; wait "$PID" 2>/dev/null
start_daemon c --model-dir "$R" --data "$D" --keep-models 2 || fail test_models_restart2 "did not start"
req GET "/train/$j3"
check test_models_interrupted "$(head -c 400 "$body")" \
  test "$(jget "$body" 'd["status"]')" = failed -a -n "$(jget "$body" 'd["error"]' | grep interrupted)"
req GET /model
check test_models_kill_keeps_active "served $(jget "$body" 'd["version"]')" test "$(jget "$body" 'd["version"]')" = "$v0"
# retention: a new version with --keep-models 2 removes the oldest inactive one
req POST /train -H 'Content-Type: application/json' -d '{"epochs":1,"limit":1000,"seed":5,"promote":"never"}'
j4=$(jget "$body" 'd["id"]')
wait_job "$j4"
vd=$(jget "$body" 'd["model_version"]')
req GET /models
check test_models_keep_models "$(jget "$body" '[(m["version"], m["active"], m["previous"]) for m in d["models"]]')" \
  test "$(jget "$body" 'len(d["models"])')" = 2 -a "$(jget "$body" 'd["active"]')" = "$v0" \
  -a "$(jget "$body" 'd["previous"]')" = "$vc" -a ! -e "$R/versions/$vd.safetensors" \
  -a -e "$R/versions/$bad.safetensors"
stop_daemon

# ---- startup: a foreign file is reported and kept; an unreadable active version refuses ------
echo "notes" >"$R/versions/README.txt"
cp "$R/versions/$vc.safetensors" "$WORK/vc.bak"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d["active"]=sys.argv[2]; open(sys.argv[1],"w").write(json.dumps(d))' "$R/active" "$vc"
printf 'garbage' >"$R/versions/$vc.safetensors"
"$MNISTD_BIN" serve --port 0 --model-dir "$R" 2>"$WORK/refuse.log"
rc=$?
check test_models_unreadable_active_refuses "exit $rc: $(grep -i 'active version' "$WORK/refuse.log" | head -c 400)" \
  test "$rc" = 1 -a -n "$(grep "versions/$vc.safetensors" "$WORK/refuse.log" | grep 'mnistd models activate')"
check test_models_unreadable_active_kept "the unreadable file was changed" test "$(cat "$R/versions/$vc.safetensors")" = garbage
check test_models_foreign_reported_kept "README.txt" \
  test -f "$R/versions/README.txt" -a -n "$(grep 'README.txt' "$WORK/refuse.log")"
"$MNISTD_BIN" models activate "$v0" --model-dir "$R" >"$WORK/cli.out" 2>&1
check test_models_cli_activate "$(cat "$WORK/cli.out")" grep -q "activated $v0" "$WORK/cli.out"
"$MNISTD_BIN" models list --model-dir "$R" >"$WORK/list.out" 2>&1
check test_models_cli_list "$(cat "$WORK/list.out")" \
  test "$(grep -c "^$v0  active" "$WORK/list.out")" = 1
"$MNISTD_BIN" models delete "$v0" --model-dir "$R" >"$WORK/cli.out" 2>&1
check test_models_cli_delete_active_refused "exit $?: $(cat "$WORK/cli.out")" grep -q 'is the active version' "$WORK/cli.out"

# ---- the token protects activation and deletion ------------------------------------------
MNISTD_TOKEN=0123456789abcdef0123 start_daemon token --model-dir "$R" || fail test_models_token_start "did not start"
req POST "/models/$v0/activate"
check test_models_401_activate "status $status" test "$status" = 401
req DELETE "/models/$bad"
check test_models_401_delete "status $status" test "$status" = 401
req POST "/models/$v0/activate" -H 'Authorization: Bearer 0123456789abcdef0123'
check test_models_token_activate "status $status" test "$status" = 200
stop_daemon

# ---- a single model file: a bad job stays out of it ---------------------------------------
cp "$MODEL" "$WORK/single.safetensors"
sum=$(md5sum <"$WORK/single.safetensors")
start_daemon single --model "$WORK/single.safetensors" --data "$D" || fail test_models_single_start "did not start"
req GET /models
check test_models_single_no_repository "status $status" test "$status" = 404
req POST /train -H 'Content-Type: application/json' -d '{"epochs":1,"limit":2000,"learning_rate":0.5}'
wait_job "$(jget "$body" 'd["id"]')"
check test_models_single_not_promoted "$(jget "$body" 'd["promotion"]')" \
  test "$(jget "$body" 'd["promoted"]')" = False -a "$(md5sum <"$WORK/single.safetensors")" = "$sum"
stop_daemon
[ "$FAILS" -eq 0 ]
