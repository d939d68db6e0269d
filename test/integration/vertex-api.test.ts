/**
 * The Vertex backend's REST calls against the Vertex/Logging/token test
 * server (test/servers/vertex-fake.ts), with credentials as a user has them:
 * a service account key file (a locally made RSA key) that Google's auth
 * library signs a JWT with, exchanged at the token endpoint for a bearer
 * token. The bodies sent are checked against Google's published descriptions
 * by the server; what a user sees is checked here.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { buildSpecFor } from "../../src/jobs/spec.js";
import { UserError } from "../../src/errors.js";
import { vertexBackend } from "../../src/backends/vertex/index.js";
import { customJobRequest, logFilter, parentOf, stateOf } from "../../src/backends/vertex/plan.js";
import { googleSession } from "../../src/backends/vertex/auth.js";
import { entryText, freshEntries, jobIdOf, logWindowFilter, VertexApi, type LogWindow } from "../../src/backends/vertex/api.js";
import { loadDocument } from "../servers/google-discovery.js";
import { PROJECT_NUMBER, startVertexFake, type VertexFake } from "../servers/vertex-fake.js";
import { changesFrom, JobLog, statusLine } from "../../src/backends/vertex/follow.js";
import type { VertexJob } from "../../src/backends/vertex/schema.js";
import { TEST_CACHE, REPO } from "../helpers/cli.js";
import { makeContext } from "../../src/context.js";
import { startGcsFake } from "../servers/gcs-fake.js";
import { writeTree } from "../helpers/tree.js";
import { fileTimeLimit } from "../helpers/limit.js";

fileTimeLimit(15, import.meta.url);

const EMAIL = "trainer@my-proj.iam.gserviceaccount.com";
/** A user's login, as `gcloud auth application-default login` saves it (without a quota project unless a test adds one). */
const USER_LOGIN = {
  client_id: "764086051850-test.apps.googleusercontent.com",
  client_secret: "d-FL95Q19q7MQmFpd7hHD0Ty",
  refresh_token: "1//user-refresh-token",
};
let fake: VertexFake;
let env: Record<string, string>;
let privateKey: string;

/** A service account key file as the IAM console downloads it, for `key` (PEM). */
function keyFile(key: string, email = EMAIL): string {
  const dir = writeTree({}, "alekseylearn-sa-");
  const file = path.join(dir, "key.json");
  fs.writeFileSync(
    file,
    JSON.stringify({
      type: "service_account",
      project_id: "my-proj",
      private_key_id: crypto.randomBytes(20).toString("hex"),
      private_key: key,
      client_email: email,
      client_id: "1234567890",
      auth_uri: "https://accounts.google.com/o/oauth2/auth",
      token_uri: "https://oauth2.googleapis.com/token",
    }),
  );
  return file;
}

before(async () => {
  fs.mkdirSync(TEST_CACHE, { recursive: true });
  const pair = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
  privateKey = pair.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  fake = await startVertexFake(
    {
      aiplatform: loadDocument(TEST_CACHE, "aiplatform.v1"),
      logging: loadDocument(TEST_CACHE, "logging.v2"),
      artifactregistry: loadDocument(TEST_CACHE, "artifactregistry.v1"),
    },
    { [EMAIL]: pair.publicKey.export({ type: "spki", format: "pem" }).toString() },
    { users: [USER_LOGIN] },
  );
  env = {
    HOME: writeTree({}),
    CLOUDSDK_CONFIG: writeTree({}),
    GOOGLE_APPLICATION_CREDENTIALS: keyFile(privateKey),
    CLOUDSDK_AUTH_TOKEN_HOST: fake.url,
    CLOUDSDK_API_ENDPOINT_OVERRIDES_AIPLATFORM: fake.url,
    CLOUDSDK_API_ENDPOINT_OVERRIDES_LOGGING: fake.url,
    CLOUDSDK_API_ENDPOINT_OVERRIDES_ARTIFACTREGISTRY: fake.url,
  };
});

after(async () => {
  await fake.close();
});

function spec(config: Record<string, unknown> = {}) {
  const dir = writeTree({ "train.py": "print('hi')\n" });
  return buildSpecFor(vertexBackend, { artifact: "train.py", config: { output_path: "gs://bucket/runs", project: "my-proj", ...config } }, dir);
}

