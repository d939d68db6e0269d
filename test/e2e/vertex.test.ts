/**
 * The Vertex AI backend end to end through the CLI. No Vertex or Cloud
 * Storage emulator runs here, so Google's services are test servers built
 * from Google's published API descriptions (test/servers/google-discovery.ts:
 * aiplatform v1, logging v2, artifactregistry v1, storage v1), which check
 * every request body field by field: the Vertex, Cloud Logging, Artifact
 * Registry and OAuth token server (test/servers/vertex-fake.ts), which really
 * runs a created custom job's image from the registry with Docker, with
 * Cloud Storage mounted at /gcs as Vertex's Cloud Storage FUSE mounts it, and
 * the Cloud Storage server (test/servers/gcs-fake.ts), whose objects are the
 * files the job sees under /gcs. The image is built by the real dockerd and
 * pushed to a real docker-registry standing in for REGION-docker.pkg.dev.
 * Credentials are a service account key file made here (a locally generated
 * RSA key), signed into a JWT by Google's auth library and exchanged at the
 * test server's token endpoint, as at oauth2.googleapis.com.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { cliEnv, copyExample, notebookRoundTrip, runCli, TEST_CACHE, waitFor, startCli } from "../helpers/cli.js";
import { dockerTestEnv, registryHas } from "../helpers/docker.js";
import { noDockerEnv, pushTestBase } from "../helpers/registry.js";
import { listTree, writeTree } from "../helpers/tree.js";
import { ARGPARSE_ARGV, ARGPARSE_EXPECTED, ARGPARSE_HYPERPARAMETERS, ARGPARSE_SCRIPT } from "../helpers/scripts.js";
import { fitAndFetch, KAGGLE_DATA, styleProjects, unpickle, V3_HYPERPARAMETERS } from "../helpers/styles.js";
import { checkBody, loadDocument, type DiscoveryDocument } from "../servers/google-discovery.js";
import { startGcsFake, type GcsFake } from "../servers/gcs-fake.js";
import { startVertexFake, type VertexFake } from "../servers/vertex-fake.js";
import { startArtifactRegistryProxy, type ArtifactRegistryProxy } from "../servers/artifact-registry-proxy.js";
import type { CustomJobBody } from "../../src/backends/vertex/plan.js";
import { cpuTorchIndex, TWO_RANK_REQUIREMENTS, TWO_RANK_SCRIPT } from "../helpers/distributed.js";
import { fileTimeLimit } from "../helpers/limit.js";

fileTimeLimit(30, import.meta.url);

const OUTPUT = "gs://bucket/runs";
const PROJECT = "my-proj";
const EMAIL = "trainer@my-proj.iam.gserviceaccount.com";
const FAST = ["--config.poll_interval=0.2"];
/** A machine type on which Cloud Storage FUSE was reported missing (github:GoogleCloudPlatform/gcsfuse#4333: H200, a3-ultragpu-8g); the test server mounts no /gcs there. */
const NO_GCS_MACHINE = "a3-ultragpu-8g";
const docker = dockerTestEnv();
let aiplatform: DiscoveryDocument;
let gcs: GcsFake;
let vertex: VertexFake;
/** Artifact Registry's authentication in front of the test registry: what the CLI pushes to and reads from. */
let registry: ArtifactRegistryProxy;
let keyFile: string;

before(async () => {
  fs.mkdirSync(TEST_CACHE, { recursive: true });
  aiplatform = loadDocument(TEST_CACHE, "aiplatform.v1");
  const pair = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
  // A service account key file as the IAM console downloads it.
  keyFile = path.join(writeTree({}, "alekseylearn-sa-"), "key.json");
  fs.writeFileSync(
    keyFile,
    JSON.stringify({
      type: "service_account",
      project_id: PROJECT,
      private_key_id: crypto.randomBytes(20).toString("hex"),
      private_key: pair.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
      client_email: EMAIL,
      client_id: "1234567890",
      token_uri: "https://oauth2.googleapis.com/token",
    }),
  );
  gcs = await startGcsFake(loadDocument(TEST_CACHE, "storage.v1"), ["bucket"]);
  vertex = await startVertexFake(
    {
      aiplatform,
      logging: loadDocument(TEST_CACHE, "logging.v2"),
      artifactregistry: loadDocument(TEST_CACHE, "artifactregistry.v1"),
    },
    { [EMAIL]: pair.publicKey.export({ type: "spki", format: "pem" }).toString() },
    {
      run: {
        dockerEnv: { ...process.env, DOCKER_HOST: docker.DOCKER_HOST },
        registry: docker.registry,
        gcs,
        gcsMissingOn: [NO_GCS_MACHINE],
        // A replica that exits non-zero is started once more in its own container, as Vertex restarts a worker in the same VM.
        restarts: 1,
      },
      // Cloud Logging as untidy as the real one: entries listable up to 2 s late and out of order (less than the follower's 5 s
      // lag), a 429 now and then, JSON lines as jsonPayload; and polls that never see RUNNING (a short job passes it between two).
      logging: { lateMs: 2_000, tooManyRequestsEvery: 7, structured: true },
      hideRunning: true,
    },
  );
  registry = await startArtifactRegistryProxy(docker.registry, vertex.tokens);
});

