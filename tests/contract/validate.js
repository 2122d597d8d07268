// Checks recorded HTTP exchanges against openapi.yaml.
//
//   node validate.js SPEC CAPTURE.jsonl
//
// CAPTURE has one JSON object per line: method, path, status, content_type,
// body (a file) and headers (a file), as written by lib.sh's req. For each
// exchange: the operation must exist (or the response must be the spec's
// NotFound / MethodNotAllowed convention), the status must be declared, the
// media type must be declared, declared headers must be present, and a JSON
// body must validate against the declared schema. Prints PASS/FAIL lines.
'use strict';
const fs = require('fs');
const SwaggerParser = require('@apidevtools/swagger-parser');
const Ajv2020 = require('ajv/dist/2020');
const addFormats = require('ajv-formats');

function fail(msg) { console.log('FAIL ' + msg); process.exitCode = 1; }

// Finds the path item for a concrete path, templates ({id}) included.
function findPath(spec, path) {
  const p = path.split('?')[0];
  if (spec.paths[p]) return spec.paths[p];
  for (const [tmpl, item] of Object.entries(spec.paths)) {
    if (!tmpl.includes('{')) continue;
    const re = new RegExp('^' + tmpl.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\\?\{[^}]+\\?\}/g, '[^/]+') + '$');
    if (re.test(p)) return item;
  }
  return null;
}

function readHeaders(file) {
  const h = {};
  let text = '';
  try { text = fs.readFileSync(file, 'latin1'); } catch (e) { return h; }
  // With 100-continue or redirects there can be several blocks: keep the last.
  const blocks = text.split(/\r?\n\r?\n/).filter((b) => b.trim());
  const last = blocks.length ? blocks[blocks.length - 1] : '';
  for (const line of last.split(/\r?\n/).slice(1)) {
    const i = line.indexOf(':');
    if (i > 0) h[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return h;
}

async function main() {
  const [specPath, capturePath] = process.argv.slice(2);
  if (!specPath || !capturePath) {
    console.error('usage: node validate.js SPEC CAPTURE.jsonl');
    process.exit(2);
  }
  // validate() checks the document against the OpenAPI schema and resolves $refs.
  const spec = await SwaggerParser.validate(specPath);
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  const validators = new Map();
  const lines = fs.readFileSync(capturePath, 'utf8').split('\n').filter((l) => l.trim());
  let checked = 0, bad = 0;
  const seen = new Set();
  for (const line of lines) {
    const ex = JSON.parse(line);
    const where = `${ex.method} ${ex.path} -> ${ex.status}`;
    const problems = [];
    const item = findPath(spec, ex.path);
    let resp = null;
    if (!item) {
      if (ex.status !== 404) problems.push('path not in the spec and status is not 404');
      resp = spec.components.responses.NotFound;
    } else {
      const op = item[ex.method.toLowerCase()] || (ex.method === 'HEAD' ? item.get : undefined);
      if (!op) {
        if (ex.status !== 405) problems.push('method not in the spec and status is not 405');
        resp = spec.components.responses.MethodNotAllowed;
      } else {
        resp = op.responses[String(ex.status)] || op.responses[String(ex.status)[0] + 'XX'] || op.responses.default;
        if (!resp) problems.push(`status ${ex.status} is not declared for ${ex.method} ${ex.path}`);
        else seen.add(`${ex.method === 'HEAD' ? 'GET' : ex.method} ${ex.path.split('?')[0]} ${ex.status}`);
      }
    }
    if (resp) {
      const headers = readHeaders(ex.headers);
      // A declared header must be present, unless it says `required: false`
      // (a header only some answers of that status carry).
      for (const [name, h] of Object.entries(resp.headers || {}))
        if (!(name.toLowerCase() in headers) && !(h && h.required === false))
          problems.push(`declared header ${name} is missing`);
      const media = (ex.content_type || '').split(';')[0].trim().toLowerCase();
      const content = resp.content || {};
      if (Object.keys(content).length && !content[media]) {
        problems.push(`content type '${media}' is not declared (declared: ${Object.keys(content).join(', ')})`);
      } else if (content[media] && ex.method !== 'HEAD' && media === 'application/json') {
        const schema = content[media].schema;
        let body;
        try { body = JSON.parse(fs.readFileSync(ex.body, 'utf8')); } catch (e) {
          problems.push('body is not JSON: ' + e.message);
        }
        if (body !== undefined && schema) {
          let v = validators.get(schema);
          if (!v) { v = ajv.compile(schema); validators.set(schema, v); }
          if (!v(body)) problems.push('body does not match the schema: ' + ajv.errorsText(v.errors));
        }
      } else if (content[media] && ex.method !== 'HEAD') {
        const text = fs.readFileSync(ex.body, 'utf8');
        if (content[media].schema && content[media].schema.type === 'string' && text.length === 0)
          problems.push('empty body');
      }
    }
    checked++;
    if (problems.length) { bad++; fail(`contract ${where}: ${problems.join('; ')}`); }
  }
  console.log(`contract: ${checked} exchanges checked, ${bad} not as specified`);
  // Which declared responses did the tests exercise? (informational)
  const missing = [];
  for (const [p, item] of Object.entries(spec.paths))
    for (const m of ['get', 'post', 'put', 'delete', 'patch'])
      if (item[m]) for (const s of Object.keys(item[m].responses))
        if (!seen.has(`${m.toUpperCase()} ${p} ${s}`)) missing.push(`${m.toUpperCase()} ${p} ${s}`);
  if (missing.length) console.log('contract: declared but not exercised: ' + missing.join(', '));
  if (checked === 0) fail('contract: no exchange recorded');
  else if (bad === 0) console.log(`PASS contract_responses_match_openapi (${checked} exchanges)`);
}

main().catch((e) => { fail('contract: ' + (e && e.message ? e.message : e)); });
