/**
 * The Vertex AI test server running jobs for real (test/servers/vertex-fake.ts
 * with its `run` option), composed with the Docker test services (the private
 * dockerd, and the docker-registry standing in for Artifact Registry's
 * REGION-docker.pkg.dev hosts) and the Cloud Storage test server
 * (test/servers/gcs-fake.ts) mounted at /gcs. A tiny image, whose entrypoint
 * does what its arguments say, is pushed as PROJECT/REPOSITORY/IMAGE; each test
 * creates a job through the REST API and checks what a user would see: the
 * job's states, its log through Cloud Logging's entries.list, and the objects
 * it read and wrote through Cloud Storage's JSON API.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import { dockerCli, dockerTestEnv } from "../helpers/docker.js";
import { TEST_CACHE } from "../helpers/cli.js";
import { writeTree } from "../helpers/tree.js";
import { loadDocument } from "../servers/google-discovery.js";
import { crc32c, startGcsFake, type GcsFake } from "../servers/gcs-fake.js";
import { startVertexFake, type FakeJob, type FakeLogEntry, type VertexFake } from "../servers/vertex-fake.js";

const services = dockerTestEnv();
const nonce = crypto.randomBytes(6).toString("hex");
const localTag = `vertex-run-test:${nonce}`;
const pushed = `${services.registry}/my-proj/trainers/job:${nonce}`;
const TOKEN = `ya29.test-vertex-run-${nonce}`;
const PARENT = "projects/my-proj/locations/us-central1";
/** A machine type on which Cloud Storage FUSE was reported missing (github:GoogleCloudPlatform/gcsfuse#4333: H200, a3-ultragpu-8g). */
const NO_GCS_MACHINE = "a3-ultragpu-8g";
let image: string;
let vertex: VertexFake;
let gcs: GcsFake;
const folders: string[] = [];

/**
 * The container's program: it prints who it is (its CLUSTER_SPEC task) and what Vertex gave it, a line on stderr, whether /gcs is
 * mounted, then does what its `--KEY VALUE` arguments ask: fail its first start in this container, read a file, wait for one to
 * appear, talk to the chief over the job's network, write a file in two pieces, and exit with a code.
 */
const JOB = String.raw`
import json, os, socket, sys, time

opts = dict(zip(sys.argv[1::2], sys.argv[2::2]))
spec = json.loads(os.environ["CLUSTER_SPEC"])
task = spec["task"]
me = "%s-%d" % (task["type"], task["index"])
print("started " + me, flush=True)
print("args " + json.dumps(sys.argv[1:], separators=(",", ":")), flush=True)
print("task " + json.dumps(task, sort_keys=True), flush=True)
print("cluster " + json.dumps(spec["cluster"], sort_keys=True), flush=True)
print("tf task " + json.dumps(json.loads(os.environ["TF_CONFIG"])["task"], sort_keys=True), flush=True)
print("model dir " + os.environ.get("AIP_MODEL_DIR", ""), flush=True)
print("job id " + os.environ.get("CLOUD_ML_JOB_ID", ""), flush=True)
print("greeting " + os.environ.get("GREETING", ""), flush=True)
print("a warning from " + me, file=sys.stderr, flush=True)
print("gcs " + ("mounted" if os.path.ismount("/gcs") else "missing"), flush=True)
if "--fail-first" in opts and not os.path.exists("/var/tmp/tried"):
    open("/var/tmp/tried", "w").close()
    print("the first start fails", file=sys.stderr, flush=True)
    sys.exit(4)
if "--read" in opts:
    print("read " + open(opts["--read"]).read(), flush=True)
if "--talk" in opts:
    if task["type"] == "workerpool0":
        server = socket.create_server(("", 2222))
        server.settimeout(120)
        peer, _ = server.accept()
        peer.sendall(b"hello from " + me.encode())
        peer.close()
    else:
        host, port = spec["cluster"]["workerpool0"][0].split(":")
        for _ in range(1200):
            try:
                with socket.create_connection((host, int(port)), timeout=5) as peer:
                    print("heard " + peer.recv(100).decode(), flush=True)
                break
            except OSError:
                time.sleep(0.1)
if "--wait-for" in opts:
    print("waiting for " + opts["--wait-for"], flush=True)
    while not os.path.exists(opts["--wait-for"]):
        time.sleep(0.05)
if "--write" in opts:
    os.makedirs(os.path.dirname(opts["--write"]), exist_ok=True)
    with open(opts["--write"], "w") as out:
        out.write("written by " + me)
        out.flush()
        out.write(" in two pieces\n")
code = int(opts.get("--exit", "0"))
if code:
    print("failing with %d" % code, file=sys.stderr, flush=True)
sys.exit(code)
`;
import { fileTimeLimit } from "../helpers/limit.js";