after(async () => {
  await vertex?.close();
  await gcs?.close();
  await registry?.close();
});

/** The CLI's environment: the key file, every Google endpoint at the test servers, the local registry for Artifact Registry's. */
function vertexEnv(extra: Record<string, string> = {}): ReturnType<typeof cliEnv> {
  return cliEnv({
    HOME: fs.mkdtempSync(path.join(os.tmpdir(), "gcloud-home-")),
    CLOUDSDK_CONFIG: fs.mkdtempSync(path.join(os.tmpdir(), "gcloud-config-")),
    GOOGLE_APPLICATION_CREDENTIALS: keyFile,
    CLOUDSDK_AUTH_TOKEN_HOST: vertex.url,
    CLOUDSDK_API_ENDPOINT_OVERRIDES_AIPLATFORM: vertex.url,
    CLOUDSDK_API_ENDPOINT_OVERRIDES_LOGGING: vertex.url,
    CLOUDSDK_API_ENDPOINT_OVERRIDES_ARTIFACTREGISTRY: vertex.url,
    STORAGE_EMULATOR_HOST: gcs.url,
    ALEKSEYLEARN_REGISTRY: registry.host,
    DOCKER_HOST: docker.DOCKER_HOST,
    PIP_INDEX_URL: docker.pipIndex,
    ...extra,
  });
}

/** The CustomJob body `customJobs.create` received for job `name`. */
function created(name: string): CustomJobBody {
  const request = vertex.requests.find((r) => r.method === "POST" && /\/customJobs$/.test(r.path) && (r.body as { displayName?: string }).displayName === name);
  assert.ok(request, `customJobs.create for ${name} reached the Vertex test server`);
  return request.body as CustomJobBody;
}

