#!/usr/bin/env node
/* tests/deploy/kserve.js -- offline checks of the KServe example in
 * docker/k8s/kserve/ (a ServingRuntime and an InferenceService). No cluster
 * runs where the tests run, so the files are read the way KServe and the
 * API server would:
 *   - every YAML document parses strictly (no duplicate keys, no warnings);
 *   - the KServe objects match a schema of the fields KServe's CRDs define
 *     (serving.kserve.io v1alpha1 ServingRuntime, v1beta1 InferenceService),
 *     no unknown field at the levels written here;
 *   - the runtime's containers are valid Kubernetes containers (checked as
 *     a Pod with kubernetes-models);
 *   - references: the InferenceService names the runtime and one of its
 *     model formats, asks for protocolVersion v2, which the runtime lists;
 *     the claim of a pvc:// storageUri exists in docker/k8s; the container
 *     is kserve-container, reads its model under /mnt/models, listens on
 *     0.0.0.0:8080 (KServe's port) and is probed on the v2 health paths;
 *     every MNISTD_* variable and every --flag is a real setting of
 *     `mnistd serve --help`, and the model name after {{.Name}} is replaced
 *     by the InferenceService's name is one --model-name accepts.
 *
 *   node kserve.js DIR K8SDIR HELP
 * Prints PASS/FAIL lines; exit status 1 if any failed. */
'use strict';

const fs = require('fs');
const path = require('path');

const { report, parseYamlFile, failures } = require('./check.js');

/* The fields of KServe's CRDs used or allowed here (KServe's
 * ServingRuntimeSpec and PredictorSpec / ModelSpec). */