fileTimeLimit(15, import.meta.url);

/** A call to the Vertex test server's REST API with the test's bearer token: the status and the JSON answer. */
async function call(method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(`${vertex.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

/** Upload `data` as gs://bucket/NAME through the JSON API's resumable upload (one session, one PUT). */
async function upload(name: string, data: string): Promise<void> {
  const session = await fetch(`${gcs.url}/upload/storage/v1/b/bucket/o?uploadType=resumable&name=${encodeURIComponent(name)}`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-upload-content-length": String(Buffer.byteLength(data)) },
    body: "{}",
  });
  assert.equal(session.status, 200);
  const put = await fetch(session.headers.get("location")!, {
    method: "PUT",
    headers: { "content-range": `bytes 0-${Buffer.byteLength(data) - 1}/${Buffer.byteLength(data)}` },
    body: data,
  });
  assert.equal(put.status, 200, await put.clone().text());
}

/** A CustomJob body for the test image: one pool per entry of `pools` (its args, and replicaCount "1" unless said). */
function jobBody(
  displayName: string,
  pools: Array<{ args: string[]; replicaCount?: string; imageUri?: string; machineType?: string }>,
  scheduling?: { timeout: string },
) {
  return {
    displayName,
    jobSpec: {
      workerPoolSpecs: pools.map((pool) => ({
        machineSpec: { machineType: pool.machineType ?? "n1-standard-4" },
        replicaCount: pool.replicaCount ?? "1",
        containerSpec: { imageUri: pool.imageUri ?? image, args: pool.args, env: [{ name: "GREETING", value: "hello from the job's env" }] },
      })),
      baseOutputDirectory: { outputUriPrefix: `gs://bucket/out/${displayName}` },
      ...(scheduling ? { scheduling } : {}),
    },
  };
}

/** Create a job; its numeric id and the state create answered. */
async function createJob(body: ReturnType<typeof jobBody>): Promise<{ id: string; state: string }> {
  const created = await call("POST", `/v1/${PARENT}/customJobs`, body);
  assert.equal(created.status, 200, JSON.stringify(created.json));
  return { id: String(created.json.name).split("/").pop()!, state: String(created.json.state) };
}

/** Read the job (customJobs.get) until it is in one of `states`; the job, and every state it was seen in, in order. */
async function until(id: string, states: string[]): Promise<{ job: FakeJob; seen: string[] }> {
  const seen: string[] = [];
  for (let tries = 0; tries < 6000; tries++) {
    const { json } = await call("GET", `/v1/${PARENT}/customJobs/${id}`);
    const job = json as unknown as FakeJob;
    if (seen.at(-1) !== job.state) seen.push(job.state);
    if (states.includes(job.state)) return { job, seen };
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`job ${id} never reached ${states.join(" or ")} (seen: ${seen.join(", ")})`);
}