/** Put `data` at gs://bucket/`name` through the Cloud Storage test server's JSON API (a resumable upload, as gcloud storage cp makes). */
async function upload(name: string, data: string): Promise<void> {
  const start = await fetch(`${gcs.url}/upload/storage/v1/b/bucket/o?uploadType=resumable&name=${encodeURIComponent(name)}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: "{}",
  });
  assert.equal(start.status, 200);
  const put = await fetch(start.headers.get("location")!, { method: "PUT", body: data });
  assert.equal(put.status, 200, await put.text());
}

/** Every object name under `prefix` in the test bucket, through the JSON API. */
async function objects(prefix: string): Promise<string[]> {
  const names: string[] = [];
  let token = "";
  do {
    const page = (await (await fetch(`${gcs.url}/storage/v1/b/bucket/o?prefix=${encodeURIComponent(prefix)}${token ? `&pageToken=${token}` : ""}`)).json()) as {
      items?: { name: string }[];
      nextPageToken?: string;
    };
    names.push(...(page.items ?? []).map((item) => item.name));
    token = page.nextPageToken ?? "";
  } while (token);
  return names;
}

test("Vertex, Logging, Artifact Registry and GCS test servers + registry + dockerd: the two commands on examples/iris leave the same model files as the local backend", async () => {
  const dir = copyExample("iris");
  const { env, stateDir } = vertexEnv();
  // config.builder=docker: the Docker path (the daemonless one has its own test below).
  const fit = await runCli(["fit", "train.py", `--config.output_path=${OUTPUT}`, `--config.project=${PROJECT}`, "--config.builder=docker", ...FAST, "--json"], {
    cwd: dir,
    env,
  });
  assert.equal(fit.code, 0, fit.stderr);
  const job = JSON.parse(fit.stdout);
  assert.equal(job.backend, "vertex", "gs:// picks the Vertex AI backend");
  assert.equal(job.state, "completed");
  assert.equal(job.model, `${OUTPUT}/${job.name}/output/model.tar.gz`);
  assert.match(fit.stderr, /Creating the Artifact Registry repository alekseylearn in my-proj \(us-central1\)/, "the missing repository is made, and said");
  // The states a poll saw, in Vertex's order, ending with the final one (a short job may pass through RUNNING between two polls).
  const order = ["JOB_STATE_QUEUED", "JOB_STATE_PENDING", "JOB_STATE_RUNNING", "JOB_STATE_SUCCEEDED"];
  const shown = [...fit.stderr.matchAll(/\[vertex\] (JOB_STATE_\w+)/g)].map((match) => match[1]!);
  assert.equal(shown.at(-1), "JOB_STATE_SUCCEEDED", "the job's states are shown, the final one last");
  assert.deepEqual(
    shown,
    [...shown].sort((a, b) => order.indexOf(a) - order.indexOf(b)),
    "in the order the job went through them",
  );
  assert.match(fit.stderr, /training on 112 samples/, "the job's log is streamed from Cloud Logging");
  assert.equal(fit.stderr.split("\n").filter((line) => line.includes("training on 112 samples")).length, 1, "each log line once");

  // The request, where the command decides it (the server checked every field against aiplatform v1).
  const body = created(job.name);
  const pool = body.jobSpec.workerPoolSpecs[0]!;
  const image = pool.containerSpec.imageUri;
  assert.match(
    image,
    /^us-central1-docker\.pkg\.dev\/my-proj\/alekseylearn\/iris-train@sha256:[0-9a-f]{64}$/,
    "by digest, in the project's alekseylearn repository",
  );
  assert.ok(await registryHas("my-proj/alekseylearn/iris-train", image.split("@")[1]!), "the job's image, by digest, is in the registry");
  assert.equal(body.jobSpec.workerPoolSpecs.length, 1);
  assert.deepEqual(pool.machineSpec, { machineType: "n1-standard-4" });
  assert.equal(pool.replicaCount, "1");
  assert.equal(pool.containerSpec.args[0], "train", "the image's entrypoint contract");
  assert.deepEqual(body.jobSpec.baseOutputDirectory, { outputUriPrefix: `${OUTPUT}/${job.name}` });
  assert.ok(body.labels["alekseylearn-submission"], "the submission's label");

  // fetch OUTPUT_PATH: the newest job's model, unpacked here, as the same files the local backend leaves.
  const fetch = await runCli(["fetch", OUTPUT], { cwd: dir, env });
  assert.equal(fetch.code, 0, fetch.stderr);
  const local = await runCli(["fit", "train.py", "--backend", "local", "--json"], { cwd: copyExample("iris"), env });
  assert.equal(local.code, 0, local.stderr);
  const fromLocal = fs.mkdtempSync(path.join(os.tmpdir(), "fetched-local-"));
  assert.equal((await runCli(["fetch", JSON.parse(local.stdout).name, "--to", fromLocal], { cwd: dir, env })).code, 0);
  const fetched = listTree(dir).filter((file) => !["train.py", "requirements.txt"].includes(file));
  assert.deepEqual(fetched, listTree(fromLocal), "the same model files as the local backend");
  assert.ok((await objects(`runs/${job.name}/model/`)).includes(`runs/${job.name}/model/model.joblib`), "the model folder is copied to $AIP_MODEL_DIR too");

  // No credential anywhere: no access token in output, records or build logs, no login in the user's Docker config.
  const written = [stateDir, path.join(env.XDG_CACHE_HOME!, "alekseylearn", "build")].flatMap((root) =>
    listTree(root)
      .filter((file) => /\.(json|log)$/.test(file))
      .map((file) => fs.readFileSync(path.join(root, file), "utf8")),
  );
  const seen = [fit.stdout, fit.stderr, fetch.stdout, fetch.stderr, ...written].join("\n");
  assert.ok(vertex.tokens.size > 0);
  for (const token of vertex.tokens) assert.ok(!seen.includes(token), "no access token is shown or kept");
  assert.ok(!seen.includes("PRIVATE KEY"), "nothing of the key file is shown or kept");
  assert.ok(!fs.existsSync(path.join(env.HOME!, ".docker")), "the registry login did not land in the user's Docker config");
});

test("Vertex and Artifact Registry test servers, no Docker reachable by the CLI: config.builder=oci pushes through Artifact Registry's token login, and the job trains iris end to end", async () => {
  // The base image in the registry behind Artifact Registry's authentication, so its layers are mounted; the test server still runs the job with the test dockerd.
  await pushTestBase(docker.registry, "my-proj/bases/python", "3.11-slim-oci");
  const base = `${registry.host}/my-proj/bases/python:3.11-slim-oci`;
  const dir = copyExample("iris");
  const { env } = vertexEnv(noDockerEnv());
  const before = registry.requests.length;
  const fit = await runCli(
    [
      "fit",
      "train.py",
      `--config.output_path=${OUTPUT}`,
      `--config.project=${PROJECT}`,
      "--config.builder=oci",
      `--config.base_image=${base}`,
      ...FAST,
      "--json",
    ],
    { cwd: dir, env },
  );
  assert.equal(fit.code, 0, fit.stderr);
  const job = JSON.parse(fit.stdout);
  assert.equal(job.state, "completed");
  const image = created(job.name).jobSpec.workerPoolSpecs[0]!.containerSpec.imageUri;
  assert.match(image, /^us-central1-docker\.pkg\.dev\/my-proj\/alekseylearn\/iris-train@sha256:[0-9a-f]{64}$/);
  assert.ok(await registryHas("my-proj/alekseylearn/iris-train", image.split("@")[1]!), "the job's image, by digest, is in the registry");
  const pushes = registry.requests.slice(before).filter((request) => request.method !== "GET" && request.method !== "HEAD");
  assert.ok(pushes.length > 0 && pushes.every((request) => request.scheme === "Bearer" && request.accepted), "every write carried a registry token");
  assert.match(fit.stderr, /training on 112 samples/);
  const fetch = await runCli(["fetch", OUTPUT], { cwd: dir, env });
  assert.equal(fetch.code, 0, fetch.stderr);
  assert.ok(fs.existsSync(path.join(dir, "model.joblib")), `model.joblib in the current folder; it has ${listTree(dir).join(", ")}`);
});

test("Vertex and GCS test servers: a notebook runs headless in the image; fetch JOB gives its model and the executed notebook in output/", async () => {
  await notebookRoundTrip([`--config.output_path=${OUTPUT}`, `--config.project=${PROJECT}`, ...FAST], vertexEnv().env, OUTPUT, "Cloud Logging");
});

/**
 * Before the argparse script: the hosts talk over TCP by the names SM_HOSTS gives them, as a distributed job's workers reach its
 * chief (algo-1): the chief listens, the worker connects to algo-1 (resolved through the /etc/hosts entry the runtime made from
 * CLUSTER_SPEC; nothing else knows that name) and says what it heard, where algo-1 resolved, and MASTER_ADDR.
 */
const TALK = String.raw`import json, os, socket, time
hosts = json.loads(os.environ["SM_HOSTS"])
me = os.environ["SM_CURRENT_HOST"]
if me == hosts[0]:
    server = socket.create_server(("", 29400))
    server.settimeout(300)
    peer, _ = server.accept()
    peer.sendall(b"hello from " + me.encode())
    peer.close()
else:
    for _ in range(3000):
        try:
            with socket.create_connection((hosts[0], 29400), timeout=5) as peer:
                heard = peer.recv(100).decode()
            break
        except OSError:
            time.sleep(0.1)
    else:
        raise SystemExit("never reached " + hosts[0])
    print("%s reached %s at %s and heard: %s; MASTER_ADDR=%s" % (me, hosts[0], socket.gethostbyname(hosts[0]), heard, os.environ["MASTER_ADDR"]), flush=True)
`;

test("Vertex and GCS test servers: a folder with --entry, a gs:// input and SageMaker-style argparse hyperparameters, on two hosts whose worker reaches the chief by its SM_HOSTS name (algo-1)", async () => {
  const root = writeTree({
    "project/src/train.py": `${TALK}import os, shutil\n${ARGPARSE_SCRIPT.replace('print("training with"', 'shutil.copy(os.path.join(args.train, "iris.csv"), args.model_dir)\n    print("training with"')}`,
    "project/requirements.txt": "",
  });
  await upload("data/iris.csv", "5.1,3.5,1.4,0.2,setosa\n");
  const { env } = vertexEnv();
  const fit = await runCli(
    [
      "fit",
      "project",
      "--entry",
      "src/train.py",
      "--input.train=gs://bucket/data/iris.csv",
      ...ARGPARSE_HYPERPARAMETERS,
      `--config.output_path=${OUTPUT}`,
      `--config.project=${PROJECT}`,
      "--config.instance_count=2",
      ...FAST,
      "--json",
    ],
    { cwd: root, env },
  );
  assert.equal(fit.code, 0, fit.stderr);
  const job = JSON.parse(fit.stdout);
  const body = created(job.name);
  assert.deepEqual(
    body.jobSpec.workerPoolSpecs.map((pool) => pool.replicaCount),
    ["1", "1"],
    "two hosts: pool 0 holds one replica, pool 1 the other",
  );
  assert.match(fit.stderr, /\[workerpool1-0\] training with/, "with several hosts each line names its replica");
  assert.match(
    fit.stderr,
    /\[workerpool1-0\] algo-2 reached algo-1 at \d+\.\d+\.\d+\.\d+ and heard: hello from algo-1; MASTER_ADDR=cmle-training-workerpool0-[0-9a-f]{10}-0\n/,
    "the worker connected to the chief by the name SM_HOSTS gives it; MASTER_ADDR is the chief's CLUSTER_SPEC name",
  );
  const model = gs(`runs/${job.name}/output/model.tar.gz`);
  const fetched = fs.mkdtempSync(path.join(os.tmpdir(), "fetched-"));
  const fetch = await runCli(["fetch", model, "--to", fetched], { cwd: root, env });
  assert.equal(fetch.code, 0, fetch.stderr);
  assert.equal(fs.readFileSync(path.join(fetched, "iris.csv"), "utf8"), "5.1,3.5,1.4,0.2,setosa\n", "a single object lands as a file in its channel's folder");
  const seen = JSON.parse(fs.readFileSync(path.join(fetched, "seen.json"), "utf8"));
  assert.deepEqual(seen.args, { ...ARGPARSE_EXPECTED, model_dir: "/opt/ml/model", train: "/opt/ml/input/data/train" }, "argparse got every hyperparameter");
  assert.deepEqual(seen.argv, ARGPARSE_ARGV);
  assert.equal(seen.env.SM_CHANNEL_TRAIN, "/opt/ml/input/data/train");
  assert.deepEqual(JSON.parse(seen.env.SM_HOSTS), ["algo-1", "algo-2"]);
  assert.equal(seen.env.SM_CURRENT_HOST, "algo-1", "the model comes from the chief, pool 0");
  assert.equal(JSON.parse(seen.env.SM_RESOURCE_CONFIG).current_instance_type, "n1-standard-4");
});

/** `gs://bucket/NAME`. */
function gs(name: string): string {
  return `gs://bucket/${name}`;
}

test("Vertex test server: a script that fails shows its own error as the reason, and exits 1", async () => {
  const dir = writeTree({ "train.py": 'print("starting", flush=True)\nraise ValueError("learning rate must be positive")\n', "requirements.txt": "" });
  const { env } = vertexEnv();
  const fit = await runCli(["fit", "train.py", `--config.output_path=${OUTPUT}`, `--config.project=${PROJECT}`, ...FAST, "--json"], { cwd: dir, env });
  assert.equal(fit.code, 1, fit.stderr);
  assert.match(fit.stderr, /starting/);
  assert.match(fit.stderr, /ValueError: learning rate must be positive/);
  const status = await runCli(["status", "--json"], { cwd: dir, env });
  const record = JSON.parse(status.stdout);
  assert.equal(record.state, "failed");
  assert.match(record.reason, /^ValueError: learning rate must be positive \(.*workerpool0-0.*\)$/, "the script's own words, then Vertex's");
});

test("Vertex test server: --detach, logs --follow, stop (customJobs.cancel), and status of a job this machine has no record of", async () => {
  const dir = writeTree({
    "train.py": 'import time\nfor i in range(600):\n    print("step", i, flush=True)\n    time.sleep(0.5)\n',
    "requirements.txt": "",
  });
  const { env } = vertexEnv();
  const fit = await runCli(["fit", "train.py", `--config.output_path=${OUTPUT}`, `--config.project=${PROJECT}`, ...FAST, "--json", "--detach"], {
    cwd: dir,
    env,
  });
  assert.equal(fit.code, 0, fit.stderr);
  const { name } = JSON.parse(fit.stdout);
  const follow = startCli(["logs", name, "--follow"], { cwd: dir, env });
  await waitFor(() => /step 2\b/.test(follow.output()), "the job's lines through logs --follow", 180_000);
  const stop = await runCli(["stop", name], { cwd: dir, env });
  assert.equal(stop.code, 0, stop.stderr);
  const followed = await follow.done;
  assert.equal(followed.code, 0, followed.stderr);
  assert.match(followed.stdout + followed.stderr, /JOB_STATE_CANCELLED/);
  const status = JSON.parse((await runCli(["status", name, "--json"], { cwd: dir, env })).stdout);
  assert.equal(status.state, "stopped");
  assert.ok(
    vertex.requests.some((r) => r.method === "POST" && r.path.endsWith(":cancel")),
    "customJobs.cancel was called",
  );

  // Another machine (a fresh state folder) finds the job by name at Vertex AI.
  const elsewhere = vertexEnv();
  const found = await runCli(["status", name, "--json"], { cwd: dir, env: elsewhere.env });
  assert.equal(found.code, 0, found.stderr);
  const record = JSON.parse(found.stdout);
  assert.equal(record.backend, "vertex");
  assert.equal(record.state, "stopped");
  assert.equal(record.jobOutput, `${OUTPUT}/${name}`);
});

test("fit --dry-run --json on Vertex AI: a CustomJob that passes the published aiplatform v1 schema, with no credentials and nothing sent", async () => {
  const dir = copyExample("iris");
  const { env } = vertexEnv({ GOOGLE_APPLICATION_CREDENTIALS: "", CLOUDSDK_API_ENDPOINT_OVERRIDES_AIPLATFORM: "http://127.0.0.1:9" });
  const before = vertex.requests.length;
  const result = await runCli(
    [
      "fit",
      "train.py",
      "--backend",
      "vertex",
      "--dry-run",
      "--json",
      `--config.output_path=${OUTPUT}`,
      `--config.project=${PROJECT}`,
      "--config.accelerator_type=NVIDIA_TESLA_T4",
      "--config.use_spot=true",
      "--config.max_runtime=2h",
      "--hyperparameter.C=0.5",
    ],
    { cwd: dir, env },
  );
  assert.equal(result.code, 0, result.stderr);
  const plan = JSON.parse(result.stdout);
  assert.equal(plan.requests.length, 1);
  const [request] = plan.requests;
  assert.equal(request.api, "aiplatform");
  assert.equal(request.operation, "projects.locations.customJobs.create");
  assert.equal(request.parent, "projects/my-proj/locations/us-central1");
  assert.deepEqual(checkBody(aiplatform, "GoogleCloudAiplatformV1CustomJob", request.request), [], "the body passes the published schema");
  assert.deepEqual(request.request.jobSpec.scheduling, { timeout: "7200s", restartJobOnWorkerRestart: false, strategy: "SPOT" });
  assert.deepEqual(request.request.jobSpec.workerPoolSpecs[0].containerSpec.args, ["train", "--C", "0.5"]);
  assert.equal(vertex.requests.length, before, "nothing was sent to Google");
});

test("bad input: no Google credentials names `gcloud auth application-default login`, and nothing is built or created", async () => {
  const dir = copyExample("iris");
  const missing = path.join(os.tmpdir(), "no-such-key.json");
  const { env } = vertexEnv({ GOOGLE_APPLICATION_CREDENTIALS: missing });
  const jobs = vertex.jobs.size;
  const repositories = vertex.repositories.size;
  const result = await runCli(["fit", "train.py", `--config.output_path=${OUTPUT}`, `--config.project=${PROJECT}`], { cwd: dir, env });
  assert.equal(result.code, 1, result.stderr);
  assert.match(result.stderr, /GOOGLE_APPLICATION_CREDENTIALS names .*no-such-key\.json, which does not exist/);
  assert.match(result.stderr, /gcloud auth application-default login/);
  assert.doesNotMatch(result.stderr, /Building the image/);
  assert.equal(vertex.jobs.size, jobs);
  assert.equal(vertex.repositories.size, repositories);
});

test("bad input: an output bucket that does not exist is named before anything is built or created", async () => {
  const dir = copyExample("iris");
  const { env } = vertexEnv();
  const jobs = vertex.jobs.size;
  const result = await runCli(["fit", "train.py", "--config.output_path=gs://no-such-bucket/runs", `--config.project=${PROJECT}`], { cwd: dir, env });
  assert.equal(result.code, 1, result.stderr);
  assert.match(result.stderr, /The bucket no-such-bucket of config\.output_path does not exist/);
  assert.match(result.stderr, /gcloud storage buckets create gs:\/\/no-such-bucket/);
  assert.doesNotMatch(result.stderr, /Building the image/);
  assert.equal(vertex.jobs.size, jobs);
});

test("Vertex and GCS test servers: checkpoints reach checkpoint_uri while the job runs and come back on the next run; a script written for Vertex that saves to AIP_MODEL_DIR is fetched too", async () => {
  // As Vertex's own samples save a model: to $AIP_MODEL_DIR (a gs:// URI) through the /gcs mount, not to /opt/ml/model.
  const script = [
    "import os, time",
    "ckpt = '/opt/ml/checkpoints'",
    "print('resumed from', sorted(os.listdir(ckpt)), flush=True)",
    "step = len(os.listdir(ckpt)) + 1",
    "open(os.path.join(ckpt, 'step-%d' % step), 'w').write('weights %d' % step)",
    "remote = '/gcs/bucket/ckpt/step-%d' % step",
    "for _ in range(100):",
    "    if os.path.exists(remote):",
    "        break",
    "    time.sleep(0.1)",
    "print('synced while running:', os.path.exists(remote), flush=True)",
    "model_dir = os.environ['AIP_MODEL_DIR'].replace('gs://', '/gcs/')",
    "os.makedirs(model_dir, exist_ok=True)",
    "open(os.path.join(model_dir, 'model.txt'), 'w').write('trained')",
  ].join("\n");
  const dir = writeTree({ "vertex_task.py": script + "\n", "requirements.txt": "" });
  const { env } = vertexEnv();
  const args = [
    "fit",
    "vertex_task.py",
    `--config.output_path=${OUTPUT}`,
    `--config.project=${PROJECT}`,
    "--config.checkpoint_uri=gs://bucket/ckpt",
    "--config.environment=ALEKSEYLEARN_CHECKPOINT_SYNC=0.5",
    ...FAST,
    "--json",
  ];
  const first = await runCli(args, { cwd: dir, env });
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stderr, /resumed from \[\]/);
  assert.match(first.stderr, /synced while running: True/, "the checkpoint reached checkpoint_uri before the script ended");
  assert.equal(created(JSON.parse(first.stdout).name).jobSpec.scheduling.restartJobOnWorkerRestart, true, "a restarted worker restarts the job, which resumes");
  const second = await runCli(args, { cwd: dir, env });
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stderr, /resumed from \['step-1'\]/, "the next run starts from the saved checkpoints");
  assert.deepEqual(await objects("ckpt/"), ["ckpt/step-1", "ckpt/step-2"]);

  const to = fs.mkdtempSync(path.join(os.tmpdir(), "fetched-"));
  const fetch = await runCli(["fetch", JSON.parse(second.stdout).name, "--to", to], { cwd: dir, env });
  assert.equal(fetch.code, 0, fetch.stderr);
  assert.equal(fs.readFileSync(path.join(to, "model.txt"), "utf8"), "trained", "the model saved to AIP_MODEL_DIR is the job's model");
});

