// Offline checks of deploy/kubernetes, where no cluster can run:
//   1. each kustomization renders (`kubectl kustomize`), and every object
//      validates against Kubernetes' API schemas (kubernetes-models: types,
//      required fields, enums); the TFJob against the kubeflow.org/v1 fields
//      it uses, its pod templates against Kubernetes' own schema;
//   2. every pod the manifests would start is played as kubelet and the
//      operator would: its environment (ConfigMap, env, the namespace, the
//      pod's host name or completion index, the TFJob operator's TF_CONFIG),
//      $(VAR) expanded in its command and arguments, the command mapped to
//      the source tree's entrypoint. Run with --dry_run, `deepfm task` must
//      accept the flags and resolve a spec whose task is that pod and whose
//      addresses are the DNS names and ports the Services and pods really
//      have;
//   3. what the containers name exists: the volumes they mount, the claim,
//      the Secret's mount holding the token and certificates, the job folder
//      and data on the shared volume.
//   usage: node manifests_test.mjs DEEPFM_BIN REPO_ROOT
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { parseAllDocuments } from "yaml";

const [bin, repo] = process.argv.slice(2);
if (!bin || !repo) {
  console.error("usage: node manifests_test.mjs DEEPFM_BIN REPO_ROOT");
  process.exit(2);
}
const entrypoint = path.join(repo, "deploy/container/entrypoint.sh");
const imageEntrypoint = "/usr/local/bin/deepfm-entrypoint";
const namespace = "ml-team";
let passed = 0;
const failures = [];
function check(ok, what) {
  if (ok) passed++;
  else failures.push(what);
  return ok;
}

function render(dir) {
  const text = execFileSync("kubectl", ["kustomize", path.join(repo, dir)], { encoding: "utf8" });
  return parseAllDocuments(text).map((d) => d.toJSON()).filter(Boolean);
}

// Kubernetes' schema for a built-in kind, from kubernetes-models.
async function validateBuiltin(obj, where) {
  const [group, version] = obj.apiVersion.includes("/") ? obj.apiVersion.split("/") : ["", obj.apiVersion];
  const dir = group === "" ? version : `${group}/${version}`;
  let Model;
  try {
    Model = (await import(`kubernetes-models/${dir}/${obj.kind}`))[obj.kind];
  } catch (e) {
    return check(false, `${where}: no Kubernetes schema for ${obj.apiVersion} ${obj.kind}`);
  }
  try {
    new Model(obj).validate();
    return check(true, where);
  } catch (e) {
    return check(false, `${where}: ${e.message}`);
  }
}

async function validatePodTemplate(template, where) {
  const { PodTemplate } = await import("kubernetes-models/v1/PodTemplate");
  try {
    new PodTemplate({ metadata: { name: "t" }, template }).validate();
    return check(true, where);
  } catch (e) {
    return check(false, `${where}: ${e.message}`);
  }
}