/** A new custom job named `name` on the test server `environment` points at (not run), with a client to read it. */
async function newJob(name: string, environment: Record<string, string> = env): Promise<{ api: VertexApi; id: string; resource: string }> {
  const api = new VertexApi(await googleSession(environment), "us-central1", environment);
  const created = await api.createCustomJob(
    parentOf("my-proj", "us-central1"),
    customJobRequest(spec(), { name, image: IMAGE, submissionId: "s", version: "1" }),
  );
  return { api, id: jobIdOf(created.name), resource: created.name };
}

const IMAGE = `us-central1-docker.pkg.dev/my-proj/alekseylearn/x-train@sha256:${"b".repeat(64)}`;

test("a service account key signs in at the token endpoint; the job is created, read, found by name and cancelled, in the API's states", async () => {
  const api = new VertexApi(await googleSession(env), "us-central1", env);
  const body = customJobRequest(spec({ instance_count: 2, use_spot: true }), { name: "train-20", image: IMAGE, submissionId: "s-1", version: "0.1.0" });
  const created = await api.createCustomJob(parentOf("my-proj", "us-central1"), body);
  assert.match(created.name, new RegExp(`^projects/${PROJECT_NUMBER}/locations/us-central1/customJobs/\\d+$`));
  assert.equal(stateOf(created.state), "queued");
  assert.equal(fake.tokens.size, 1, "one token was issued, for a JWT the server verified");
  const id = jobIdOf(created.name);
  fake.setState(id, "JOB_STATE_RUNNING");
  assert.equal(stateOf((await api.getCustomJob(created.name))!.state), "running");
  assert.equal((await api.findCustomJob(parentOf("my-proj", "us-central1"), "train-20"))?.name, created.name);
  assert.equal(await api.findCustomJob(parentOf("my-proj", "us-central1"), "no-such-job"), undefined);
  await api.cancelCustomJob(created.name);
  const cancelling = (await api.getCustomJob(created.name))!;
  assert.equal(cancelling.state, "JOB_STATE_CANCELLING");
  assert.equal(stateOf(cancelling.state), "running", "a cancelling job is still running");
  fake.setState(id, "JOB_STATE_CANCELLED");
  assert.equal(stateOf((await api.getCustomJob(created.name))!.state), "stopped");
  await assert.rejects(api.cancelCustomJob(created.name), (err) => err instanceof UserError && /FAILED_PRECONDITION/.test(err.message));
  assert.equal(await api.getCustomJob(`projects/${PROJECT_NUMBER}/locations/us-central1/customJobs/999999`), undefined);
  fake.setState(id, "JOB_STATE_FAILED", "The replica workerpool0-0 exited with a non-zero status of 1.");
  const failed = (await api.getCustomJob(created.name))!;
  assert.equal(stateOf(failed.state), "failed");
  assert.match(failed.error?.message ?? "", /non-zero status of 1/);
});

test("a body the published schema refuses is refused by the server, and the error says what Google said", async () => {
  const api = new VertexApi(await googleSession(env), "us-central1", env);
  const body = customJobRequest(spec(), { name: "bad", image: IMAGE, submissionId: "s", version: "1" });
  (body.jobSpec.workerPoolSpecs[0] as unknown as { replicaCount: number }).replicaCount = 1;
  await assert.rejects(
    api.createCustomJob(parentOf("my-proj", "us-central1"), body),
    (err) => err instanceof UserError && /INVALID_ARGUMENT/.test(err.message) && /replicaCount/.test(err.message),
  );
});

test("a key the token endpoint does not accept: one clear error naming the login command, with no key or token in it", async () => {
  const other = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  const session = await googleSession({ ...env, GOOGLE_APPLICATION_CREDENTIALS: keyFile(other) });
  const err = await session.accessToken().then(
    () => undefined,
    (error: unknown) => error,
  );
  assert.ok(err instanceof UserError, String(err));
  assert.match(err.message, /Invalid JWT Signature/);
  assert.match(err.hint ?? "", /gcloud auth application-default login/);
  const shown = `${err.message} ${err.hint} ${err.details.join(" ")}`;
  assert.ok(!shown.includes("PRIVATE KEY") && !shown.includes(other.split("\n")[1]!) && !/ya29\./.test(shown), shown);
  // And a call made without a token the server issued is refused as Google refuses it.
  const api = new VertexApi(
    { source: "none", quotaProject: undefined, accessToken: async () => "x", headers: async () => ({ authorization: "Bearer ya29.forged" }) },
    "us-central1",
    env,
  );
  await assert.rejects(
    api.getCustomJob("projects/p/locations/us-central1/customJobs/1"),
    (e) => e instanceof UserError && /UNAUTHENTICATED/.test(e.message) && !e.message.includes("ya29.forged"),
  );
});