test(
  "Vertex test server without /gcs on the job's machine type (gcsMissingOn, gcsfuse#4333): the runtime fails the job before the script runs, naming /gcs, and fit exits 1 showing it",
  { timeout: 300_000 },
  async () => {
    const dir = writeTree({ "train.py": 'print("the script ran", flush=True)\n', "requirements.txt": "" });
    const { env } = vertexEnv();
    const fit = await runCli(
      ["fit", "train.py", `--config.output_path=${OUTPUT}`, `--config.project=${PROJECT}`, `--config.machine_type=${NO_GCS_MACHINE}`, ...FAST, "--json"],
      { cwd: dir, env },
    );
    assert.equal(fit.code, 1, fit.stderr);
    assert.match(fit.stderr, /Cloud Storage FUSE is not mounted at \/gcs in this Vertex AI machine/, "the runtime's reason is shown");
    assert.doesNotMatch(fit.stderr, /the script ran/, "the script never ran");
    const record = JSON.parse((await runCli(["status", "--json"], { cwd: dir, env })).stdout);
    assert.equal(record.state, "failed");
    assert.match(record.reason, /Cloud Storage FUSE is not mounted at \/gcs/, "the record's reason names /gcs");
    assert.equal(record.model, undefined);
    assert.deepEqual(await objects(`runs/${record.name}/`), [], "nothing was written to Cloud Storage, and no model is claimed");
  },
);