// kubeflow.org/v1 TFJob: the fields of its API this project uses, nothing
// else accepted (a typo would otherwise be dropped by the server).
const tfjobReplicaTypes = ["PS", "Chief", "Master", "Worker", "Evaluator"];
async function validateTFJob(obj, where) {
  const allowed = (o, keys, at) => {
    for (const k of Object.keys(o ?? {})) check(keys.includes(k), `${where}: unknown field ${at}.${k}`);
  };
  allowed(obj, ["apiVersion", "kind", "metadata", "spec"], "");
  check(obj.apiVersion === "kubeflow.org/v1", `${where}: apiVersion ${obj.apiVersion}`);
  check(typeof obj.metadata?.name === "string", `${where}: metadata.name`);
  allowed(obj.spec, ["runPolicy", "tfReplicaSpecs", "successPolicy", "enableDynamicWorker"], "spec");
  const rp = obj.spec?.runPolicy ?? {};
  allowed(rp, ["cleanPodPolicy", "ttlSecondsAfterFinished", "activeDeadlineSeconds", "backoffLimit", "schedulingPolicy", "suspend"], "spec.runPolicy");
  if (rp.cleanPodPolicy !== undefined)
    check(["All", "Running", "None"].includes(rp.cleanPodPolicy), `${where}: cleanPodPolicy ${rp.cleanPodPolicy}`);
  if (rp.backoffLimit !== undefined)
    check(Number.isInteger(rp.backoffLimit) && rp.backoffLimit >= 0, `${where}: backoffLimit`);
  const specs = obj.spec?.tfReplicaSpecs ?? {};
  check(specs.PS && (specs.Chief || specs.Worker), `${where}: needs PS and Chief or Worker replicas`);
  for (const [type, r] of Object.entries(specs)) {
    const at = `${where} ${type}`;
    check(tfjobReplicaTypes.includes(type), `${at}: not a TFJob replica type`);
    allowed(r, ["replicas", "restartPolicy", "template"], `spec.tfReplicaSpecs.${type}`);
    check(Number.isInteger(r.replicas) && r.replicas >= 0, `${at}: replicas must be an integer, is ${JSON.stringify(r.replicas)}`);
    check(["Always", "OnFailure", "Never", "ExitCode"].includes(r.restartPolicy), `${at}: restartPolicy ${r.restartPolicy}`);
    await validatePodTemplate(r.template, `${at} template`);
    // The operator configures (TF_CONFIG, port) the container named "tensorflow".
    const c = (r.template?.spec?.containers ?? []).find((c) => c.name === "tensorflow");
    if (check(c, `${at}: no container named "tensorflow"`))
      check((c.ports ?? []).some((p) => p.name === "tfjob-port"), `${at}: no port named tfjob-port`);
  }
}

// What kubelet gives a container: envFrom ConfigMaps, then env (values,
// the namespace); $(VAR) in command and args expanded from it.
function podEnv(container, objects, extra) {
  const env = {};
  for (const from of container.envFrom ?? []) {
    const cm = objects.find((o) => o.kind === "ConfigMap" && o.metadata.name === from.configMapRef?.name);
    if (check(cm, `envFrom names ConfigMap ${from.configMapRef?.name}, which is not rendered`))
      Object.assign(env, cm.data);
  }
  for (const e of container.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.fieldRef?.fieldPath === "metadata.namespace") env[e.name] = namespace;
    else check(false, `env ${e.name}: a source this test cannot play`);
  }
  return Object.assign(env, extra);
}
function expand(s, env, where) {
  return s.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, name) => {
    check(name in env, `${where}: ${m} is not in the container's environment (kubelet would pass it literally)`);
    return env[name] ?? m;
  });
}

// Runs the container as the pod would, with --dry_run; returns the spec
// `deepfm task` resolved, or null.
function dryRun(container, env, where) {
  const cmd = (container.command ?? []).map((s) => expand(s, env, where));
  const args = (container.args ?? []).map((s) => expand(s, env, where));
  if (!check(cmd[0] === imageEntrypoint, `${where}: command ${JSON.stringify(cmd)} is not the image's entrypoint ${imageEntrypoint}`))
    return null;
  const r = spawnSync(entrypoint, [...cmd.slice(1), ...args, "--dry_run"], {
    env: { PATH: process.env.PATH, DEEPFM_BIN: bin, ...env },
    encoding: "utf8",
  });
  if (!check(r.status === 0, `${where}: deepfm task refused it (exit ${r.status}): ${r.stderr}${r.stdout}`)) return null;
  const spec = JSON.parse(r.stdout);
  return { spec, args };
}