const obj = (props, required = []) => ({ type: 'object', additionalProperties: false, properties: props, required });
const any = {};
const str = { type: 'string' };
const meta = obj({ name: { type: 'string', pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' }, namespace: str,
                   labels: { type: 'object' }, annotations: { type: 'object' } }, ['name']);
const servingRuntime = obj({
    apiVersion: { const: 'serving.kserve.io/v1alpha1' },
    kind: { const: 'ServingRuntime' },
    metadata: meta,
    spec: obj({
        supportedModelFormats: { type: 'array', minItems: 1, items: obj({
            name: str, version: str, autoSelect: { type: 'boolean' }, priority: { type: 'integer', minimum: 1 },
        }, ['name']) },
        protocolVersions: { type: 'array', minItems: 1,
                            items: { enum: ['v1', 'v2', 'grpc-v1', 'grpc-v2'] } },
        multiModel: { type: 'boolean' }, disabled: { type: 'boolean' },
        containers: { type: 'array', minItems: 1, items: { type: 'object' } },
        volumes: any, nodeSelector: any, affinity: any, tolerations: any, imagePullSecrets: any,
        annotations: any, labels: any, replicas: any, storageHelper: any, builtInAdapter: any,
        grpcEndpoint: any, grpcDataEndpoint: any, httpDataEndpoint: any, hostIPC: any, workerSpec: any,
    }, ['supportedModelFormats', 'containers']),
}, ['apiVersion', 'kind', 'metadata', 'spec']);
const inferenceService = obj({
    apiVersion: { const: 'serving.kserve.io/v1beta1' },
    kind: { const: 'InferenceService' },
    metadata: meta,
    spec: obj({
        predictor: obj({
            minReplicas: { type: 'integer', minimum: 0 }, maxReplicas: { type: 'integer', minimum: 0 },
            scaleTarget: any, scaleMetric: any, containerConcurrency: any, timeout: any,
            serviceAccountName: any, nodeSelector: any, tolerations: any, affinity: any, volumes: any,
            model: obj({
                modelFormat: obj({ name: str, version: str }, ['name']),
                runtime: str,
                protocolVersion: { enum: ['v1', 'v2', 'grpc-v2'] },
                storageUri: { type: 'string', pattern: '^(pvc|gs|s3|https?|hf|oci)://' },
                args: any, env: any, resources: any, ports: any,
            }, ['modelFormat']),
        }, ['model']),
        transformer: any, explainer: any,
    }, ['predictor']),
}, ['apiVersion', 'kind', 'metadata', 'spec']);

function main(args) {
    const [dir, k8sDir, helpFile] = args;
    if (!dir || !k8sDir || !helpFile) {
        console.error('usage: node kserve.js DIR K8SDIR HELP');
        return 2;
    }
    const help = fs.readFileSync(helpFile, 'utf8');
    const settings = new Set(help.match(/\bMNISTD_[A-Z0-9_]+\b/g) || []);
    const flags = new Set(help.match(/--[a-z][a-z0-9-]*/g) || []);
    const docs = [];
    for (const f of fs.readdirSync(dir).filter((x) => /\.ya?ml$/.test(x)).sort()) {
        try {
            parseYamlFile(path.join(dir, f)).forEach((doc) => docs.push({ file: f, doc }));
            report(`kserve_parses_${f}`, []);
        } catch (e) {
            report(`kserve_parses_${f}`, [e.message]);
        }
    }
    const Ajv = require('ajv');
    const ajv = new Ajv({ allErrors: true, strict: false });
    const validators = { ServingRuntime: ajv.compile(servingRuntime), InferenceService: ajv.compile(inferenceService) };
    const runtimes = docs.filter((d) => d.doc.kind === 'ServingRuntime').map((d) => d.doc);
    const services = docs.filter((d) => d.doc.kind === 'InferenceService').map((d) => d.doc);
    for (const d of docs) {
        const v = validators[d.doc.kind];
        const name = `kserve_schema_${d.doc.kind || 'unknown'}`;
        if (!v) report(name, [`${d.file}: kind ${d.doc.kind} is not a ServingRuntime or InferenceService`]);
        else report(name, v(d.doc) ? [] : [ajv.errorsText(v.errors)]);
    }
    report('kserve_objects_present', runtimes.length && services.length ? []
        : ['want at least one ServingRuntime and one InferenceService']);

    // The runtime's containers as a Pod's (the Kubernetes schema).
    const { Pod } = require('kubernetes-models/v1/Pod');
    for (const rt of runtimes) {
        try {
            new Pod({ metadata: { name: 'x' }, spec: { containers: (rt.spec || {}).containers || [] } }).validate();
            report('kserve_runtime_containers_k8s_schema', []);
        } catch (e) {
            report('kserve_runtime_containers_k8s_schema', [String(e.message).split('\n').slice(0, 5).join(' ')]);
        }
    }

    const problems = [];
    const claims = new Set();
    for (const f of fs.readdirSync(k8sDir).filter((x) => /\.ya?ml$/.test(x)))
        for (const doc of parseYamlFile(path.join(k8sDir, f)))
            if (doc.kind === 'PersistentVolumeClaim') claims.add(doc.metadata.name);
    for (const isvc of services) {
        const n = `InferenceService ${isvc.metadata && isvc.metadata.name}`;
        const m = ((isvc.spec || {}).predictor || {}).model || {};
        const rt = runtimes.find((r) => r.metadata.name === m.runtime);
        if (!rt) { problems.push(`${n}: runtime ${m.runtime} is not defined here`); continue; }
        const formats = (rt.spec.supportedModelFormats || []).map((f) => f.name);
        if (!m.modelFormat || !formats.includes(m.modelFormat.name))
            problems.push(`${n}: model format ${m.modelFormat && m.modelFormat.name} is not one of ${formats}`);
        if (m.protocolVersion !== 'v2') problems.push(`${n}: protocolVersion is ${m.protocolVersion}, want v2`);
        if (!(rt.spec.protocolVersions || []).includes(m.protocolVersion))
            problems.push(`${n}: runtime ${rt.metadata.name} does not list protocol ${m.protocolVersion}`);
        const pvc = /^pvc:\/\/([^/]+)/.exec(m.storageUri || '');
        if (pvc && !claims.has(pvc[1])) problems.push(`${n}: claim ${pvc[1]} is not defined in ${k8sDir}`);
        const c = (rt.spec.containers || []).find((x) => x.name === 'kserve-container');
        if (!c) { problems.push(`runtime ${rt.metadata.name}: no container named kserve-container`); continue; }
        const env = new Map((c.env || []).map((e) => [e.name, e.value]));
        for (const k of env.keys())
            if (k.startsWith('MNISTD_') && !settings.has(k)) problems.push(`${k} is not a mnistd setting`);
        const args = (c.args || []).map((a) => a.replace(/\{\{\.Name\}\}/g, isvc.metadata.name));
        if (args[0] !== 'serve') problems.push(`the container's first argument is ${args[0]}, want serve`);
        const opt = new Map();
        for (const a of args.slice(1)) {
            const mm = /^(--[a-z][a-z0-9-]*)(?:=(.*))?$/.exec(a);
            if (!mm || !flags.has(mm[1])) problems.push(`argument ${a} is not a flag of mnistd serve`);
            else opt.set(mm[1], mm[2]);
        }
        const name = opt.get('--model-name') || env.get('MNISTD_MODEL_NAME') || 'mnist';
        if (!/^[A-Za-z0-9_.-]{1,63}$/.test(name) || name === '.' || name === '..')
            problems.push(`model name ${name} is not one --model-name accepts`);
        if (name !== isvc.metadata.name)
            problems.push(`the v2 model name ${name} is not the InferenceService's name ${isvc.metadata.name}`);
        const model = opt.get('--model') || env.get('MNISTD_MODEL') || '';
        if (!model.startsWith('/mnt/models/')) problems.push(`the model ${model} is not under /mnt/models`);
        if (env.get('MNISTD_BIND') !== '0.0.0.0') problems.push('MNISTD_BIND is not 0.0.0.0');
        const port = Number(opt.get('--port') || env.get('MNISTD_PORT') || 8080);
        if (port !== 8080) problems.push(`the daemon listens on ${port}; KServe sends to 8080`);
        if (!(c.ports || []).some((p) => p.containerPort === port)) problems.push(`no containerPort ${port}`);
        const probe = (p, want) => {
            if (!p || !p.httpGet) return problems.push(`no httpGet ${want} probe`);
            if (p.httpGet.path !== want) problems.push(`probe on ${p.httpGet.path}, want ${want}`);
            if (Number(p.httpGet.port) !== port) problems.push(`${want} probe on port ${p.httpGet.port}`);
        };
        probe(c.readinessProbe, '/v2/health/ready');
        probe(c.livenessProbe, '/v2/health/live');
    }
    report('kserve_references', problems);
    return failures() ? 1 : 0;
}

process.exitCode = main(process.argv.slice(2));