test(
  "Vertex test server, restarts option: a worker that exits non-zero is started again in the same container, which prepares the same job twice; the second run succeeds and no stale failure reason is left",
  { timeout: 300_000 },
  async () => {
    // understanding-training-service: "If a worker exits with a non-zero exit code, Vertex AI restarts the worker immediately in the same VM".
    const script = [
      "import os",
      "marker = '/var/tmp/alekseylearn-test-tried'",
      "if not os.path.exists(marker):",
      "    open(marker, 'w').close()",
      "    raise RuntimeError('the first attempt fails')",
      "open(os.path.join(os.environ['SM_MODEL_DIR'], 'model.txt'), 'w').write('from the second attempt')",
    ].join("\n");
    const dir = writeTree({ "train.py": `${script}\n`, "requirements.txt": "" });
    const { env } = vertexEnv();
    const fit = await runCli(["fit", "train.py", `--config.output_path=${OUTPUT}`, `--config.project=${PROJECT}`, ...FAST, "--json"], { cwd: dir, env });
    assert.equal(fit.code, 0, fit.stderr);
    assert.match(fit.stderr, /RuntimeError: the first attempt fails/, "the first run failed in this container");
    const job = JSON.parse(fit.stdout);
    assert.equal(job.state, "completed");
    assert.equal(job.reason, undefined, "no reason left from the first run");
    assert.equal(job.model, `${OUTPUT}/${job.name}/output/model.tar.gz`);
    const written = await objects(`runs/${job.name}/output/`);
    assert.ok(written.includes(`runs/${job.name}/output/model.tar.gz`), written.join(", "));
    assert.ok(!written.includes(`runs/${job.name}/output/failure`), "the first run's failure reason is gone from Cloud Storage");
    const to = fs.mkdtempSync(path.join(os.tmpdir(), "fetched-"));
    const fetched = await runCli(["fetch", job.name, "--to", to], { cwd: dir, env });
    assert.equal(fetched.code, 0, fetched.stderr);
    assert.equal(fs.readFileSync(path.join(to, "model.txt"), "utf8"), "from the second attempt");
  },
);