// Every volume the container mounts exists, claims and Secrets it names are
// rendered or documented, and paths the flags name sit on a mount.
function checkMounts(pod, container, args, objects, where) {
  const volumes = Object.fromEntries((pod.volumes ?? []).map((v) => [v.name, v]));
  const mounts = container.volumeMounts ?? [];
  for (const m of mounts) {
    const v = volumes[m.name];
    if (!check(v, `${where}: mounts volume ${m.name}, which the pod does not have`)) continue;
    if (v.persistentVolumeClaim)
      check(
        objects.some((o) => o.kind === "PersistentVolumeClaim" && o.metadata.name === v.persistentVolumeClaim.claimName),
        `${where}: claim ${v.persistentVolumeClaim.claimName} is not rendered`,
      );
    if (v.secret) check(v.secret.secretName === "deepfm-secret", `${where}: Secret ${v.secret.secretName} is not the documented deepfm-secret`);
  }
  const onMount = (p) => mounts.some((m) => p === m.mountPath || p.startsWith(m.mountPath + "/"));
  for (const a of args) {
    const [flag, value] = a.split(/=(.*)/s);
    if (["--checkpoint", "--data_location", "--auth_token_file", "--tls_cert", "--tls_key", "--tls_ca"].includes(flag))
      check(onMount(value), `${where}: ${flag}=${value} is on no volume the container mounts`);
  }
  const secretMount = mounts.find((m) => volumes[m.name]?.secret);
  for (const f of ["--auth_token_file", "--tls_cert", "--tls_key", "--tls_ca"]) {
    const a = args.find((x) => x.startsWith(f + "="));
    if (check(a, `${where}: no ${f}: every task of a multi-node job needs the token (and TLS files)`))
      check(secretMount && a.slice(f.length + 1).startsWith(secretMount.mountPath + "/"), `${where}: ${f} is not in the Secret's mount`);
  }
}

function trainerList(spec) {
  return [...(spec.cluster.chief ?? []), ...(spec.cluster.worker ?? [])];
}

async function checkTFJob(objects) {
  const job = objects.find((o) => o.kind === "TFJob");
  if (!check(job, "deploy/kubernetes renders no TFJob")) return;
  // TF_CONFIG as the training operator writes it: each replica type in
  // lower case, its pods <job>-<type>-<i>.<namespace>.svc at tfjob-port.
  const cluster = {};
  for (const [type, r] of Object.entries(job.spec.tfReplicaSpecs)) {
    const c = r.template.spec.containers.find((c) => c.name === "tensorflow");
    const port = c.ports.find((p) => p.name === "tfjob-port").containerPort;
    const t = type.toLowerCase();
    cluster[t] = [...Array(r.replicas).keys()].map((i) => `${job.metadata.name}-${t}-${i}.${namespace}.svc:${port}`);
  }
  const cm = objects.find((o) => o.kind === "ConfigMap" && o.metadata.name === "deepfm-job");
  check(job.spec.tfReplicaSpecs.PS.replicas === Number(cm?.data?.DEEPFM_PS_NUM), "TFJob PS replicas follow DEEPFM_PS_NUM");
  check(job.spec.tfReplicaSpecs.Worker.replicas === Number(cm?.data?.DEEPFM_WORKER_NUM), "TFJob Worker replicas follow DEEPFM_WORKER_NUM");
  for (const [type, r] of Object.entries(job.spec.tfReplicaSpecs)) {
    const t = type.toLowerCase();
    for (let i = 0; i < r.replicas; i++) {
      const where = `TFJob ${type} ${i}`;
      const c = r.template.spec.containers.find((c) => c.name === "tensorflow");
      const tf = JSON.stringify({ cluster, task: { type: t, index: i }, environment: "cloud" });
      const env = podEnv(c, objects, { TF_CONFIG: tf, HOSTNAME: `${job.metadata.name}-${t}-${i}` });
      const got = dryRun(c, env, where);
      if (!got) continue;
      check(got.spec.task.type === t && got.spec.task.index === i, `${where}: resolved task ${JSON.stringify(got.spec.task)}`);
      check(JSON.stringify(got.spec.cluster.ps) === JSON.stringify(cluster.ps), `${where}: ps list ${JSON.stringify(got.spec.cluster.ps)}`);
      check(trainerList(got.spec).length === 1 + job.spec.tfReplicaSpecs.Worker.replicas, `${where}: trainers ${trainerList(got.spec)}`);
      checkMounts(r.template.spec, c, got.args, objects, where);
    }
  }
}

