/**
 * The Vertex AI backend's pure parts: what a spec becomes in the CustomJob
 * body, checked field by field against Google's published aiplatform v1
 * description; the problems that stop a spec; the state mapping; where the
 * project and credentials are looked for; and `fit --dry-run`'s plan.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { buildSpecFor } from "../../src/jobs/spec.js";
import { makeContext } from "../../src/context.js";
import { UserError } from "../../src/errors.js";
import type { JobRecord } from "../../src/jobs/job.js";
import { vertexBackend } from "../../src/backends/vertex/index.js";
import {
  ACCELERATOR_TYPES,
  createRepositoryRequest,
  customJobRequest,
  JOB_STATES,
  PLACEHOLDERS,
  registryOf,
  repositoryPath,
  stateOf,
  SUBMISSION_LABEL,
} from "../../src/backends/vertex/plan.js";
import { credentialSource, credentialsProject, endpointOf, noCredentialsError, resolveProject, storageEndpoint } from "../../src/backends/vertex/google.js";
import type { VertexSettings } from "../../src/backends/vertex/schema.js";
import { checkBody, findMethod, loadDocument } from "../servers/google-discovery.js";
import { TEST_CACHE } from "../helpers/cli.js";
import { writeTree } from "../helpers/tree.js";
import { fileTimeLimit } from "../helpers/limit.js";

fileTimeLimit(3, import.meta.url);

const OUT = "gs://bucket/vertex/runs";
fs.mkdirSync(TEST_CACHE, { recursive: true });
const aiplatform = loadDocument(TEST_CACHE, "aiplatform.v1");
const artifactregistry = loadDocument(TEST_CACHE, "artifactregistry.v1");
const CUSTOM_JOB = "GoogleCloudAiplatformV1CustomJob";

function spec(
  config: Record<string, unknown>,
  extra: { inputs?: Record<string, string>; hyperparameters?: Record<string, string | number> } = {},
  files: Record<string, string> = { "train.py": "print('hi')\n", "requirements.txt": "scikit-learn\n" },
) {
  const dir = writeTree(files);
  return buildSpecFor(vertexBackend, { artifact: Object.keys(files)[0]!, config: { output_path: OUT, ...config }, ...extra }, dir);
}

function problemsOf(config: Record<string, unknown>, inputs: Record<string, string> = {}): string[] {
  try {
    spec(config, { inputs });
  } catch (err) {
    if (err instanceof UserError) return [err.message, ...err.details];
    throw err;
  }
  return [];
}

const IMAGE = `us-central1-docker.pkg.dev/my-proj/alekseylearn/x-train@sha256:${"a".repeat(64)}`;

test("the backend says an NVIDIA_* accelerator_type asks for a GPU; a TPU or none does not", () => {
  assert.equal(vertexBackend.wantsGpu({ accelerator_type: "NVIDIA_L4" }), true);
  assert.equal(vertexBackend.wantsGpu({ accelerator_type: "NVIDIA_TESLA_T4", accelerator_count: 2 }), true);
  assert.equal(vertexBackend.wantsGpu({ accelerator_type: "TPU_V3" }), false);
  assert.equal(vertexBackend.wantsGpu({}), false);
  assert.equal(vertexBackend.wantsGpu({ instance_type: "ml.p3.2xlarge" }), false, "another backend's setting means nothing here");
});

test("the CustomJob carries every setting, field by field, and passes the published aiplatform v1 schema", () => {
  const s = spec(
    {
      project: "my-proj",
      region: "europe-west4",
      machine_type: "n1-standard-8",
      accelerator_type: "NVIDIA_TESLA_T4",
      accelerator_count: 2,
      instance_count: 3,
      boot_disk_size_gb: 200,
      max_runtime: "2h",
      use_spot: true,
      service_account: "trainer@my-proj.iam.gserviceaccount.com",
      network: "projects/123/global/networks/default",
      kms_key: "projects/my-proj/locations/europe-west4/keyRings/r/cryptoKeys/k",
      environment: "MODE=fast,SEED=1",
      labels: "team=ml",
      checkpoint_uri: "gs://bucket/ckpt",
    },
    { inputs: { train: "gs://data/train", extra: "gs://data/one.csv" }, hyperparameters: { epochs: 10, lr: "0.1" } },
  );
  const body = customJobRequest(s, { name: "train-1", image: IMAGE, submissionId: "0f2c-aa", version: "0.1.0" });
  assert.deepEqual(checkBody(aiplatform, CUSTOM_JOB, body), []);
  assert.equal(body.displayName, "train-1");
  assert.deepEqual(body.jobSpec.baseOutputDirectory, { outputUriPrefix: `${OUT}/train-1` });
  assert.deepEqual(body.jobSpec.scheduling, { timeout: "7200s", restartJobOnWorkerRestart: true, strategy: "SPOT" });
  assert.equal(body.jobSpec.serviceAccount, "trainer@my-proj.iam.gserviceaccount.com");
  assert.equal(body.jobSpec.network, "projects/123/global/networks/default");
  assert.deepEqual(body.encryptionSpec, { kmsKeyName: "projects/my-proj/locations/europe-west4/keyRings/r/cryptoKeys/k" });
  assert.deepEqual(body.labels, { alekseylearn: "0-1-0", [SUBMISSION_LABEL]: "0f2c-aa", team: "ml" });
  // Three hosts in all: the chief alone in pool 0, the other two in pool 1, on the same image; int64 counts are strings.
  const [chief, workers, ...rest] = body.jobSpec.workerPoolSpecs;
  assert.equal(rest.length, 0);
  assert.equal(chief!.replicaCount, "1");
  assert.equal(workers!.replicaCount, "2");
  assert.deepEqual(chief!.machineSpec, { machineType: "n1-standard-8", acceleratorType: "NVIDIA_TESLA_T4", acceleratorCount: 2 });
  assert.deepEqual(chief!.diskSpec, { bootDiskType: "pd-ssd", bootDiskSizeGb: 200 });
  assert.deepEqual(workers!.containerSpec, chief!.containerSpec);
  assert.equal(chief!.containerSpec.imageUri, IMAGE);
  assert.deepEqual(chief!.containerSpec.args, ["train", "--epochs", "10", "--lr", "0.1"]);
  const env = Object.fromEntries(chief!.containerSpec.env.map(({ name, value }) => [name, value]));
  assert.deepEqual(env, {
    MODE: "fast",
    SEED: "1",
    TRAINING_JOB_NAME: "train-1",
    ALEKSEYLEARN_MACHINE_TYPE: "n1-standard-8",
    ALEKSEYLEARN_OUTPUT_DIR: "/gcs/bucket/vertex/runs/train-1/output",
    ALEKSEYLEARN_INPUTS: JSON.stringify({ extra: "/gcs/data/one.csv", train: "/gcs/data/train" }),
    ALEKSEYLEARN_CHECKPOINTS: "/gcs/bucket/ckpt",
  });
});

test("a plain job: one pool, on-demand, no accelerator, the defaults of the README", () => {
  const s = spec({});
  const body = customJobRequest(s, { name: "j", image: IMAGE, submissionId: PLACEHOLDERS.submission, version: "0.1.0" });
  assert.deepEqual(checkBody(aiplatform, CUSTOM_JOB, body), []);
  assert.equal(body.jobSpec.workerPoolSpecs.length, 1);
  assert.deepEqual(body.jobSpec.workerPoolSpecs[0]!.machineSpec, { machineType: "n1-standard-4" });
  assert.equal(body.jobSpec.workerPoolSpecs[0]!.diskSpec.bootDiskSizeGb, 100);
  assert.deepEqual(body.jobSpec.scheduling, { timeout: "604800s", restartJobOnWorkerRestart: false });
  assert.equal(body.encryptionSpec, undefined);
  assert.equal(s.settings.region, "us-central1");
  assert.equal(repositoryPath(s, "my-proj"), `us-central1-docker.pkg.dev/my-proj/alekseylearn/${path.basename(s.artifact.dir).toLowerCase()}-train`);
  // hyperparameter_args=false reaches the entrypoint as on SageMaker.
  const quiet = customJobRequest(spec({ hyperparameter_args: false }), { name: "j", image: IMAGE, submissionId: "s", version: "1" });
  assert.ok(quiet.jobSpec.workerPoolSpecs[0]!.containerSpec.env.some(({ name, value }) => name === "ALEKSEYLEARN_HYPERPARAMETER_ARGS" && value === "false"));
});

test("the schema check is strict: unknown fields, wrong types, int64 as numbers, unknown enums, output-only fields and bad durations are refused", () => {
  const body = customJobRequest(spec({}), { name: "j", image: IMAGE, submissionId: "s", version: "1" });
  const broken = structuredClone(body) as unknown as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  broken.jobSpec.workerPoolSpecs[0].replicaCount = 1;
  broken.jobSpec.workerPoolSpecs[0].machineSpec.acceleratorType = "NVIDIA_TESLA_T5";
  broken.jobSpec.workerPoolSpecs[0].diskSpec.bootDiskSizeGb = "100";
  broken.jobSpec.scheduling.timeout = "2h";
  broken.jobSpec.workerPoolSpecs[0].containerSpec.environment = [];
  broken.state = "JOB_STATE_QUEUED";
  broken.labels.n = 3;
  const problems = checkBody(aiplatform, CUSTOM_JOB, broken);
  for (const expected of [
    /jobSpec\.workerPoolSpecs\[0\]\.replicaCount: expected a string \(int64\)/,
    /machineSpec\.acceleratorType: "NVIDIA_TESLA_T5" is not one of/,
    /diskSpec\.bootDiskSizeGb: expected an integer/,
    /scheduling\.timeout: "2h" is not a duration/,
    /containerSpec\.environment: unknown field of GoogleCloudAiplatformV1ContainerSpec/,
    /^state: output only/,
    /^labels\.n: expected a string/,
  ])
    assert.ok(
      problems.some((problem) => expected.test(problem)),
      `${expected} in ${problems.join("; ")}`,
    );
  assert.equal(problems.length, 7);
});

test("the create method is where the dry run says, and the repository body passes artifactregistry v1", () => {
  const method = findMethod(aiplatform, "aiplatform.projects.locations.customJobs.create");
  assert.equal(method?.httpMethod, "POST");
  assert.equal(method?.request?.$ref, CUSTOM_JOB);
  assert.ok(new RegExp(method!.parameters.parent!.pattern!).test("projects/my-proj/locations/us-central1"));
  assert.deepEqual(checkBody(artifactregistry, "Repository", createRepositoryRequest()), []);
});

test("the accelerator types and job states this version knows are the published ones", () => {
  const machine = aiplatform.schemas.GoogleCloudAiplatformV1MachineSpec!.properties!.acceleratorType!.enum!;
  assert.deepEqual(
    [...ACCELERATOR_TYPES],
    machine.filter((name) => name !== "ACCELERATOR_TYPE_UNSPECIFIED"),
  );
  const states = aiplatform.schemas[CUSTOM_JOB]!.properties!.state!.enum!;
  assert.deepEqual([...JOB_STATES], states);
  const mapped = Object.fromEntries(states.map((state) => [state, stateOf(state)]));
  assert.deepEqual(mapped, {
    JOB_STATE_UNSPECIFIED: "queued",
    JOB_STATE_QUEUED: "queued",
    JOB_STATE_PENDING: "queued",
    JOB_STATE_RUNNING: "running",
    JOB_STATE_SUCCEEDED: "completed",
    JOB_STATE_FAILED: "failed",
    JOB_STATE_CANCELLING: "running",
    JOB_STATE_CANCELLED: "stopped",
    JOB_STATE_PAUSED: "running",
    JOB_STATE_EXPIRED: "failed",
    JOB_STATE_UPDATING: "running",
    JOB_STATE_PARTIALLY_SUCCEEDED: "failed",
  });
});

test("every problem of a spec is named at once, before anything is built", () => {
  const problems = problemsOf(
    {
      output_path: "s3://bucket/runs",
      region: "Mars",
      accelerator_type: "GTX_1080",
      checkpoint_uri: "s3://bucket/ckpt",
      kms_key: "alias/mine",
      labels: "Team=ML,alekseylearn=x,novalue",
      repository: "docker.io/me/img",
    },
    { train: "s3://bucket/train" },
  ).join("\n");
  for (const expected of [
    "config.output_path must be a gs://BUCKET/PREFIX location on Vertex AI, not s3://bucket/runs",
    "config.region Mars is not a Google Cloud region",
    "config.accelerator_type GTX_1080 is not a Vertex AI accelerator type",
    "config.checkpoint_uri must be a gs:// location",
    "config.kms_key alias/mine is not a Cloud KMS key name",
    "config.labels: Team=ML breaks Google's label rules",
    "config.labels: alekseylearn is alekseylearn's own label",
    'config.labels: "novalue" is not KEY=VALUE',
    "config.repository docker.io/me/img is not an Artifact Registry image path",
    "input train: Vertex AI reads inputs from Cloud Storage",
  ])
    assert.ok(problems.includes(expected), `${expected} in:\n${problems}`);
  assert.deepEqual(problemsOf({ boot_disk_size_gb: 50 }).length > 0, true, "Vertex's boot disks are at least 100 GB");
});

/** A gcloud configuration folder with `files` (relative path → text). */
function gcloudDir(files: Record<string, string>): string {
  return writeTree(files, "alekseylearn-gcloud-");
}