/** The job's log entries through Cloud Logging's entries.list, oldest first. */
async function entries(id: string): Promise<FakeLogEntry[]> {
  const { status, json } = await call("POST", "/v2/entries:list", {
    resourceNames: ["projects/my-proj"],
    filter: `resource.type="ml_job" AND resource.labels.job_id="${id}"`,
    orderBy: "timestamp asc",
  });
  assert.equal(status, 200, JSON.stringify(json));
  return (json.entries as FakeLogEntry[] | undefined) ?? [];
}

/** Containers of job `id` that still exist. */
async function containersOf(id: string): Promise<string[]> {
  return (await dockerCli(["ps", "--all", "--filter", `name=vertex-fake-${id}-`, "--format", "{{.Names}}"])).split("\n").filter(Boolean);
}

before(async () => {
  fs.mkdirSync(TEST_CACHE, { recursive: true });
  gcs = await startGcsFake(loadDocument(TEST_CACHE, "storage.v1"), ["bucket"]);
  vertex = await startVertexFake(
    {
      aiplatform: loadDocument(TEST_CACHE, "aiplatform.v1"),
      logging: loadDocument(TEST_CACHE, "logging.v2"),
      artifactregistry: loadDocument(TEST_CACHE, "artifactregistry.v1"),
    },
    {},
    {
      run: {
        dockerEnv: { ...process.env, DOCKER_HOST: services.DOCKER_HOST },
        registry: services.registry,
        gcs,
        stopGraceSeconds: 2,
        gcsMissingOn: [NO_GCS_MACHINE],
        restarts: 1,
      },
    },
  );
  // A token as the token endpoint would have issued one (that endpoint, with a signed JWT, is vertex-api.test.ts's subject).
  vertex.tokens.add(TOKEN);
  // The image: FROM the suite's base image (a Debian with python3), its ENTRYPOINT the program above, pushed as PROJECT/REPOSITORY/IMAGE.
  const context = writeTree({ Dockerfile: `FROM ${services.baseImage}\nCOPY job.py /job.py\nENTRYPOINT ["python3", "-u", "/job.py"]\n`, "job.py": JOB });
  folders.push(context);
  await dockerCli(["build", "--tag", localTag, context], { DOCKER_BUILDKIT: "0" });
  await dockerCli(["tag", localTag, pushed]);
  const digest = /digest: (sha256:[0-9a-f]{64})/.exec(await dockerCli(["push", pushed]))?.[1];
  assert.ok(digest, "the push reported a digest");
  image = `us-central1-docker.pkg.dev/my-proj/trainers/job@${digest}`;
  // The repository, made through the server's Artifact Registry API (repositories.create).
  const made = await call("POST", `/v1/${PARENT}/repositories?repositoryId=trainers`, { format: "DOCKER" });
  assert.equal(made.status, 200, JSON.stringify(made.json));
});

after(async () => {
  await vertex?.close();
  await gcs?.close();
  // The daemon's data root is cached between runs: leave no test image behind (the pulled copy shares the image's ID).
  const id = (await dockerCli(["image", "inspect", "--format", "{{.Id}}", localTag]).catch(() => "")).trim();
  if (id) await dockerCli(["rmi", "--force", id]).catch(() => undefined);
  for (const folder of folders) fs.rmSync(folder, { recursive: true, force: true });
});