async function checkPlain(objects) {
  const sts = objects.find((o) => o.kind === "StatefulSet");
  const job = objects.find((o) => o.kind === "Job");
  if (!check(sts && job, "plain renders no StatefulSet and Job")) return;
  const cm = objects.find((o) => o.kind === "ConfigMap" && o.metadata.name === "deepfm-job");
  const psNum = Number(cm?.data?.DEEPFM_PS_NUM), workerNum = Number(cm?.data?.DEEPFM_WORKER_NUM);
  check(sts.spec.replicas === psNum, `StatefulSet replicas ${sts.spec.replicas} follow DEEPFM_PS_NUM ${psNum}`);
  check(job.spec.completions === workerNum && job.spec.parallelism === workerNum, "Job completions and parallelism follow DEEPFM_WORKER_NUM");
  check(job.spec.completionMode === "Indexed", "the workers' Job is Indexed (JOB_COMPLETION_INDEX)");
  // The headless Service whose selector picks a pod template: its name is
  // the DNS subdomain, its port the one peers dial.
  const serviceFor = (labels) =>
    objects.find(
      (o) =>
        o.kind === "Service" &&
        o.spec.clusterIP === "None" &&
        Object.entries(o.spec.selector ?? {}).every(([k, v]) => labels[k] === v),
    );
  const psSvc = serviceFor(sts.spec.template.metadata.labels);
  const wSvc = serviceFor(job.spec.template.metadata.labels);
  if (!check(psSvc && wSvc, "a headless Service selects the shards and one the workers")) return;
  check(sts.spec.serviceName === psSvc.metadata.name, "the StatefulSet's serviceName is the shards' headless Service");
  check(job.spec.template.spec.subdomain === wSvc.metadata.name, "the workers' subdomain is their headless Service");
  const port = (svc) => svc.spec.ports[0].port;
  const expectPs = [...Array(psNum).keys()].map((i) => `${sts.metadata.name}-${i}.${psSvc.metadata.name}.${namespace}.svc:${port(psSvc)}`);
  const expectW = [...Array(workerNum).keys()].map((i) => `${job.metadata.name}-${i}.${wSvc.metadata.name}.${namespace}.svc:${port(wSvc)}`);
  const pods = [
    ...[...Array(psNum).keys()].map((i) => ({ t: sts.spec.template, type: "ps", i, extra: { HOSTNAME: `${sts.metadata.name}-${i}` } })),
    ...[...Array(workerNum).keys()].map((i) => ({
      t: job.spec.template,
      type: "worker",
      i,
      extra: { HOSTNAME: `${job.metadata.name}-${i}`, JOB_COMPLETION_INDEX: String(i) },
    })),
  ];
  for (const { t, type, i, extra } of pods) {
    const where = `plain ${type} ${i}`;
    const c = t.spec.containers[0];
    const env = podEnv(c, objects, extra);
    const got = dryRun(c, env, where);
    if (!got) continue;
    check(got.spec.task.type === type && got.spec.task.index === i, `${where}: resolved task ${JSON.stringify(got.spec.task)}`);
    check(JSON.stringify(got.spec.cluster.ps) === JSON.stringify(expectPs), `${where}: ps ${JSON.stringify(got.spec.cluster.ps)}, expected ${JSON.stringify(expectPs)}`);
    check(JSON.stringify(trainerList(got.spec)) === JSON.stringify(expectW), `${where}: trainers ${JSON.stringify(trainerList(got.spec))}, expected ${JSON.stringify(expectW)}`);
    const served = (c.ports ?? []).map((p) => p.containerPort);
    check(served.includes(port(type === "ps" ? psSvc : wSvc)), `${where}: the container does not expose its Service's port`);
    checkMounts(t.spec, c, got.args, objects, where);
  }
}

// The image installs the entrypoint where the manifests call it.
check(
  readFileSync(path.join(repo, "deploy/container/Containerfile"), "utf8").includes(imageEntrypoint),
  `deploy/container/Containerfile does not install ${imageEntrypoint}`,
);
for (const [dir, workloads] of [
  ["deploy/kubernetes", checkTFJob],
  ["deploy/kubernetes/plain", checkPlain],
]) {
  let objects;
  try {
    objects = render(dir);
  } catch (e) {
    check(false, `kubectl kustomize ${dir} failed: ${e.message}`);
    continue;
  }
  for (const o of objects) {
    const where = `${dir}: ${o.kind} ${o.metadata?.name}`;
    if (o.kind === "TFJob") await validateTFJob(o, where);
    else await validateBuiltin(o, where);
  }
  await workloads(objects);
}
for (const f of failures) console.log(`FAIL: ${f}`);
console.log(`manifests_test: ${passed} passed, ${failures.length} failed`);
process.exit(failures.length ? 1 : 0);