test("the project: config.project, GOOGLE_CLOUD_PROJECT, CLOUDSDK_CORE_PROJECT, gcloud's active configuration, the credentials file — in that order", () => {
  const dir = gcloudDir({
    active_config: "work\n",
    "configurations/config_work": "[core]\naccount = me@example.com\nproject = from-gcloud\n\n[compute]\nregion = x\n",
    "configurations/config_default": "[core]\nproject = from-default\n",
    "application_default_credentials.json": JSON.stringify({ type: "authorized_user", quota_project_id: "from-adc", refresh_token: "secret-refresh" }),
  });
  const base = { CLOUDSDK_CONFIG: dir };
  assert.deepEqual(resolveProject("from-config", { ...base, GOOGLE_CLOUD_PROJECT: "from-env" }), { project: "from-config", from: "config.project" });
  assert.equal(resolveProject(undefined, { ...base, GOOGLE_CLOUD_PROJECT: "from-env", CLOUDSDK_CORE_PROJECT: "core" })?.project, "from-env");
  assert.equal(resolveProject(undefined, { ...base, CLOUDSDK_CORE_PROJECT: "core" })?.project, "core");
  assert.equal(resolveProject(undefined, base)?.project, "from-gcloud");
  assert.equal(resolveProject(undefined, { ...base, CLOUDSDK_ACTIVE_CONFIG_NAME: "default" })?.project, "from-default");
  fs.rmSync(path.join(dir, "configurations"), { recursive: true });
  const fromFile = resolveProject(undefined, base);
  assert.equal(fromFile?.project, "from-adc");
  assert.ok(!JSON.stringify(fromFile).includes("secret-refresh"), "nothing of the credentials but the project is read out");
  assert.equal(resolveProject(undefined, { CLOUDSDK_CONFIG: gcloudDir({}) }), undefined);
});