test(
  "Vertex/Logging test server: the job's log read in windows, every line once, in order, across overlapping reads and entries of the same instant that arrive late",
  { timeout: 60_000 },
  async () => {
    const { api, id } = await newJob("logs-1");
    fake.addLog(id, "before the job\n", "2025-12-31T23:59:59Z");
    fake.addLog(id, "epoch 1\n", "2026-01-01T00:00:01Z");
    fake.addLog(id, "epoch 2\n", "2026-01-01T00:00:02.5Z");
    let window: LogWindow = { lower: "2026-01-01T00:00:00Z", seen: new Map() };
    const shown: string[] = [];
    // Each read up to `upper`; the next from `upper` less an overlap of 2 s.
    const read = async (upper: string, overlapFrom: string): Promise<void> => {
      const page = await api.listLogEntries("my-proj", logWindowFilter(logFilter(id), window.lower, upper));
      const { fresh, window: after } = freshEntries(page.entries, window, overlapFrom);
      window = after;
      shown.push(...fresh.map((entry) => entryText(entry) ?? ""));
    };
    await read("2026-01-01T00:00:02Z", "2026-01-01T00:00:00Z");
    assert.deepEqual(shown, ["epoch 1"], "nothing before the lower bound, nothing at or after the upper one");
    await read("2026-01-01T00:00:04Z", "2026-01-01T00:00:02Z");
    assert.deepEqual(shown, ["epoch 1", "epoch 2"]);
    // Listable only now: one of the instant already shown, one older than the last upper bound but inside the overlap.
    fake.addLog(id, "epoch 2 (another replica)", "2026-01-01T00:00:02.500Z");
    fake.addLog(id, "late but in the overlap", "2026-01-01T00:00:03Z");
    fake.addLog(id, "done", "2026-01-01T00:00:05Z");
    await read("2026-01-01T00:00:06Z", "2026-01-01T00:00:04Z");
    await read("2026-01-01T00:00:08Z", "2026-01-01T00:00:06Z");
    assert.deepEqual(shown, ["epoch 1", "epoch 2", "epoch 2 (another replica)", "late but in the overlap", "done"]);
    // Every entries.list request named the job by its numeric id and both bounds, and the server checked each body against logging v2.
    const asked = fake.requests.filter((request) => request.path === "/v2/entries:list").slice(-4);
    assert.ok(asked.every((request) => JSON.stringify(request.body).includes(`resource.labels.job_id=\\"${id}\\"`)));
    assert.ok(asked.every((request) => /timestamp>=\\"[^"]+\\" AND timestamp<\\"/.test(JSON.stringify(request.body))));
  },
);