test("a job runs on its own (PENDING, RUNNING, SUCCEEDED): it reads an uploaded object, its lines arrive while it runs, and what it writes under /gcs is an object", async () => {
  await upload("in/data.txt", "the training data");
  const { id, state } = await createJob(
    jobBody("run-1", [{ args: ["--read", "/gcs/bucket/in/data.txt", "--wait-for", "/gcs/bucket/in/go-run-1", "--write", "/gcs/bucket/out/run-1/result.txt"] }]),
  );
  // "the job might remain in the JOB_STATE_QUEUED state", then pending, before it runs (understanding-training-service).
  assert.equal(state, "JOB_STATE_PENDING");
  const running = await until(id, ["JOB_STATE_RUNNING", "JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED"]);
  assert.equal(running.job.state, "JOB_STATE_RUNNING", JSON.stringify(running.job.error));
  assert.match(String(running.job.startTime), /^\d{4}-\d\d-\d\dT/);
  // The job waits for an object only the API will write: every line so far was logged while it runs.
  let lines: FakeLogEntry[] = [];
  for (let tries = 0; tries < 1200 && !lines.some((entry) => (entry.textPayload ?? "").startsWith("waiting for")); tries++) {
    lines = await entries(id);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.equal((await call("GET", `/v1/${PARENT}/customJobs/${id}`)).json.state, "JOB_STATE_RUNNING", "still running while its lines are read");
  const texts = lines.map((entry) => entry.textPayload);
  assert.ok(texts.includes("read the training data"), `the uploaded object was read inside the job: ${texts.join(" | ")}`);
  await upload("in/go-run-1", "go");
  const done = await until(id, ["JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"]);
  assert.equal(done.job.state, "JOB_STATE_SUCCEEDED", JSON.stringify(done.job.error));
  assert.deepEqual(
    [state, ...running.seen, ...done.seen].filter((seen, index, all) => all[index - 1] !== seen),
    ["JOB_STATE_PENDING", "JOB_STATE_RUNNING", "JOB_STATE_SUCCEEDED"],
  );
  assert.ok(Date.parse(String(done.job.endTime)) >= Date.parse(String(done.job.startTime)));
  assert.equal(done.job.error, undefined);

  // The log: every line of the replica, stdout as INFO and stderr as ERROR, under its task name (and Vertex's own lines as "service").
  const log = await entries(id);
  const replica = log.filter((entry) => entry.resource.labels.task_name === "workerpool0-0");
  const said = (prefix: string): string | undefined => replica.find((entry) => (entry.textPayload ?? "").startsWith(prefix))?.textPayload;
  assert.equal(said("started"), "started workerpool0-0");
  assert.equal(
    said("args"),
    `args ${JSON.stringify(["--read", "/gcs/bucket/in/data.txt", "--wait-for", "/gcs/bucket/in/go-run-1", "--write", "/gcs/bucket/out/run-1/result.txt"])}`,
  );
  assert.equal(said("task"), 'task {"index": 0, "type": "workerpool0"}');
  assert.match(
    said("cluster") ?? "",
    /^cluster \{"workerpool0": \["cmle-training-workerpool0-[0-9a-f]{10}-0:2222"\]\}$/,
    "a host name of the form Vertex gives",
  );
  assert.equal(said("tf task"), 'tf task {"index": 0, "type": "chief"}');
  assert.equal(said("model dir"), "model dir gs://bucket/out/run-1/model/");
  assert.equal(said("job id"), `job id ${id}`);
  assert.equal(said("greeting"), "greeting hello from the job's env");
  assert.equal(replica.find((entry) => entry.textPayload === "a warning from workerpool0-0")?.severity, "ERROR");
  assert.ok(replica.filter((entry) => entry.textPayload !== "a warning from workerpool0-0").every((entry) => entry.severity === "INFO"));
  for (const entry of log) {
    assert.match(entry.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z$/, "RFC 3339, with a fraction");
    assert.equal(entry.resource.type, "ml_job");
    assert.deepEqual({ job: entry.resource.labels.job_id, project: entry.resource.labels.project_id }, { job: id, project: "my-proj" });
  }
  assert.equal(replica[0]!.logName, "projects/my-proj/logs/workerpool0-0");
  assert.equal(new Set(log.map((entry) => entry.insertId)).size, log.length, "every insertId is unique");
  assert.deepEqual(
    log.filter((entry) => entry.resource.labels.task_name === "service").map((entry) => entry.textPayload),
    ["Waiting for job to be provisioned.", "Job completed successfully."],
  );

  // What the job wrote through /gcs, in two pieces, is one object, served by the JSON API with its bytes and their CRC32C.
  const expected = Buffer.from("written by workerpool0-0 in two pieces\n");
  const listed = (await (await fetch(`${gcs.url}/storage/v1/b/bucket/o?prefix=out/run-1/`)).json()) as { items?: Array<Record<string, string>> };
  assert.deepEqual(
    listed.items?.map((item) => item.name),
    ["out/run-1/result.txt"],
    "one object, and no object for the folder",
  );
  const object = listed.items![0]!;
  assert.equal(object.size, String(expected.length));
  assert.equal(object.crc32c, crc32c(expected));
  assert.equal(object.md5Hash, crypto.createHash("md5").update(expected).digest("base64"));
  assert.equal(object.contentType, "application/octet-stream");
  assert.match(object.generation!, /^\d{16}$/, "a generation in microseconds, from the file's time");
  const media = await fetch(`${gcs.url}/storage/v1/b/bucket/o/${encodeURIComponent("out/run-1/result.txt")}?alt=media&generation=${object.generation}`);
  assert.equal(media.status, 200);
  assert.ok(Buffer.from(await media.arrayBuffer()).equals(expected));
  assert.match(media.headers.get("x-goog-hash") ?? "", new RegExp(`crc32c=${crc32c(expected).replace(/[+/]/g, "\\$&")}`));
  assert.deepEqual(await containersOf(id), [], "the job's container is gone");
});

test("a replica that exits non-zero fails the job with Vertex's message, and its last lines on stderr", async () => {
  const { id } = await createJob(jobBody("fail-1", [{ args: ["--exit", "3"] }]));
  const { job } = await until(id, ["JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"]);
  assert.equal(job.state, "JOB_STATE_FAILED");
  const error = job.error as { code: number; message: string };
  assert.equal(error.code, 3);
  assert.match(error.message, /^The replica workerpool0-0 exited with a non-zero status of 3\. Termination reason: Error\. \n/);
  assert.match(error.message, /failing with 3$/);
  assert.ok(job.endTime);
  const starts = (await entries(id)).filter((entry) => entry.textPayload === "started workerpool0-0");
  assert.equal(starts.length, 2, "with the restarts option (1), the replica was started again in its container before it failed the job");
  assert.deepEqual(
    (await entries(id)).filter((entry) => entry.resource.labels.task_name === "service").map((entry) => entry.textPayload),
    ["Waiting for job to be provisioned.", "Job failed."],
  );
  assert.deepEqual(await containersOf(id), []);
});

test("customJobs.cancel: CANCELLING at once, then the containers stop and the job is CANCELLED with code 1 (CANCELED)", async () => {
  const { id } = await createJob(jobBody("cancel-1", [{ args: ["--wait-for", "/gcs/bucket/never"] }]));
  await until(id, ["JOB_STATE_RUNNING"]);
  const cancel = await call("POST", `/v1/${PARENT}/customJobs/${id}:cancel`, {});
  assert.equal(cancel.status, 200);
  assert.deepEqual(cancel.json, {});
  assert.equal((await call("GET", `/v1/${PARENT}/customJobs/${id}`)).json.state, "JOB_STATE_CANCELLING");
  const { job } = await until(id, ["JOB_STATE_CANCELLED", "JOB_STATE_FAILED", "JOB_STATE_SUCCEEDED"]);
  assert.equal(job.state, "JOB_STATE_CANCELLED");
  assert.deepEqual(job.error, { code: 1, message: "CANCELED" });
  assert.ok(job.endTime);
  assert.deepEqual(await containersOf(id), [], "the stopped container is gone");
  // A finished job cannot be cancelled again.
  assert.equal((await call("POST", `/v1/${PARENT}/customJobs/${id}:cancel`, {})).status, 400);
});

test("scheduling.timeout passed: the job is stopped and cancelled, as Vertex cancels a job that runs too long", async () => {
  const { id } = await createJob(jobBody("timeout-1", [{ args: ["--wait-for", "/gcs/bucket/never"] }], { timeout: "1s" }));
  const { job, seen } = await until(id, ["JOB_STATE_CANCELLED", "JOB_STATE_FAILED", "JOB_STATE_SUCCEEDED"]);
  assert.equal(job.state, "JOB_STATE_CANCELLED", JSON.stringify(job.error));
  assert.deepEqual(job.error, { code: 1, message: "CANCELED" });
  assert.match(String(job.startTime), /^\d{4}-\d\d-\d\dT/, "it ran (a poll may not have caught it RUNNING)");
  assert.ok(!seen.includes("JOB_STATE_SUCCEEDED") && !seen.includes("JOB_STATE_FAILED"), seen.join(", "));
  assert.deepEqual(await containersOf(id), []);
});

test("an image in a repository never created, or not in the registry, fails the job as an image Vertex cannot pull", async () => {
  const elsewhere = image.replace("/trainers/", "/never-made/");
  const { id } = await createJob(jobBody("pull-1", [{ args: [], imageUri: elsewhere }]));
  const { job } = await until(id, ["JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"]);
  assert.equal(job.state, "JOB_STATE_FAILED");
  const error = job.error as { code: number; message: string };
  assert.equal(error.code, 3);
  assert.equal(
    error.message,
    `Unable to pull the image ${elsewhere} for the replica workerpool0-0: denied: Permission "artifactregistry.repositories.downloadArtifacts" denied on resource "projects/my-proj/locations/us-central1/repositories/never-made" (or it may not exist)`,
  );
  assert.equal(job.startTime, undefined, "it never ran");
  // In a repository that exists, an image never pushed fails the pull itself; the registry is named as the user named it.
  const missing = `us-central1-docker.pkg.dev/my-proj/trainers/job@sha256:${"0".repeat(64)}`;
  const second = await createJob(jobBody("pull-2", [{ args: [], imageUri: missing }]));
  const failed = await until(second.id, ["JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"]);
  assert.equal(failed.job.state, "JOB_STATE_FAILED");
  const message = (failed.job.error as { message: string }).message;
  assert.ok(message.startsWith(`Unable to pull the image ${missing} for the replica workerpool0-0: `), message);
  assert.ok(!message.includes(services.registry), message);
});

test("two hosts (pool 1 with one replica): both run, each with its own task name and CLUSTER_SPEC task, and they reach each other by name", async () => {
  const { id } = await createJob(jobBody("two-1", [{ args: ["--talk", "yes"] }, { args: ["--talk", "yes"] }]));
  const { job } = await until(id, ["JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"]);
  assert.equal(job.state, "JOB_STATE_SUCCEEDED", JSON.stringify(job.error));
  const log = await entries(id);
  const of = (task: string): string[] => log.filter((entry) => entry.resource.labels.task_name === task).map((entry) => entry.textPayload ?? "");
  const cluster = of("workerpool0-0").find((line) => line.startsWith("cluster "));
  assert.match(
    cluster ?? "",
    /^cluster \{"workerpool0": \["cmle-training-workerpool0-([0-9a-f]{10})-0:2222"\], "workerpool1": \["cmle-training-workerpool1-\1-0:2222"\]\}$/,
    "each pool's host names, of one job",
  );
  assert.ok(of("workerpool0-0").includes('task {"index": 0, "type": "workerpool0"}'), of("workerpool0-0").join(" | "));
  assert.ok(of("workerpool1-0").includes('task {"index": 0, "type": "workerpool1"}'), of("workerpool1-0").join(" | "));
  assert.ok(of("workerpool1-0").includes('tf task {"index": 0, "type": "worker"}'));
  assert.ok(of("workerpool1-0").includes(cluster!));
  assert.ok(of("workerpool1-0").includes("heard hello from workerpool0-0"), "the worker reached the chief at its CLUSTER_SPEC name, port 2222");
  assert.equal(log.find((entry) => entry.resource.labels.task_name === "workerpool1-0")?.logName, "projects/my-proj/logs/workerpool1-0");
  assert.deepEqual(await containersOf(id), []);
});

test("close() stops and removes the containers of jobs still running, and waits for them", async () => {
  const other = await startVertexFake(
    {
      aiplatform: loadDocument(TEST_CACHE, "aiplatform.v1"),
      logging: loadDocument(TEST_CACHE, "logging.v2"),
      artifactregistry: loadDocument(TEST_CACHE, "artifactregistry.v1"),
    },
    {},
    { run: { dockerEnv: { ...process.env, DOCKER_HOST: services.DOCKER_HOST }, registry: services.registry, gcs: gcs.root } },
  );
  other.tokens.add(TOKEN);
  const ask = (method: string, path: string, body: unknown) =>
    fetch(`${other.url}${path}`, { method, headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" }, body: JSON.stringify(body) });
  assert.equal((await ask("POST", `/v1/${PARENT}/repositories?repositoryId=trainers`, { format: "DOCKER" })).status, 200);
  const created = (await (
    await ask("POST", `/v1/${PARENT}/customJobs`, jobBody("close-1", [{ args: ["--wait-for", "/gcs/bucket/never"] }]))
  ).json()) as FakeJob;
  const id = created.name.split("/").pop()!;
  for (let tries = 0; tries < 6000 && other.jobs.get(id)!.state !== "JOB_STATE_RUNNING"; tries++) await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(other.jobs.get(id)!.state, "JOB_STATE_RUNNING");
  assert.equal((await containersOf(id)).length, 1);
  await other.close();
  assert.deepEqual(await containersOf(id), [], "nothing of the job is left");
});

test(
  "Vertex test server, restarts option: a replica that exits non-zero is started again in the same container, which keeps its files; the job then succeeds",
  { timeout: 120_000 },
  async () => {
    const { id } = await createJob(jobBody("restart-1", [{ args: ["--fail-first", "yes", "--write", "/gcs/bucket/out/restart-1/done.txt"] }]));
    const { job } = await until(id, ["JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"]);
    assert.equal(job.state, "JOB_STATE_SUCCEEDED", JSON.stringify(job.error));
    const texts = (await entries(id)).filter((entry) => entry.resource.labels.task_name === "workerpool0-0").map((entry) => entry.textPayload);
    assert.equal(texts.filter((text) => text === "started workerpool0-0").length, 2, texts.join(" | "));
    assert.ok(texts.includes("the first start fails"), "the first start's marker was left in the container, so the second did not fail");
    assert.equal(
      await (await fetch(`${gcs.url}/storage/v1/b/bucket/o/${encodeURIComponent("out/restart-1/done.txt")}?alt=media`)).text(),
      "written by workerpool0-0 in two pieces\n",
    );
    assert.deepEqual(await containersOf(id), []);
  },
);

test(
  "Vertex test server, gcsMissingOn: on a machine type where Cloud Storage FUSE is missing, /gcs is not mounted, and what a job writes there never reaches Cloud Storage although it succeeds",
  { timeout: 120_000 },
  async () => {
    const { id } = await createJob(jobBody("nogcs-1", [{ args: ["--write", "/gcs/bucket/out/nogcs-1/model.txt"], machineType: NO_GCS_MACHINE }]));
    const { job } = await until(id, ["JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"]);
    assert.equal(job.state, "JOB_STATE_SUCCEEDED", JSON.stringify(job.error));
    const texts = (await entries(id)).map((entry) => entry.textPayload);
    assert.ok(texts.includes("gcs missing"), texts.join(" | "));
    const listed = (await (await fetch(`${gcs.url}/storage/v1/b/bucket/o?prefix=out/nogcs-1/`)).json()) as { items?: unknown[] };
    assert.deepEqual(listed.items ?? [], [], "the file stayed in the container");
    // The same job on another machine type has /gcs.
    const other = await createJob(jobBody("nogcs-2", [{ args: [] }]));
    await until(other.id, ["JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"]);
    assert.ok((await entries(other.id)).some((entry) => entry.textPayload === "gcs mounted"));
  },
);