test(
  "Vertex and GCS test servers: a Vertex AI-style script, a Kaggle-style notebook and an SDK v3 script run unchanged, and fetch returns their models",
  { timeout: 600_000 },
  async () => {
    const { env } = vertexEnv();
    const root = styleProjects();
    await upload("styles/data/train.csv", KAGGLE_DATA["data/train.csv"]);
    const model = (dir: string, args: string[]): Promise<Record<string, string>> =>
      fitAndFetch(dir, [...args, `--config.output_path=${OUTPUT}`, `--config.project=${PROJECT}`, ...FAST], env);
    // On Vertex, AIP_MODEL_DIR is Vertex's own gs:// URI (baseOutputDirectory/model/), written through Cloud Storage FUSE.
    const vertexModel = JSON.parse((await model(path.join(root, "vertex"), ["task.py", "--hyperparameter.lr=0.05"]))["model.json"]!);
    assert.equal(vertexModel.lr, 0.05);
    assert.equal(vertexModel.gs, true);
    assert.deepEqual(vertexModel.task, { type: "workerpool0", index: 0 });
    const kaggle = await model(path.join(root, "kaggle"), ["kernel.ipynb", "--input.data=gs://bucket/styles/data/"]);
    assert.deepEqual(unpickle(kaggle["model.pkl"]!), { rows: 3, inputs: ["data"] }, "/kaggle/input/data is the channel, /kaggle/working the model");
    const v3 = await model(path.join(root, "v3"), ["train.py", ...V3_HYPERPARAMETERS, "--config.hyperparameter_format=json"]);
    assert.equal(JSON.parse(v3["results.json"]!).status, "success");
  },
);

