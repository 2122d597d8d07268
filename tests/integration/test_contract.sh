#!/usr/bin/env bash
# Contract test: openapi.yaml lints clean (@redocly/cli), and every response
# the HTTP integration tests receive (tests/integration/test_http.sh,
# test_train.sh, test_v2_http.sh, test_models.sh and test_explain.sh, run
# here with their exchanges recorded) matches openapi.yaml: declared status,
# media type, headers and JSON schema (tests/contract/validate.js with Ajv).
# The npm packages are pinned in tests/contract/package-lock.json and
# installed with `npm ci`; the test SKIPs only when npm or its registry is
# unreachable.
. "$(dirname "$0")/../contract/lib.sh"
lib_init
need_data test_contract
C=$ROOT/tests/contract

if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
  skip test_contract "node/npm not installed"; exit 0
fi
if ! why=$(node "$ROOT/tests/node-engines.js" "$C" 2>&1); then
  fail test_contract_node_version "$why"; exit 1
fi
if [ ! -x "$C/node_modules/.bin/redocly" ] || ! (cd "$C" && npm ls --depth=0 >/dev/null 2>&1); then
  if ! (cd "$C" && timeout 300 npm ci --no-audit --no-fund >"$WORK/npm.log" 2>&1); then
    if grep -qiE 'ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|network' "$WORK/npm.log"; then
      skip test_contract "npm registry unreachable: $(grep -m1 -iE 'ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|network' "$WORK/npm.log")"
      exit 0
    fi
    fail test_contract_npm_ci "npm ci failed: $(tail -5 "$WORK/npm.log")"; exit 1
  fi
fi

if (cd "$C" && timeout 120 ./node_modules/.bin/redocly lint --config redocly.yaml "$ROOT/openapi.yaml") \
    >"$WORK/lint.log" 2>&1 && ! grep -qE 'You have [0-9]+ (warning|error)' "$WORK/lint.log"; then
  pass test_contract_openapi_lint
else
  fail test_contract_openapi_lint "$(tail -30 "$WORK/lint.log")"
fi

export MNISTD_CAPTURE=$WORK/capture.jsonl
: >"$MNISTD_CAPTURE"
if bash "$ROOT/tests/integration/test_http.sh" >"$WORK/http.log" 2>&1; then
  pass test_contract_http_run
else
  fail test_contract_http_run "test_http.sh failed: $(grep '^FAIL' "$WORK/http.log" | head -5)"
fi
# the training endpoints' exchanges too
if bash "$ROOT/tests/integration/test_train.sh" >"$WORK/train.log" 2>&1; then
  pass test_contract_train_run
else
  fail test_contract_train_run "test_train.sh failed: $(grep '^FAIL' "$WORK/train.log" | head -5)"
fi
# the v2 protocol's exchanges too
if bash "$ROOT/tests/integration/test_v2_http.sh" >"$WORK/v2.log" 2>&1; then
  pass test_contract_v2_run
else
  fail test_contract_v2_run "test_v2_http.sh failed: $(grep '^FAIL' "$WORK/v2.log" | head -5)"
fi
# and the model repository's
if bash "$ROOT/tests/integration/test_models.sh" >"$WORK/models.log" 2>&1; then
  pass test_contract_models_run
else
  fail test_contract_models_run "test_models.sh failed: $(grep '^FAIL' "$WORK/models.log" | head -5)"
fi
# and the explanations'
if bash "$ROOT/tests/integration/test_explain.sh" >"$WORK/explain.log" 2>&1; then
  pass test_contract_explain_run
else
  fail test_contract_explain_run "test_explain.sh failed: $(grep '^FAIL' "$WORK/explain.log" | head -5)"
fi
node "$C/validate.js" "$ROOT/openapi.yaml" "$MNISTD_CAPTURE" | tee "$WORK/validate.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || FAILS=$((FAILS + 1))
[ "$FAILS" -eq 0 ]