test("Google's auth library is loaded only when a Vertex command asks for credentials (--help never loads it)", () => {
  const src = path.join(REPO, "src");
  const files = (fs.readdirSync(src, { recursive: true }) as string[]).filter((file) => file.endsWith(".ts"));
  const staticImports = files.filter((file) => /^\s*import[^(]*from\s+["']google-auth-library["']/m.test(fs.readFileSync(path.join(src, file), "utf8")));
  assert.deepEqual(staticImports, []);
  // Loaded on first use with loadSdk (src/sdk.ts: require(), which Node 20 does faster than import() for a CommonJS package).
  const dynamic = files.filter((file) => /loadSdk<[^>]*>\(["']google-auth-library["']\)/.test(fs.readFileSync(path.join(src, file), "utf8")));
  assert.deepEqual(dynamic, [path.join("backends", "vertex", "auth.ts")]);
});

test("what an answer changes in the record: states, times, and the reason in Vertex's words", () => {
  const s = spec();
  const record: VertexJob = {
    name: "j",
    backend: "vertex",
    state: "running",
    spec: s,
    createdAt: "2026-01-01T00:00:00.000Z",
    jobOutput: "gs://bucket/runs/j",
    provider: { project: "my-proj" },
  };
  const resource = `projects/${PROJECT_NUMBER}/locations/us-central1/customJobs/7`;
  const done = changesFrom(
    { name: resource, displayName: "j", state: "JOB_STATE_SUCCEEDED", startTime: "2026-01-01T00:01:00Z", endTime: "2026-01-01T00:05:00Z" },
    record,
  );
  assert.deepEqual(done, {
    state: "completed",
    provider: { project: "my-proj", resource, status: "JOB_STATE_SUCCEEDED", message: "", endTime: "2026-01-01T00:05:00Z" },
    startedAt: "2026-01-01T00:01:00.000Z",
    endedAt: "2026-01-01T00:05:00.000Z",
  });
  assert.equal(done.model, undefined, "a succeeded job's model is looked for in Cloud Storage (describe), never assumed from its state");
  const failed = changesFrom(
    {
      name: resource,
      displayName: "j",
      state: "JOB_STATE_FAILED",
      error: { code: 3, message: "The replica workerpool0-0 exited with a non-zero status of 1." },
    },
    record,
  );
  assert.equal(failed.state, "failed");
  assert.equal(failed.reason, "The replica workerpool0-0 exited with a non-zero status of 1.");
  assert.equal(failed.model, undefined);
  assert.equal(
    statusLine({ ...record, ...failed, provider: failed.provider! }),
    "[vertex] JOB_STATE_FAILED: The replica workerpool0-0 exited with a non-zero status of 1.",
  );
  // Vertex answers CANCELED for a stop, for a cancel from elsewhere and for a run past scheduling.timeout alike; the record tells them apart.
  const cancelled = { name: resource, displayName: "j", state: "JOB_STATE_CANCELLED", error: { code: 1, message: "CANCELED" } };
  assert.equal(changesFrom(cancelled, { ...record, provider: { ...record.provider, cancelRequested: "true" } }).reason, "stopped by request");
  assert.equal(changesFrom(cancelled, record).reason, "cancelled outside alekseylearn (Vertex AI says CANCELED)");
  const timedOut = {
    ...cancelled,
    startTime: "2026-01-01T00:00:00Z",
    endTime: new Date(Date.parse("2026-01-01T00:00:00Z") + s.settings.max_runtime * 1000).toISOString(),
  };
  assert.equal(changesFrom(timedOut, record).reason, `stopped by Vertex AI: the job ran past config.max_runtime (${s.settings.max_runtime} s)`);
  assert.equal(changesFrom(timedOut, record).state, "stopped");
  // Workers run before RUNNING: a job cancelled for its timeout may have run less than max_runtime since startTime; from createTime it is timed out.
  const created = "2026-01-01T00:00:00Z";
  const late = new Date(Date.parse(created) + s.settings.max_runtime * 1000).toISOString();
  const fromCreation = { ...cancelled, createTime: created, startTime: "2026-01-01T00:10:00Z", endTime: late };
  assert.equal(changesFrom(fromCreation, record).reason, `stopped by Vertex AI: the job ran past config.max_runtime (${s.settings.max_runtime} s)`);
  // A cancel from elsewhere well before the timeout is not one.
  const early = { ...cancelled, createTime: created, startTime: created, endTime: "2026-01-01T01:00:00Z" };
  assert.match(changesFrom(early, record).reason!, /^cancelled outside alekseylearn/);
  assert.equal(changesFrom({ name: resource, displayName: "j", state: "JOB_STATE_EXPIRED" }, record).state, "failed");
  assert.equal(changesFrom({ name: resource, displayName: "j", state: "JOB_STATE_QUEUED" }, record).endedAt, undefined);
});

test("the log reader asks Cloud Logging no faster than its interval, names replicas when there are several, and shows each line once", async () => {
  const api = new VertexApi(await googleSession(env), "us-central1", env);
  const created = await api.createCustomJob(
    parentOf("my-proj", "us-central1"),
    customJobRequest(spec(), { name: "logs-2", image: IMAGE, submissionId: "s", version: "1" }),
  );
  const id = jobIdOf(created.name);
  fake.addLog(id, "hello", "2026-01-02T00:00:01Z");
  const log = new JobLog(api, "my-proj", created.name, 2, 300);
  const before = fake.requests.length;
  const started = Date.now();
  assert.deepEqual(await log.read(), ["[workerpool0-0] hello"]);
  assert.deepEqual(await log.read(), []);
  assert.deepEqual(await log.read(), []);
  assert.ok(Date.now() - started >= 600, `three reads took ${Date.now() - started} ms, at least two intervals`);
  assert.equal(fake.requests.length - before, 3);
  // A stop while waiting ends the wait at once.
  const controller = new AbortController();
  const slow = new JobLog(api, "my-proj", created.name, 1, 60_000, controller.signal);
  await slow.read();
  const waiting = slow.read();
  controller.abort();
  await assert.rejects(waiting, (err) => (err as Error).name === "AbortError");
});

test("the image repository: found when it exists, made (a DOCKER repository, labelled) when it does not, and made once", async () => {
  const api = new VertexApi(await googleSession(env), "us-central1", env);
  assert.equal(await api.repositoryExists("my-proj", "us-central1", "alekseylearn"), false);
  await api.createRepository("my-proj", "us-central1", "alekseylearn");
  assert.equal(await api.repositoryExists("my-proj", "us-central1", "alekseylearn"), true);
  assert.deepEqual(fake.repositories.get("projects/my-proj/locations/us-central1/repositories/alekseylearn"), {
    format: "DOCKER",
    description: "Training images of alekseylearn jobs",
    labels: { alekseylearn: "training-images" },
    name: "projects/my-proj/locations/us-central1/repositories/alekseylearn",
  });
  await api.createRepository("my-proj", "us-central1", "alekseylearn");
  assert.equal(fake.repositories.size, 1);
  await assert.rejects(api.createRepository("my-proj", "us-central1", "Bad_Name"), (err) => err instanceof UserError && /INVALID_ARGUMENT/.test(err.message));
});

test(
  "Vertex and Cloud Storage test servers: describe gives a SUCCEEDED job its model only once OUTPUT/JOB/output/model.tar.gz exists; otherwise none, and says where it looked",
  { timeout: 120_000 },
  async () => {
    const gcs = await startGcsFake(loadDocument(TEST_CACHE, "storage.v1"), ["bucket"]);
    try {
      const ctx = makeContext({ cwd: writeTree({}), env: { ...env, STORAGE_EMULATOR_HOST: gcs.url, GOOGLE_CLOUD_PROJECT: "my-proj" } });
      const api = new VertexApi(await googleSession(env), "us-central1", env);
      const body = customJobRequest(spec(), { name: "nomodel-1", image: IMAGE, submissionId: "s-2", version: "0.1.0" });
      const created = await api.createCustomJob(parentOf("my-proj", "us-central1"), body);
      // As a job ends on a machine without /gcs, or with an image whose entrypoint is not alekseylearn's: SUCCEEDED, and nothing in Cloud Storage.
      fake.setState(jobIdOf(created.name), "JOB_STATE_SUCCEEDED");
      const record: VertexJob = {
        name: "nomodel-1",
        backend: "vertex",
        state: "running",
        spec: spec(),
        createdAt: new Date().toISOString(),
        jobOutput: "gs://bucket/runs/nomodel-1",
        provider: { resource: created.name, project: "my-proj", region: "us-central1" },
      };
      const missing = await vertexBackend.describe(record, ctx);
      assert.equal(missing.state, "completed");
      assert.equal(missing.model, undefined);
      assert.equal(missing.reason, "the job succeeded, but its model was not found at gs://bucket/runs/nomodel-1/output/model.tar.gz");
      // Once the object exists, the same answer gives the model.
      fs.mkdirSync(path.join(gcs.root, "bucket", "runs", "nomodel-1", "output"), { recursive: true });
      fs.writeFileSync(path.join(gcs.root, "bucket", "runs", "nomodel-1", "output", "model.tar.gz"), "not really a tarball");
      const found = await vertexBackend.describe(record, ctx);
      assert.equal(found.state, "completed");
      assert.equal(found.model, "gs://bucket/runs/nomodel-1/output/model.tar.gz");
      assert.equal(found.reason, undefined);
    } finally {
      await gcs.close();
    }
  },
);

/** An environment whose credentials are a user's ADC file (type authorized_user), with `extra` in the file and the variables. */
function userEnv(file: Record<string, string>, variables: Record<string, string> = {}): Record<string, string> {
  const gcloud = writeTree({ "application_default_credentials.json": JSON.stringify({ type: "authorized_user", ...USER_LOGIN, ...file }) });
  const { GOOGLE_APPLICATION_CREDENTIALS: _, ...rest } = env;
  return { ...rest, CLOUDSDK_CONFIG: gcloud, ...variables };
}

test(
  "Vertex test server (user credentials need a quota project): x-goog-user-project from the ADC file's quota_project_id, overridden by GOOGLE_CLOUD_QUOTA_PROJECT and config.quota_project, on aiplatform, logging and artifactregistry calls; without one, Google's refusal and the fix",
  { timeout: 60_000 },
  async () => {
    const calls = async (variables: Record<string, string>, file: Record<string, string>, quotaProject?: string): Promise<Array<string | undefined>> => {
      const session = await googleSession(userEnv(file, variables), { quotaProject });
      const api = new VertexApi(session, "us-central1", userEnv(file, variables));
      const from = fake.quotaProjects.length;
      await api.getCustomJob(`projects/${PROJECT_NUMBER}/locations/us-central1/customJobs/424242`);
      await api.listLogEntries("my-proj", logFilter("424242"));
      await api.repositoryExists("my-proj", "us-central1", "alekseylearn");
      const seen = fake.quotaProjects.slice(from);
      assert.deepEqual(
        seen.map((call) => call.path.split("/")[1]),
        ["v1", "v2", "v1"],
        "the three APIs were called",
      );
      return seen.map((call) => call.project);
    };
    // The ADC file's quota_project_id, as google-auth-library sends it.
    assert.deepEqual(await calls({}, { quota_project_id: "billing-proj" }), ["billing-proj", "billing-proj", "billing-proj"]);
    // GOOGLE_CLOUD_QUOTA_PROJECT over the file's; config.quota_project over both.
    assert.deepEqual(await calls({ GOOGLE_CLOUD_QUOTA_PROJECT: "env-proj" }, { quota_project_id: "billing-proj" }), ["env-proj", "env-proj", "env-proj"]);
    assert.deepEqual(await calls({ GOOGLE_CLOUD_QUOTA_PROJECT: "env-proj" }, { quota_project_id: "billing-proj" }, "config-proj"), [
      "config-proj",
      "config-proj",
      "config-proj",
    ]);
    // A service account's calls carry none unless one is set, and are accepted without it.
    const robot = new VertexApi(await googleSession(env), "us-central1", env);
    const from = fake.quotaProjects.length;
    await robot.listLogEntries("my-proj", logFilter("424242"));
    assert.equal(fake.quotaProjects[from]?.project, undefined);
    // A user's login without any quota project: Google's refusal, and the hint names every way to set one.
    const bare = userEnv({});
    const api = new VertexApi(await googleSession(bare), "us-central1", bare);
    await assert.rejects(api.listLogEntries("my-proj", logFilter("424242")), (err) => {
      assert.ok(err instanceof UserError);
      assert.match(err.message, /The logging\.googleapis\.com API requires a quota project, which is not set by default/);
      assert.match(
        err.hint ?? "",
        /--config\.quota_project=PROJECT_ID, GOOGLE_CLOUD_QUOTA_PROJECT, or `gcloud auth application-default set-quota-project PROJECT_ID`/,
      );
      return true;
    });
  },
);

test("config.quota_project is a project ID, checked before anything is built", { timeout: 10_000 }, () => {
  assert.deepEqual(vertexBackend.check(spec({ quota_project: "billing-proj" })), []);
  assert.throws(() => spec({ quota_project: "Bad_Project" }), /config\.quota_project Bad_Project is not a project ID/);
});
/** A second Vertex/Logging test server whose Cloud Logging lists entries late and out of order and answers every third read 429. */
async function untidyLogging(lateMs: number): Promise<{ server: VertexFake; env: Record<string, string> }> {
  const pair = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
  const server = await startVertexFake(
    {
      aiplatform: loadDocument(TEST_CACHE, "aiplatform.v1"),
      logging: loadDocument(TEST_CACHE, "logging.v2"),
    },
    { [EMAIL]: pair.publicKey.export({ type: "spki", format: "pem" }).toString() },
    { logging: { lateMs, tooManyRequestsEvery: 3 } },
  );
  const key = pair.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  return {
    server,
    env: {
      ...env,
      GOOGLE_APPLICATION_CREDENTIALS: keyFile(key),
      CLOUDSDK_AUTH_TOKEN_HOST: server.url,
      CLOUDSDK_API_ENDPOINT_OVERRIDES_AIPLATFORM: server.url,
      CLOUDSDK_API_ENDPOINT_OVERRIDES_LOGGING: server.url,
    },
  };
}

/** Write "line 1" … "line N" to job `id`'s log, one every `everyMs`, each stamped when written. */
async function writeNumbered(server: VertexFake, id: string, n: number, everyMs: number): Promise<void> {
  for (let i = 1; i <= n; i++) {
    server.addLog(id, `line ${i}\n`, new Date().toISOString());
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** Read `log` while `writing` runs, then until it says the log is complete; every line read. */
async function readAll(log: JobLog, writing: Promise<void>): Promise<string[]> {
  let done = false;
  void writing.then(() => (done = true));
  const lines: string[] = [];
  while (!done) lines.push(...(await log.read()));
  const end = new Date().toISOString();
  for (let empty = 0; !log.complete(end, empty);) {
    const more = await log.read();
    lines.push(...more);
    empty = more.length ? 0 : empty + 1;
  }
  return lines;
}

const numbered = (n: number): string[] => Array.from({ length: n }, (_, i) => `line ${i + 1}`);

test(
  "Vertex/Logging test server with late, out-of-order entries (lateMs) and a 429 every third read: the follower's window lags behind them, so lines 1..N come each once, in order; the long waits are told",
  { timeout: 120_000 },
  async () => {
    const { server, env: untidy } = await untidyLogging(1_500);
    try {
      const { api, id, resource } = await newJob("late-1", untidy);
      const told: string[] = [];
      const from = new Date(Date.now() - 1000).toISOString();
      // A lag longer than the latest an entry becomes listable: nothing is listed before the entries older than it are all there.
      const log = new JobLog(api, "my-proj", resource, 1, 100, undefined, {
        from,
        lagMs: 2_500,
        overlapMs: 5_000,
        onWait: (line) => told.push(line),
        tellWaitsFromMs: 0,
      });
      const lines = await readAll(log, writeNumbered(server, id, 40, 40));
      assert.deepEqual(lines, numbered(40));
      assert.ok(
        told.some((line) => /Cloud Logging is over its read quota \(429\); reading the job's log again in \d+ s\./.test(line)),
        told.join("\n"),
      );
      const asked = server.requests.filter((request) => request.path === "/v2/entries:list");
      assert.ok(asked.length >= 3, "at least one read was answered 429 and asked again");
      const first = JSON.stringify(asked[0]!.body);
      assert.ok(first.includes(`timestamp>=\\"${from}\\"`), `the first read starts at the job's creation: ${first}`);
    } finally {
      await server.close();
    }
  },
);

test(
  "Vertex/Logging test server with entries listable later than the lag (lateMs 1.5 s, lag 0): none is lost or shown twice; the overlap catches the late ones",
  { timeout: 120_000 },
  async () => {
    const { server, env: untidy } = await untidyLogging(1_500);
    try {
      const { api, id, resource } = await newJob("late-2", untidy);
      const from = new Date(Date.now() - 1000).toISOString();
      const log = new JobLog(api, "my-proj", resource, 1, 100, undefined, { from, lagMs: 0, overlapMs: 5_000 });
      const lines = await readAll(log, writeNumbered(server, id, 40, 40));
      assert.equal(new Set(lines).size, lines.length, `no line twice: ${lines.join(", ")}`);
      assert.deepEqual(
        [...lines].sort((a, b) => Number(a.split(" ")[1]) - Number(b.split(" ")[1])),
        numbered(40),
        "every line",
      );
    } finally {
      await server.close();
    }
  },
);

test(
  "Vertex/Logging test server: jsonPayload entries show their message (as gcloud's log_util shows them), or the object when it has none",
  { timeout: 60_000 },
  async () => {
    const { api, id, resource } = await newJob("json-1");
    const labels = { job_id: id, task_name: "workerpool0-0", project_id: "my-proj" };
    const entry = (insertId: string, timestamp: string, payload: object) => ({
      jobId: id,
      entry: { insertId, timestamp, severity: "INFO", resource: { type: "ml_job", labels }, logName: "projects/my-proj/logs/workerpool0-0", ...payload },
    });
    fake.logs.push(entry("a", "2026-01-03T00:00:01Z", { textPayload: "text line\n" }));
    fake.logs.push(entry("b", "2026-01-03T00:00:02Z", { jsonPayload: { message: "json line\n", step: 2 } }));
    fake.logs.push(entry("c", "2026-01-03T00:00:03Z", { jsonPayload: { loss: 0.5 } }));
    const log = new JobLog(api, "my-proj", resource, 1, 10, undefined, { from: "2026-01-03T00:00:00Z" });
    assert.deepEqual(await log.read(), ["text line", "json line", '{"loss":0.5}']);
    assert.deepEqual(await log.read(), [], "each once");
  },
);