test("credentials: GOOGLE_APPLICATION_CREDENTIALS, gcloud's ADC file, then the metadata server; a clear error naming the login command", () => {
  const key = path.join(
    gcloudDir({ "key.json": JSON.stringify({ type: "service_account", project_id: "sa-proj", private_key: "-----BEGIN PRIVATE KEY-----" }) }),
    "key.json",
  );
  const adcDir = gcloudDir({ "application_default_credentials.json": "{}" });
  assert.equal(credentialSource({ GOOGLE_APPLICATION_CREDENTIALS: key, CLOUDSDK_CONFIG: adcDir }).kind, "file");
  assert.match(credentialSource({ GOOGLE_APPLICATION_CREDENTIALS: key }).from, /^GOOGLE_APPLICATION_CREDENTIALS/);
  assert.match(credentialSource({ CLOUDSDK_CONFIG: adcDir }).from, /^gcloud's application default credentials/);
  assert.equal(credentialSource({ CLOUDSDK_CONFIG: gcloudDir({}) }).kind, "metadata");
  assert.equal(credentialsProject(key), "sa-proj");
  assert.throws(
    () => credentialSource({ GOOGLE_APPLICATION_CREDENTIALS: path.join(os.tmpdir(), "no-such-key.json") }),
    (err) => err instanceof UserError && /does not exist/.test(err.message) && /gcloud auth application-default login/.test(err.hint ?? ""),
  );
  assert.match(noCredentialsError().hint ?? "", /gcloud auth application-default login/);
});

test("endpoints: one override per API, STORAGE_EMULATOR_HOST for Cloud Storage, Vertex's regional endpoint by default", () => {
  assert.equal(endpointOf("aiplatform", "europe-west4", {}), "https://europe-west4-aiplatform.googleapis.com");
  assert.equal(endpointOf("aiplatform", "us-central1", { CLOUDSDK_API_ENDPOINT_OVERRIDES_AIPLATFORM: "http://127.0.0.1:9/" }), "http://127.0.0.1:9");
  assert.equal(endpointOf("logging", "us-central1", {}), "https://logging.googleapis.com");
  assert.equal(endpointOf("artifactregistry", "us-central1", { CLOUDSDK_API_ENDPOINT_OVERRIDES_ARTIFACTREGISTRY: "http://h:1" }), "http://h:1");
  assert.equal(storageEndpoint({}), "https://storage.googleapis.com");
  assert.equal(storageEndpoint({ STORAGE_EMULATOR_HOST: "127.0.0.1:4443" }), "http://127.0.0.1:4443");
});

function record(s: ReturnType<typeof spec>): JobRecord<VertexSettings> {
  return { name: "train-7", backend: "vertex", state: "preparing", spec: s, createdAt: new Date().toISOString(), jobOutput: `${OUT}/train-7` };
}

test("fit --dry-run's plan: the CustomJob exactly as it would be sent, under its parent, with no credentials when the project is given", async () => {
  const s = spec({ project: "my-proj", region: "asia-east1" }, { hyperparameters: { epochs: 3 } });
  const bare = { HOME: gcloudDir({}), CLOUDSDK_CONFIG: gcloudDir({}), PATH: process.env.PATH };
  const plan = await vertexBackend.plan(record(s), makeContext({ cwd: s.artifact.dir, env: bare }));
  assert.equal(plan.backend, "vertex");
  assert.deepEqual(plan.files.includes("train.py"), true);
  assert.equal(plan.image?.platform, "linux/amd64");
  assert.equal(plan.image?.base, "python:3.11-slim");
  assert.equal(plan.requests.length, 1);
  const [create] = plan.requests;
  assert.equal(create!.api, "aiplatform");
  assert.equal(create!.operation, "projects.locations.customJobs.create");
  assert.equal(create!.parent, "projects/my-proj/locations/asia-east1");
  // What is printed is the body itself: through JSON (as --json prints it) it still passes the published schema.
  const printed = JSON.parse(JSON.stringify(create!.request)) as unknown;
  assert.deepEqual(checkBody(aiplatform, CUSTOM_JOB, printed), []);
  assert.equal(
    (printed as { jobSpec: { workerPoolSpecs: Array<{ containerSpec: { imageUri: string } }> } }).jobSpec.workerPoolSpecs[0]!.containerSpec.imageUri,
    `asia-east1-docker.pkg.dev/my-proj/alekseylearn/${path.basename(s.artifact.dir).toLowerCase()}-train@${PLACEHOLDERS.digest}`,
  );
  assert.ok(plan.checks.skipped.some((line) => /sends nothing to Google/.test(line)));
  // A GPU job is built on the CUDA base.
  const gpu = await vertexBackend.plan(record(spec({ project: "my-proj", accelerator_type: "NVIDIA_L4" })), makeContext({ cwd: s.artifact.dir, env: bare }));
  assert.match(gpu.image!.base, /cuda/);
  // A TPU needs no CUDA: the plain base.
  const tpu = await vertexBackend.plan(record(spec({ project: "my-proj", accelerator_type: "TPU_V3" })), makeContext({ cwd: s.artifact.dir, env: bare }));
  assert.equal(tpu.image!.base, "python:3.11-slim");
});

test("fit --dry-run with no project anywhere: one error naming where a project is looked for, nothing planned", async () => {
  const s = spec({});
  const env = { HOME: gcloudDir({}), CLOUDSDK_CONFIG: gcloudDir({}) };
  await assert.rejects(
    vertexBackend.plan(record(s), makeContext({ cwd: s.artifact.dir, env })),
    (err) =>
      err instanceof UserError &&
      /No Google Cloud project/.test(err.message) &&
      /--config\.project/.test(err.hint ?? "") &&
      /GOOGLE_CLOUD_PROJECT/.test(err.hint ?? ""),
  );
});

test(
  "names checked before anything is built: a domain-scoped project as Artifact Registry writes it, repository IDs by Artifact Registry's rule, at most 100 environment entries",
  { timeout: 10_000 },
  () => {
    // Domain-scoped projects: the colon becomes a slash in the image's path (cloud.google.com/artifact-registry/docs/docker/names); the API keeps the colon.
    const s = spec({});
    const image = repositoryPath(s, "example.com:my-proj");
    assert.match(image, /^us-central1-docker\.pkg\.dev\/example\.com\/my-proj\/alekseylearn\/[a-z0-9-]+-train$/);
    assert.deepEqual(registryOf(image), {
      host: "us-central1-docker.pkg.dev",
      region: "us-central1",
      project: "example.com:my-proj",
      repository: "alekseylearn",
    });
    assert.deepEqual(registryOf("europe-west4-docker.pkg.dev/my-proj/team-images/model"), {
      host: "europe-west4-docker.pkg.dev",
      region: "europe-west4",
      project: "my-proj",
      repository: "team-images",
    });
    assert.deepEqual(problemsOf({ project: "example.com:my-proj", repository: "us-central1-docker.pkg.dev/example.com/my-proj/team/model" }), []);
    const colon = problemsOf({ repository: "us-central1-docker.pkg.dev/example.com:my-proj/team/model" }).join("\n");
    assert.match(colon, /has a colon in its project: .*example\.com\/my-proj in an image path/);
    // Repository IDs: lowercase letters, numbers and hyphens; a letter first; a letter or number last; at most 63.
    for (const bad of ["team-", "9team", "Team", "team_images", `t${"a".repeat(63)}`])
      assert.match(
        problemsOf({ repository: `us-central1-docker.pkg.dev/my-proj/${bad}/model` }).join("\n"),
        new RegExp(`${bad} is not an Artifact Registry repository ID`),
        bad,
      );
    for (const good of ["t", "team-2", `t${"a".repeat(62)}`])
      assert.deepEqual(problemsOf({ repository: `us-central1-docker.pkg.dev/my-proj/${good}/model` }), [], good);
    // ContainerSpec.env: "Maximum limit is 100" (aiplatform.v1.json), counted with alekseylearn's own variables.
    const own = customJobRequest(spec({}), { name: "j", image: "i", submissionId: "s", version: "1" }).jobSpec.workerPoolSpecs[0]!.containerSpec.env.length;
    const fits = Array.from({ length: 100 - own }, (_, i) => `V${i}=x`).join(",");
    assert.deepEqual(problemsOf({ environment: fits }), []);
    assert.match(
      problemsOf({ environment: `${fits},ONE_MORE=x` }).join("\n"),
      /would get 101 environment variables .*Vertex AI takes at most 100 \(ContainerSpec\.env\)/,
    );
    const documented = loadDocument(TEST_CACHE, "aiplatform.v1").schemas["GoogleCloudAiplatformV1ContainerSpec"]!.properties!["env"] as {
      description?: string;
    };
    assert.match(String(documented.description), /Maximum limit is 100/);
  },
);