test(
  "Vertex test servers + Artifact Registry's authentication (proxy before docker-registry) + dockerd: the push logs in through Docker's token flow as oauth2accesstoken, the read-back sends the access token as Bearer, and Basic straight to /v2/ is refused",
  { timeout: 600_000 },
  async () => {
    const dir = writeTree({ "auth/train.py": "print('auth')\n", "auth/requirements.txt": "" });
    const before = registry.requests.length;
    const issuedBefore = registry.issued.size;
    const result = await runCli(["fit", "train.py", "--config.output_path=gs://bucket/auth", ...FAST, "--detach"], {
      cwd: path.join(dir, "auth"),
      env: vertexEnv().env,
    });
    assert.equal(result.code, 0, result.stderr);
    const seen = registry.requests.slice(before);
    assert.ok(registry.issued.size > issuedBefore, "Docker fetched a registry token from the realm with the oauth2accesstoken login");
    const reads = seen.filter((r) => r.accepted && /\/manifests\/sha256:/.test(r.path) && (r.method === "GET" || r.method === "HEAD"));
    assert.ok(reads.length > 0, "the pushed manifest was read back");
    assert.ok(
      seen.every((r) => r.scheme !== "Basic" || !r.accepted),
      "no Basic request was let through",
    );
    assert.ok(
      seen.some((r) => r.accepted && r.method === "PUT" && /\/manifests\//.test(r.path)),
      "the manifest was pushed with a registry token",
    );
    // Basic credentials sent straight to /v2/ are refused, with the challenge that names the realm.
    const token = [...vertex.tokens][0]!;
    const basic = await fetch(`http://${registry.host}/v2/`, {
      headers: { authorization: `Basic ${Buffer.from(`oauth2accesstoken:${token}`).toString("base64")}` },
    });
    assert.equal(basic.status, 401);
    assert.match(basic.headers.get("www-authenticate") ?? "", /^Bearer realm="http:\/\/127\.0\.0\.1:\d+\/v2\/token",service=/);
    assert.equal((await fetch(`http://${registry.host}/v2/`, { headers: { authorization: `Bearer ${token}` } })).status, 200);
  },
);

/** A script printing "line 1" … "line N", every third as a JSON object with a message (a jsonPayload entry). */
function numberedScript(n: number): string {
  return [
    "import json, time",
    `for i in range(1, ${n + 1}):`,
    "    if i % 3 == 0:",
    '        print(json.dumps({"message": "line %d" % i, "severity": "INFO"}), flush=True)',
    "    else:",
    '        print("line %d" % i, flush=True)',
    "    time.sleep(0.05)",
    "",
  ].join("\n");
}

/** The numbered lines in `output`, in the order shown. */
function numberedLines(output: string): string[] {
  return output.split("\n").filter((line) => /^line \d+$/.test(line));
}

test(
  "Vertex test server with late, out-of-order log entries, 429s, jsonPayload and RUNNING between two polls: lines 1..N each exactly once, in order, through fit and through logs --follow",
  { timeout: 600_000 },
  async () => {
    const n = 60;
    const expected = Array.from({ length: n }, (_, i) => `line ${i + 1}`);
    const dir = writeTree({ "train.py": numberedScript(n), "requirements.txt": "" });
    const { env } = vertexEnv();
    const fit = await runCli(["fit", "train.py", `--config.output_path=${OUTPUT}`, `--config.project=${PROJECT}`, ...FAST, "--json"], { cwd: dir, env });
    assert.equal(fit.code, 0, fit.stderr);
    assert.deepEqual(numberedLines(fit.stderr), expected, "fit: every line once, in order");
    const shown = [...fit.stderr.matchAll(/\[vertex\] (JOB_STATE_\w+)/g)].map((match) => match[1]!);
    assert.equal(shown.at(-1), "JOB_STATE_SUCCEEDED", "the final state last, though no poll saw RUNNING");

    const detached = await runCli(["fit", "train.py", `--config.output_path=${OUTPUT}`, `--config.project=${PROJECT}`, ...FAST, "--json", "--detach"], {
      cwd: dir,
      env,
    });
    assert.equal(detached.code, 0, detached.stderr);
    const { name } = JSON.parse(detached.stdout);
    const followed = await runCli(["logs", name, "--follow"], { cwd: dir, env });
    assert.equal(followed.code, 0, followed.stderr);
    assert.deepEqual(numberedLines(`${followed.stdout}\n${followed.stderr}`), expected, "logs --follow: every line once, in order");
    assert.ok(
      vertex.requests.some((r) => r.path === "/v2/entries:list" && JSON.stringify(r.body).includes("timestamp<")),
      "reads have an upper time bound",
    );
  },
);

test("Vertex and GCS test servers, two hosts: the two-rank torch.distributed script meets its peer at the chief's CLUSTER_SPEC address; the chief's model is the job's", async () => {
  const torchIndex = cpuTorchIndex();
  assert.ok(torchIndex, "the CPU torch wheel is in /opt/wheels");
  const project = writeTree({ "train.py": TWO_RANK_SCRIPT, "requirements.txt": TWO_RANK_REQUIREMENTS });
  const { env } = vertexEnv({ PIP_EXTRA_INDEX_URL: torchIndex });
  const fit = await runCli(
    ["fit", "train.py", `--config.output_path=${OUTPUT}`, `--config.project=${PROJECT}`, "--config.instance_count=2", ...FAST, "--json"],
    { cwd: project, env },
  );
  assert.equal(fit.code, 0, fit.stderr);
  const job = JSON.parse(fit.stdout);
  assert.match(fit.stderr, /\[workerpool0-0\] rank 0 of 2 on algo-1: sum 3\.0/);
  assert.match(fit.stderr, /\[workerpool1-0\] rank 1 of 2 on algo-2: sum 3\.0/);
  assert.match(fit.stderr, /\[workerpool1-0\] \[alekseylearn\] algo-2's model folder is not kept: on Vertex AI the job's model is algo-1's/);
  const to = fs.mkdtempSync(path.join(os.tmpdir(), "fetched-"));
  const fetch = await runCli(["fetch", job.name, "--to", to], { cwd: project, env });
  assert.equal(fetch.code, 0, fetch.stderr);
  assert.deepEqual(listTree(to), ["model.json", "rank-0.json"], "the chief (workerpool0, algo-1) packs the model");
  const saved = JSON.parse(fs.readFileSync(path.join(to, "model.json"), "utf8"));
  assert.equal(saved.sum, 3);
  assert.match(saved.env.MASTER_ADDR, /^cmle-training-workerpool0-[0-9a-f]{10}-0$/);
  assert.deepEqual([saved.env.MASTER_PORT, saved.env.SM_MASTER_ADDR, saved.env.WORLD_SIZE], ["2222", "algo-1", "2"]);
});
