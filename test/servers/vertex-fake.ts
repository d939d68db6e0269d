/**
 * A Vertex AI, Cloud Logging and OAuth token test server on loopback, built
 * from Google's published API descriptions (google-discovery.ts), for what no
 * emulator covers. It is strict where Google is:
 *
 * - the token endpoint takes a service account's signed JWT (grant type
 *   urn:ietf:params:oauth:grant-type:jwt-bearer), checks its RS256 signature
 *   with the account's public key and its iss, aud, scope and exp claims, and
 *   answers a short-lived bearer token, as
 *   developers.google.com/identity/protocols/oauth2/service-account#httprest
 *   describes; every API call without a token it issued is answered 401
 *   UNAUTHENTICATED;
 * - request bodies are checked field by field against the method's request
 *   schema (unknown fields, wrong types, int64 as strings, enums, output-only
 *   fields all refused with 400 INVALID_ARGUMENT), and paths against the
 *   method's parameter patterns;
 * - answers have the documented shapes: resource names with the project's
 *   number, google.rpc.Status errors, JOB_STATE_* states.
 *
 * Without the `run` option jobs do not run: the test moves them through their
 * states (`setState`) and writes their log lines (`addLog`).
 *
 * With `run`, a created job runs on its own, as Vertex runs a custom training
 * job (cloud.google.com/vertex-ai/docs/training/understanding-training-service):
 * its image is pulled from Artifact Registry (the local docker-registry stands
 * in for every REGION-docker.pkg.dev host, and the repository must exist in
 * this server's Artifact Registry), every replica of every worker pool runs as
 * its own container with Cloud Storage mounted at /gcs (the Cloud Storage test
 * server's folder, as Cloud Storage FUSE mounts buckets there:
 * cloud.google.com/vertex-ai/docs/training/cloud-storage-file-system), with the
 * variables Vertex sets (AIP_*, CLOUD_ML_JOB_ID, CLUSTER_SPEC, TF_CONFIG), and
 * every line a container prints becomes a Cloud Logging entry while it runs.
 * The job ends JOB_STATE_SUCCEEDED when every replica exits 0, FAILED when one
 * does not (the others are stopped), and CANCELLED after customJobs.cancel or
 * when scheduling.timeout passes. `setState` and `addLog` still work on such
 * jobs, for tests that script a part of one.
 *
 * Replicas of a job with more than one host share a Docker network of their
 * own, on which each is found by its Vertex host name, as CLUSTER_SPEC names
 * them: cmle-training-workerpool1-<10 hex digits, one per job>-0:2222, the form
 * real jobs show (github:googleapis/python-aiplatform's vertexai unit tests,
 * _TEST_CLUSTER_SPEC_CHIEF_STR; Google's distributed-training page abbreviates
 * it cmle-training-workerpool1-ab-0); its log entries carry the task name
 * workerpool1-0. A name resolves only once its container runs (Docker's
 * embedded DNS), as a peer's machine may still be starting on Vertex. This
 * machine's loopback is not on that network (the test dockerd forwards
 * nothing); a job with one host uses the host's network, as the other test
 * servers' containers do, with its own Vertex name resolving to itself.
 *
 * Two options reproduce what some Vertex machines do:
 * - `gcsMissingOn` (machine types): their replicas run without /gcs mounted, as
 *   github:GoogleCloudPlatform/gcsfuse#4333 reports for a3-ultragpu-8g (H200)
 *   and B200 machines, where the FUSE mount stopped appearing;
 * - `restarts` (a count): a replica that exits non-zero is started again in its
 *   own container (the same file system and host name: the same VM) up to that
 *   many times before it fails the job; Vertex "restarts the worker immediately
 *   in the same VM" and allows "up to five restarts per worker" for an error
 *   that is not permanent (understanding-training-service). Without it (the
 *   default) no replica is restarted.
 */
import crypto from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { docker } from "../../src/package/docker.js";
import type { GcsFake } from "./gcs-fake.js";
import { checkBody, findMethod, type DiscoveryDocument } from "./google-discovery.js";

/** The project number the server gives every project (Vertex names resources by number, whatever the caller used). */
export const PROJECT_NUMBER = "123456789012";

/** A job as the server keeps it. */
export interface FakeJob {
  [key: string]: unknown;
  name: string;
  displayName: string;
  state: string;
}

/** How jobs run, when they do (the `run` option of startVertexFake). */
export interface VertexRunOptions {
  /** The environment of the `docker` program that pulls and runs training images (DOCKER_HOST, …). */
  dockerEnv: Record<string, string | undefined>;
  /** host:port of the docker-registry standing in for every REGION-docker.pkg.dev host. */
  registry: string;
  /** What containers see at /gcs: the Cloud Storage test server (its root folder), or a folder. */
  gcs: GcsFake | string;
  /** Seconds `docker stop` gives a replica between SIGTERM and SIGKILL when its job is cancelled or ends early; 5 by default. */
  stopGraceSeconds?: number;
  /** Machine types whose replicas get no /gcs (Cloud Storage FUSE missing: github:GoogleCloudPlatform/gcsfuse#4333). */
  gcsMissingOn?: string[];
  /** How many times a replica that exits non-zero is started again in its own container before it fails the job (Vertex: up to 5); 0 by default. */
  restarts?: number;
}

/**
 * How the Cloud Logging part behaves where the real service is less tidy than
 * a list (the `logging` option of startVertexFake; each off by default).
 */
export interface LoggingFakeOptions {
  /**
   * An entry becomes listable up to this many milliseconds after its
   * timestamp, each after its own delay, so entries become listable late and
   * out of order (see `listable`).
   */
  lateMs?: number;
  /** Every this many entries.list requests (2 or more), one is answered 429 RESOURCE_EXHAUSTED (see `overQuota`). */
  tooManyRequestsEvery?: number;
  /** A line a container prints that is a JSON object becomes a jsonPayload entry, as Google's logging agents parse structured logs (see `payloadOf`). */
  structured?: boolean;
}

/** What startVertexFake takes besides the documents and accounts. */
export interface VertexFakeOptions {
  /** Run created jobs' containers with Docker; without it, jobs stay where setState puts them. */
  run?: VertexRunOptions;
  /** Users' logins (an ADC `authorized_user` file's client and refresh token) the token endpoint accepts; see userLogins below. */
  users?: UserLogin[];
  /** Cloud Logging's untidy ways: late, out-of-order entries, 429s, jsonPayload. */
  logging?: LoggingFakeOptions;
  /**
   * customJobs.get never answers JOB_STATE_RUNNING: a job passes through it between two polls, as a short job may on
   * Vertex (a poll every few seconds sees only the states a job is in when asked). See `polledView`.
   */
  hideRunning?: boolean;
}

/** A user's login as `gcloud auth application-default login` saves it (application_default_credentials.json, type authorized_user). */
export interface UserLogin {
  client_id: string;
  client_secret: string;
  refresh_token: string;
}

/** A Cloud Logging entry as entries.list answers it (one payload: LogEntry's payload is a oneof). */
export interface FakeLogEntry {
  insertId: string;
  timestamp: string;
  textPayload?: string;
  jsonPayload?: Record<string, unknown>;
  severity: string;
  resource: { type: string; labels: { job_id: string; task_name: string; project_id: string } };
  logName: string;
}

/** A running test server. */
export interface VertexFake {
  url: string;
  jobs: Map<string, FakeJob>;
  /** Artifact Registry repositories by resource name. */
  repositories: Map<string, object>;
  /** Every request: method, path, and body. */
  requests: Array<{ method: string; path: string; body: unknown }>;
  /** Tokens handed out. */
  tokens: Set<string>;
  /** Every API request's x-goog-user-project header (undefined when absent), in order, with its path. */
  quotaProjects: Array<{ path: string; project: string | undefined }>;
  /** Every log entry, by job id, in the order written; `listableAt` (ms since the epoch) when `logging.lateMs` holds it back. */
  logs: Array<{ jobId: string; entry: FakeLogEntry; listableAt?: number }>;
  setState(id: string, state: string, error?: string): void;
  addLog(id: string, text: string, timestamp: string, insertId?: string): void;
  /** Stop and remove every job's containers (waiting for them), then close the server. */
  close(): Promise<void>;
}

const TERMINAL = ["JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"];

function status(res: http.ServerResponse, code: number, grpc: string, message: string): void {
  res.writeHead(code, { "content-type": "application/json; charset=UTF-8" });
  res.end(JSON.stringify({ error: { code, message, status: grpc } }));
}

function json(res: http.ServerResponse, body: unknown): void {
  res.writeHead(200, { "content-type": "application/json; charset=UTF-8" });
  res.end(JSON.stringify(body));
}

function base64url(text: string): Buffer {
  return Buffer.from(text.replace(/-/g, "+").replace(/_/g, "/"), "base64");
}

/** An RFC 3339 time as nanoseconds since the epoch, so that times finer than a millisecond compare as Cloud Logging compares them. */
function nanos(time: string): bigint {
  const match = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(time);
  if (!match) throw new Error(`not an RFC 3339 time: ${time}`);
  return BigInt(Date.parse(`${match[1]}${match[3]}`)) * 1_000_000n + BigInt((match[2] ?? "").padEnd(9, "0"));
}

/** The wall clock to the nanosecond (monotonic within this process), as Cloud Logging writes entry timestamps: 2026-01-01T00:00:01.123456789Z. */
const clockBase = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
let lastStamp = 0n;
function timestamp(): string {
  let now = clockBase + process.hrtime.bigint();
  if (now <= lastStamp) now = lastStamp + 1n;
  lastStamp = now;
  return `${new Date(Number(now / 1_000_000n)).toISOString().slice(0, 19)}.${String(now % 1_000_000_000n).padStart(9, "0")}Z`;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** What a CustomJobSpec holds that the runner reads. */
interface JobSpec {
  workerPoolSpecs: Array<{
    replicaCount?: string;
    machineSpec?: { machineType?: string };
    containerSpec?: { imageUri: string; command?: string[]; args?: string[]; env?: Array<{ name: string; value?: string }> };
    pythonPackageSpec?: unknown;
  }>;
  baseOutputDirectory?: { outputUriPrefix: string };
  scheduling?: { timeout?: string };
}

/** One replica's container. */
interface Replica {
  /** Vertex's name for it in the job's log: workerpool1-0. */
  task: string;
  container: string;
  /** `docker start` was called and has not returned. */
  running: boolean;
  /** The last lines it wrote on stderr, for a failure's message. */
  errors: string[];
}

/** A job the server runs. */
interface Run {
  id: string;
  project: string;
  job: FakeJob;
  /** Why it is being stopped, once it is. */
  stop?: "cancel" | "timeout";
  /** Why it failed (the first replica that exited non-zero), once one did. */
  failure?: string;
  replicas: Replica[];
}

/**
 * The Artifact Registry path of a Docker image, REGION-docker.pkg.dev/PROJECT/REPOSITORY/IMAGE[@sha256:…|:TAG]
 * (cloud.google.com/artifact-registry/docs/docker/names), or undefined for another registry's.
 */
function artifactImage(uri: string): { host: string; region: string; project: string; repository: string; image: string; reference: string } | undefined {
  const match = /^(([a-z0-9-]+)-docker\.pkg\.dev)\/([^/]+)\/([^/]+)\/(.+)$/.exec(uri);
  if (!match) return undefined;
  const rest = match[5]!;
  const at = rest.indexOf("@");
  const colon = rest.lastIndexOf(":");
  const cut = at >= 0 ? at : colon > rest.lastIndexOf("/") ? colon : rest.length;
  return {
    host: match[1]!,
    region: match[2]!,
    project: match[3]!,
    repository: match[4]!,
    image: rest.slice(0, cut),
    reference: at >= 0 ? rest.slice(at) : cut < rest.length ? rest.slice(cut) : ":latest",
  };
}

/** Seconds of a google-duration ("3600s", "1.5s"). */
function seconds(duration: string): number {
  return Number(duration.replace(/s$/, ""));
}

// -------------------------------------------------------------- Cloud Logging's untidy ways (the `logging` option)

/**
 * When the `n`th entry written becomes listable: `lateMs` at most after its time, each entry after its own delay (a fixed
 * scatter over 0..lateMs, so runs repeat), so a later entry may be listable before an earlier one. Cloud Logging promises no
 * order of ingestion: gcloud's log streamer says "we have no guarantee that we will receive logs in chronological order" and
 * never reads the newest 5 s for it (lib/googlecloudsdk/command_lib/logs/stream.py), and logging v2's
 * ListLogEntriesRequest.orderBy warns that "timestamp asc" "may take a long time to fetch matching logs that are only recently
 * ingested" (logging.v2.json).
 */
export function listable(writtenAt: number, n: number, lateMs: number): number {
  return writtenAt + Math.round((lateMs * ((n * 7919) % 11)) / 10);
}

/**
 * Whether the `n`th entries.list request (from 1) is answered 429: every `every`th one. Cloud Logging's read quota is 60
 * entries.list requests a minute per project, shared by every reader of the project (cloud.google.com/logging/quotas), so a
 * reader gets a 429 when others have spent it; its answer is RESOURCE_EXHAUSTED "Quota exceeded for quota metric 'Read
 * requests' and limit 'Read requests per minute' of service 'logging.googleapis.com'" (github:snarfed/bridgy-fed#620,
 * github:googleapis/google-cloud-dotnet#11745).
 */
export function overQuota(n: number, every: number | undefined): boolean {
  return every !== undefined && every >= 2 && n % every === 0;
}

/** The 429 Cloud Logging answers over its read quota, in google.rpc.Status form. */
function quotaError(res: http.ServerResponse): void {
  status(
    res,
    429,
    "RESOURCE_EXHAUSTED",
    `Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute' of service 'logging.googleapis.com' for consumer 'project_number:${PROJECT_NUMBER}'.`,
  );
}

/**
 * The payload of a line a container printed: with `structured`, a line that is a JSON object is a jsonPayload (its
 * `severity` taken out as the entry's severity), as Google's logging agents record a container's structured output ("the
 * JSON object is stored in the jsonPayload field", the special fields severity and message:
 * cloud.google.com/logging/docs/structured-logging); any other line a textPayload.
 */
export function payloadOf(
  line: string,
  structured: boolean | undefined,
): { textPayload: string } | { jsonPayload: Record<string, unknown>; severity?: string } {
  if (structured && line.trimStart().startsWith("{")) {
    try {
      const parsed = JSON.parse(line) as unknown;
      if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) {
        const { severity, ...rest } = parsed as Record<string, unknown>;
        return { jsonPayload: rest, ...(typeof severity === "string" ? { severity } : {}) };
      }
    } catch {
      // not JSON: a text line
    }
  }
  return { textPayload: line };
}

/** What customJobs.get answers for `job` with `hideRunning`: while it is RUNNING, what a poll before RUNNING saw (PENDING, no startTime). */
export function polledView(job: FakeJob, hideRunning: boolean | undefined): FakeJob {
  if (!hideRunning || job.state !== "JOB_STATE_RUNNING") return job;
  const { startTime: _, ...before } = job;
  return { ...before, state: "JOB_STATE_PENDING" };
}

/** Start the server; `accounts` maps each service account's email to its public key (PEM). */
export async function startVertexFake(
  docs: { aiplatform: DiscoveryDocument; logging: DiscoveryDocument; artifactregistry?: DiscoveryDocument },
  accounts: Record<string, string>,
  options: VertexFakeOptions = {},
): Promise<VertexFake> {
  const jobs = new Map<string, FakeJob>();
  const logs: VertexFake["logs"] = [];
  const requests: VertexFake["requests"] = [];
  const tokens = new Set<string>();
  const quota = userLogins(options.users ?? [], tokens);
  const repositories = new Map<string, object>();
  const runs = new Map<string, Run>();
  /** Every job's lifecycle, so that close() can wait for them. */
  const lifecycles = new Set<Promise<void>>();
  /** Containers and networks that may exist, so that close() can remove them. */
  const containers = new Set<string>();
  const networks = new Set<string>();
  const closing = new AbortController();
  let next = 1000;
  /** entries.list requests so far. */
  let reads = 0;
  const create = findMethod(docs.aiplatform, "aiplatform.projects.locations.customJobs.create")!;
  const listEntries = findMethod(docs.logging, "logging.entries.list")!;

  // -------------------------------------------------------------- Cloud Logging

  const addEntry = (jobId: string, project: string, task: string, text: string, severity: string, at = timestamp(), insertId?: string): void => {
    const payload = task === "service" ? { textPayload: text } : payloadOf(text, options.logging?.structured);
    const lateMs = options.logging?.lateMs;
    logs.push({
      jobId,
      ...(lateMs ? { listableAt: listable(Date.now(), logs.length, lateMs) } : {}),
      entry: {
        insertId: insertId ?? crypto.randomBytes(6).toString("hex"),
        timestamp: at,
        severity,
        ...payload,
        resource: { type: "ml_job", labels: { job_id: jobId, task_name: task, project_id: project } },
        // A replica's lines are in the log named after it; the service's own lines in ml.googleapis.com/JOB_ID (this server's reading).
        logName: `projects/${project}/logs/${task === "service" ? `ml.googleapis.com%2F${jobId}` : task}`,
      },
    });
  };
  /**
   * What Vertex itself writes in the job's log, with task_name "service": "Waiting for job to be provisioned." and "Job failed."
   * (GoogleCloudPlatform/t5x-on-vertex-ai#2), "Job completed successfully." (kestra-io/kestra#6849).
   */
  const service = (run: Run, text: string, severity = "INFO"): void => addEntry(run.id, run.project, "service", text, severity);

  // -------------------------------------------------------------- the job's states

  const transition = (run: Run, state: string, error?: { code: number; message: string }): void => {
    const { job } = run;
    const now = new Date().toISOString();
    job.state = state;
    job.updateTime = now;
    // startTime: when the job first entered JOB_STATE_RUNNING; endTime: when it entered SUCCEEDED, FAILED or CANCELLED (the CustomJob reference).
    if (state === "JOB_STATE_RUNNING") job.startTime ??= now;
    if (TERMINAL.includes(state)) job.endTime = now;
    if (error) job.error = error;
  };
  const fail = (run: Run, message: string): void => {
    service(run, "Job failed.", "ERROR");
    transition(run, "JOB_STATE_FAILED", { code: 3, message });
  };
  /**
   * "On successful cancellation, the CustomJob is not deleted; instead it becomes a job with a CustomJob.error value with a
   * google.rpc.Status.code of 1, corresponding to Code.CANCELLED, and CustomJob.state is set to CANCELLED" (customJobs.cancel in
   * aiplatform.v1.json); its message reads "CANCELED" (prefect-gcp's Vertex worker looks for it: PrefectHQ/prefect-gcp#213).
   */
  const cancelled = (run: Run): void => transition(run, "JOB_STATE_CANCELLED", { code: 1, message: "CANCELED" });

  /** Stop a job: CANCELLING now, then its replicas get SIGTERM and, after the grace period, SIGKILL. */
  const requestStop = (run: Run, why: NonNullable<Run["stop"]>): void => {
    if (run.stop || TERMINAL.includes(run.job.state)) return;
    run.stop = why;
    transition(run, "JOB_STATE_CANCELLING");
    void stopReplicas(run);
  };
  const stopReplicas = async (run: Run): Promise<void> => {
    const grace = String(options.run?.stopGraceSeconds ?? 5);
    await Promise.all(
      run.replicas.map(async (replica) => {
        // `docker start` may not have started the container yet: stop until it has ended.
        while (replica.running && !closing.signal.aborted) {
          await docker(["stop", "--time", grace, replica.container], { env: options.run!.dockerEnv }).catch(() => undefined);
          if (replica.running) await sleep(200);
        }
      }),
    );
  };

  // -------------------------------------------------------------- running a job

  /**
   * Pull `uri` as Vertex's service agent would from Artifact Registry, from the local registry; the local name, or why it failed.
   * A repository this server's Artifact Registry does not have fails as a pull from one that does not exist:
   * `denied: Permission "artifactregistry.repositories.downloadArtifacts" denied on resource "projects/P/locations/R/repositories/REPO"
   * (or it may not exist)` is Artifact Registry's answer (iterative/cml#1136, terraform-google-modules/terraform-google-kubernetes-engine#1779).
   * How Vertex words the job's error around it is this server's reading; AI Platform Training, before Vertex, refused such a job at
   * creation ("Failed to read the container uri [...]. Please make sure that the image exists", FIRST-Tech-Challenge/fmltc#302).
   */
  const pull = async (uri: string, task: string): Promise<{ local: string } | { problem: string }> => {
    const image = artifactImage(uri);
    if (!image)
      return {
        problem: `Unable to pull the image ${uri} for the replica ${task}: this test server pulls from Artifact Registry (REGION-docker.pkg.dev) only.`,
      };
    const repository = `projects/${image.project}/locations/${image.region}/repositories/${image.repository}`;
    if (!repositories.has(repository))
      return {
        problem: `Unable to pull the image ${uri} for the replica ${task}: denied: Permission "artifactregistry.repositories.downloadArtifacts" denied on resource "${repository}" (or it may not exist)`,
      };
    const local = `${options.run!.registry}/${image.project}/${image.repository}/${image.image}${image.reference}`;
    const pulled = await docker(["pull", "--platform", "linux/amd64", local], { env: options.run!.dockerEnv, signal: closing.signal });
    if (pulled.code === 0) return { local };
    // Docker's own reason, with the registry named as the user named it.
    const said = (pulled.tail.filter((line) => line.trim()).at(-1) ?? `docker pull exited with ${pulled.code}`)
      .trim()
      .split(options.run!.registry)
      .join(image.host);
    return { problem: `Unable to pull the image ${uri} for the replica ${task}: ${said}` };
  };

  const lifecycle = async (run: Run): Promise<void> => {
    const spec = run.job.jobSpec as JobSpec;
    const runOptions = options.run!;
    const gcsRoot = typeof runOptions.gcs === "string" ? runOptions.gcs : runOptions.gcs.root;
    service(run, "Waiting for job to be provisioned.");
    // "All worker pools except the first one are optional and can be skipped by providing an empty value" (CustomJobSpec.workerPoolSpecs).
    const pools = spec.workerPoolSpecs
      .map((pool, index) => ({ pool, index, count: Number(pool.replicaCount ?? (index === 0 ? "1" : "0")) }))
      .filter(({ count }) => count > 0);
    for (const { pool, index } of pools)
      if (!pool.containerSpec) return fail(run, `workerPoolSpecs[${index}]: this test server runs containerSpec pools only, not pythonPackageSpec.`);

    // The images, each pulled once, before any replica starts.
    const local = new Map<string, string>();
    for (const { pool, index } of pools) {
      const uri = pool.containerSpec!.imageUri;
      if (local.has(uri)) continue;
      const pulled = await pull(uri, `workerpool${index}-0`);
      if (closing.signal.aborted) return;
      if ("problem" in pulled) return fail(run, pulled.problem);
      local.set(uri, pulled.local);
    }
    if (run.stop) return cancelled(run);

    // CLUSTER_SPEC and TF_CONFIG (cloud.google.com/vertex-ai/docs/training/distributed-training#cluster-variables): each pool's hosts
    // on port 2222, the task of this replica, and the CustomJobSpec as sent. TF_CONFIG names pools as TensorFlow does (chief, worker,
    // ps; an evaluator is no part of the cluster: cloud.google.com/ai-platform/training/docs/distributed-training-details).
    const cluster: Record<string, string[]> = {};
    const clusterId = crypto.randomBytes(5).toString("hex");
    const hostName = (index: number, replica: number): string => `cmle-training-workerpool${index}-${clusterId}-${replica}`;
    for (const { index, count } of pools) cluster[`workerpool${index}`] = Array.from({ length: count }, (_, replica) => `${hostName(index, replica)}:2222`);
    const tfNames = ["chief", "worker", "ps", "evaluator"];
    const tfCluster = Object.fromEntries(pools.filter(({ index }) => index < 3).map(({ index }) => [tfNames[index]!, cluster[`workerpool${index}`]!]));
    const hosts = pools.reduce((sum, { count }) => sum + count, 0);
    const network = hosts > 1 ? `vertex-fake-${run.id}-${crypto.randomBytes(3).toString("hex")}` : undefined;
    try {
      if (network) {
        networks.add(network);
        const made = await docker(["network", "create", network], { env: runOptions.dockerEnv, signal: closing.signal });
        if (closing.signal.aborted) return;
        if (made.code !== 0) throw new Error(`docker network create ${network}: ${made.tail.join("").trim()}`);
      }
      // Every container is made first; the job is RUNNING once all exist, as Vertex sets it "when all the workers are available".
      const starts: Replica[] = [];
      for (const { pool, index, count } of pools) {
        const container = pool.containerSpec!;
        for (let replica = 0; replica < count; replica++) {
          const task = `workerpool${index}-${replica}`;
          const env: Record<string, string> = {};
          for (const variable of container.env ?? []) env[variable.name] = variable.value ?? "";
          // What Vertex sets for a custom container (cloud.google.com/vertex-ai/docs/training/code-requirements#environment-variables);
          // the AIP_* folders when baseOutputDirectory is set, under its prefix ending in "/" (GcsDestination.outputUriPrefix).
          const prefix = spec.baseOutputDirectory?.outputUriPrefix;
          if (prefix) {
            const base = prefix.endsWith("/") ? prefix : `${prefix}/`;
            Object.assign(env, { AIP_MODEL_DIR: `${base}model/`, AIP_CHECKPOINT_DIR: `${base}checkpoints/`, AIP_TENSORBOARD_LOG_DIR: `${base}logs/` });
          }
          env.CLOUD_ML_JOB_ID = run.id;
          env.CLUSTER_SPEC = JSON.stringify({ cluster, environment: "cloud", task: { type: `workerpool${index}`, index: replica }, job: spec });
          env.TF_CONFIG = JSON.stringify({
            cluster: tfCluster,
            task: { type: tfNames[index] ?? `workerpool${index}`, index: replica },
            environment: "cloud",
            job: spec,
          });
          const name = `vertex-fake-${run.id}-${task}-${crypto.randomBytes(3).toString("hex")}`;
          // No --rm: the container is removed (and waited for) once its output is read, so a job's end means its containers are gone.
          const args = ["create", "--name", name, "--platform", "linux/amd64"];
          if (!runOptions.gcsMissingOn?.includes(pool.machineSpec?.machineType ?? "")) args.push("--volume", `${gcsRoot}:/gcs`);
          const host = hostName(index, replica);
          if (network) args.push("--network", network, "--network-alias", host, "--hostname", host);
          // One host: the host's network, where its own Vertex name (in CLUSTER_SPEC) is this machine.
          else args.push("--network", "host", "--add-host", `${host}:127.0.0.1`);
          // Values reach the container through the docker program's own environment (`--env NAME`), so none shows in a process list;
          // those that would change how docker itself runs are given whole.
          const dockerEnv: Record<string, string | undefined> = { ...runOptions.dockerEnv };
          for (const [key, value] of Object.entries(env).sort(([a], [b]) => a.localeCompare(b))) {
            if (key === "PATH" || key === "HOME" || key.startsWith("DOCKER_")) args.push("--env", `${key}=${value}`);
            else {
              args.push("--env", key);
              dockerEnv[key] = value;
            }
          }
          // containerSpec.command replaces the image's ENTRYPOINT (and so its CMD), args its CMD (ContainerSpec in aiplatform.v1.json).
          if (container.command?.length) args.push("--entrypoint", container.command[0]!, local.get(container.imageUri)!, ...container.command.slice(1));
          else args.push(local.get(container.imageUri)!);
          args.push(...(container.args ?? []));
          containers.add(name);
          const made = await docker(args, { env: dockerEnv, signal: closing.signal });
          if (closing.signal.aborted) return;
          if (made.code !== 0) {
            containers.delete(name);
            // As Vertex reports a container that could not start (GoogleCloudPlatform/vertex-ai-samples#1898).
            const said = made.tail.filter((line) => line.trim() && !line.startsWith("WARNING")).at(-1) ?? `docker create exited with ${made.code}`;
            await removeContainers(starts.map((replica) => replica.container));
            return fail(
              run,
              `The replica ${task} exited with a non-zero status of 128. Termination reason: StartError. \n Termination log message: ${said.trim()}`,
            );
          }
          const record: Replica = { task, container: name, running: false, errors: [] };
          run.replicas.push(record);
          starts.push(record);
        }
      }
      if (run.stop) {
        await removeContainers(run.replicas.map((replica) => replica.container));
        return cancelled(run);
      }
      transition(run, "JOB_STATE_RUNNING");
      // scheduling.timeout, "the maximum job running time. The default is 7 days" (Scheduling in aiplatform.v1.json), counted from
      // RUNNING; when it passes the job is cancelled: "If the training job is still running after this duration, AI Platform Training
      // cancels it" (GoogleCloudMlV1Scheduling.maxRunningTime, Vertex's predecessor), and a Vertex job that reached the default 7 days
      // ended cancelled (tensorflow/tfx#6223). Node's timers stop at about 24.8 days.
      const limit = Math.min(seconds(spec.scheduling?.timeout ?? "604800s") * 1000, 2 ** 31 - 1);
      const deadline = setTimeout(() => requestStop(run, "timeout"), limit);
      try {
        await Promise.all(
          starts.map(async (replica) => {
            replica.running = true;
            if (run.stop) void stopReplicas(run);
            let result;
            try {
              for (let attempt = 0; ; attempt++) {
                // Each line the container prints is a log entry at once: stdout as INFO, stderr as ERROR, as Google's logging agents record a
                // container's unstructured output (cloud.google.com/logging/docs/structured-logging).
                result = await docker(["start", "--attach", replica.container], {
                  env: runOptions.dockerEnv,
                  signal: closing.signal,
                  onLine: (line, stream) => {
                    if (!line) return;
                    if (stream === "stderr") replica.errors = [...replica.errors, line].slice(-10);
                    addEntry(run.id, run.project, replica.task, line, stream === "stderr" ? "ERROR" : "INFO");
                  },
                });
                // The `restarts` option: started again in the same container (the same VM), unless the job is ending.
                if (result.code === 0 || attempt >= (runOptions.restarts ?? 0) || run.stop || run.failure || closing.signal.aborted) break;
              }
            } finally {
              replica.running = false;
            }
            // The first replica to fail fails the job, and the others are stopped (a permanent error "shuts down the entire job":
            // understanding-training-service). Its message is Vertex's (GoogleCloudPlatform/vertex-ai-samples#1504, #1898), with the
            // replica's last lines on stderr.
            if (result.code !== 0 && !run.stop && !run.failure && !closing.signal.aborted) {
              const said = replica.errors.length ? ` \n${replica.errors.join("\n")}` : "";
              run.failure = `The replica ${replica.task} exited with a non-zero status of ${result.code ?? 137}. Termination reason: Error.${said}`;
              void stopReplicas(run);
            }
          }),
        );
      } finally {
        clearTimeout(deadline);
      }
      if (closing.signal.aborted) return;
      // The job ends once its containers are gone.
      await removeContainers(run.replicas.map((replica) => replica.container));
      if (run.stop) return cancelled(run);
      if (run.failure) return fail(run, run.failure);
      service(run, "Job completed successfully.");
      transition(run, "JOB_STATE_SUCCEEDED");
    } finally {
      // When the server is closing, close() removes the network once it has removed the containers.
      if (network && !closing.signal.aborted) {
        const removed = await docker(["network", "rm", network], { env: runOptions.dockerEnv }).catch(() => undefined);
        if (removed?.code === 0) networks.delete(network);
      }
    }
  };

  const removeContainers = async (names: string[]): Promise<void> => {
    await Promise.all(names.map((name) => docker(["rm", "--force", name], { env: options.run!.dockerEnv }).catch(() => undefined)));
    for (const name of names) containers.delete(name);
  };

  // -------------------------------------------------------------- the wire

  const token = (body: string, res: http.ServerResponse): void => {
    const form = new URLSearchParams(body);
    const fail = (why: string): void => {
      res.writeHead(400, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: "invalid_grant", error_description: why }));
    };
    if (form.get("grant_type") === "refresh_token") return quota.refresh(form, res);
    if (form.get("grant_type") !== "urn:ietf:params:oauth:grant-type:jwt-bearer") return fail("Invalid grant_type");
    const [header, claims, signature] = (form.get("assertion") ?? "").split(".");
    if (!header || !claims || !signature) return fail("Invalid JWT");
    const parsed = JSON.parse(base64url(claims).toString("utf8")) as { iss?: string; aud?: string; scope?: string; exp?: number; iat?: number };
    const key = parsed.iss ? accounts[parsed.iss] : undefined;
    if (!key) return fail("Invalid JWT Signature.");
    if (JSON.parse(base64url(header).toString("utf8")).alg !== "RS256") return fail("Invalid JWT: alg");
    if (!crypto.verify("RSA-SHA256", Buffer.from(`${header}.${claims}`), key, base64url(signature))) return fail("Invalid JWT Signature.");
    if (parsed.aud !== "https://oauth2.googleapis.com/token") return fail("Invalid JWT: aud");
    if (!parsed.scope?.split(" ").includes("https://www.googleapis.com/auth/cloud-platform")) return fail("Invalid OAuth scope or ID token audience provided.");
    const now = Date.now() / 1000;
    if (!parsed.exp || parsed.exp < now || !parsed.iat || parsed.exp - parsed.iat > 3600)
      return fail("Invalid JWT: Token must be a short-lived token (60 minutes)");
    const issued = `ya29.test-${crypto.randomBytes(16).toString("hex")}`;
    tokens.add(issued);
    json(res, { access_token: issued, expires_in: 3599, token_type: "Bearer" });
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      const url = new URL(req.url ?? "/", "http://localhost");
      const method = req.method ?? "GET";
      if (method === "POST" && url.pathname === "/token") return token(text, res);
      let body: unknown;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        return status(res, 400, "INVALID_ARGUMENT", "Invalid JSON payload received.");
      }
      requests.push({ method, path: url.pathname + url.search, body });
      const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
      if (!bearer || !tokens.has(bearer))
        return status(
          res,
          401,
          "UNAUTHENTICATED",
          "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
        );
      if (quota.refused(bearer, req.headers["x-goog-user-project"], url.pathname, res)) return;
      const path = decodeURIComponent(url.pathname);
      let match: RegExpExecArray | null;
      if (method === "POST" && (match = /^\/v1\/(projects\/[^/]+\/locations\/[^/]+)\/customJobs$/.exec(path))) {
        if (!new RegExp(create.parameters.parent!.pattern!).test(match[1]!)) return status(res, 400, "INVALID_ARGUMENT", "Invalid parent.");
        const problems = checkBody(docs.aiplatform, create.request!.$ref, body);
        // Required by the CustomJob reference (cloud.google.com/vertex-ai/docs/reference/rest/v1/projects.locations.customJobs): displayName, jobSpec, jobSpec.workerPoolSpecs.
        const job = body as { displayName?: string; jobSpec?: { workerPoolSpecs?: Array<{ replicaCount?: string }> } } | undefined;
        if (!job?.displayName) problems.push("displayName: required");
        if (!job?.jobSpec?.workerPoolSpecs?.length) problems.push("jobSpec.workerPoolSpecs: required");
        // "Use the first worker pool specification only for your primary replica, and set its replicaCount to 1" (distributed-training).
        else if (!problems.length && (job.jobSpec.workerPoolSpecs[0]?.replicaCount ?? "1") !== "1")
          problems.push("jobSpec.workerPoolSpecs[0].replicaCount: the primary replica's pool has exactly 1 replica");
        if (problems.length) return status(res, 400, "INVALID_ARGUMENT", `Invalid JSON payload received. ${problems.join("; ")}`);
        const region = match[1]!.split("/")[3]!;
        const id = String(next++);
        const created: FakeJob = {
          ...(body as object),
          name: `projects/${PROJECT_NUMBER}/locations/${region}/customJobs/${id}`,
          displayName: job!.displayName!,
          state: "JOB_STATE_PENDING",
          createTime: new Date().toISOString(),
          updateTime: new Date().toISOString(),
        };
        jobs.set(id, created);
        if (options.run) {
          const run: Run = { id, project: match[1]!.split("/")[1]!, job: created, replicas: [] };
          runs.set(id, run);
          // The answer goes first; the job then runs on its own.
          const lifecycleDone = lifecycle(run).catch((err: Error) => {
            if (!closing.signal.aborted) fail(run, `Internal error occurred for the current attempt. (vertex-fake: ${err.message})`);
          });
          lifecycles.add(lifecycleDone);
          void lifecycleDone.finally(() => lifecycles.delete(lifecycleDone));
        }
        return json(res, created);
      }
      if ((match = /^\/v1\/projects\/[^/]+\/locations\/[^/]+\/customJobs\/([^/:]+)(:cancel)?$/.exec(path))) {
        const job = jobs.get(match[1]!);
        if (!job) return status(res, 404, "NOT_FOUND", `The CustomJob does not exist.`);
        if (method === "GET" && !match[2]) return json(res, polledView(job, options.hideRunning));
        if (method === "POST" && match[2]) {
          if (TERMINAL.includes(job.state)) return status(res, 400, "FAILED_PRECONDITION", `Cannot cancel ${job.name} in state ${job.state}.`);
          const run = runs.get(match[1]!);
          if (run) requestStop(run, "cancel");
          else job.state = "JOB_STATE_CANCELLING";
          return json(res, {});
        }
      }
      if (method === "GET" && /^\/v1\/projects\/[^/]+\/locations\/[^/]+\/customJobs$/.test(path)) {
        const filter = url.searchParams.get("filter") ?? "";
        const wanted = /^display_name="((?:[^"\\]|\\.)*)"$/.exec(filter);
        if (filter && !wanted) return status(res, 400, "INVALID_ARGUMENT", `Unsupported filter ${filter}`);
        const found = [...jobs.values()].filter((job) => !wanted || job.displayName === wanted[1]!.replace(/\\(.)/g, "$1"));
        return json(res, found.length ? { customJobs: found } : {});
      }
      // Artifact Registry: repositories.get and .create, whose answer is a long-running Operation (done at once here).
      if (method === "GET" && (match = /^\/v1\/(projects\/[^/]+\/locations\/[^/]+\/repositories\/[^/]+)$/.exec(path))) {
        const repository = repositories.get(match[1]!);
        return repository ? json(res, repository) : status(res, 404, "NOT_FOUND", `Requested entity was not found.`);
      }
      if (method === "POST" && (match = /^\/v1\/(projects\/[^/]+\/locations\/[^/]+)\/repositories$/.exec(path)) && docs.artifactregistry) {
        const id = url.searchParams.get("repositoryId") ?? "";
        const problems = checkBody(docs.artifactregistry, "Repository", body);
        if (!/^[a-z]([a-z0-9-]*[a-z0-9])?$/.test(id)) problems.push(`repositoryId ${id} is not a valid repository id`);
        if ((body as { format?: string }).format !== "DOCKER") problems.push("format: this test server makes DOCKER repositories only");
        if (problems.length) return status(res, 400, "INVALID_ARGUMENT", problems.join("; "));
        const name = `${match[1]}/repositories/${id}`;
        if (repositories.has(name)) return status(res, 409, "ALREADY_EXISTS", `the repository already exists`);
        repositories.set(name, { ...(body as object), name });
        return json(res, {
          name: `${match[1]}/operations/${crypto.randomUUID()}`,
          done: true,
          response: { "@type": "type.googleapis.com/google.devtools.artifactregistry.v1.Repository", name },
        });
      }
      if (method === "POST" && path === "/v2/entries:list") {
        const problems = checkBody(docs.logging, listEntries.request!.$ref, body);
        if (problems.length) return status(res, 400, "INVALID_ARGUMENT", `Invalid JSON payload received. ${problems.join("; ")}`);
        if (overQuota(++reads, options.logging?.tooManyRequestsEvery)) return quotaError(res);
        const { filter = "" } = body as { filter?: string };
        const id = /resource\.labels\.job_id="(\d+)"/.exec(filter)?.[1];
        if (!/resource\.type="ml_job"/.test(filter) || !id)
          return status(res, 400, "INVALID_ARGUMENT", `This test server reads ml_job entries by job_id only: ${filter}`);
        const since = /timestamp>="([^"]+)"/.exec(filter)?.[1];
        const from = since ? nanos(since) : undefined;
        const until = /timestamp<"([^"]+)"/.exec(filter)?.[1];
        const to = until ? nanos(until) : undefined;
        const now = Date.now();
        const entries = logs
          .filter(
            (log) =>
              log.jobId === id &&
              (log.listableAt === undefined || log.listableAt <= now) &&
              (from === undefined || nanos(log.entry.timestamp) >= from) &&
              (to === undefined || nanos(log.entry.timestamp) < to),
          )
          .map((log) => log.entry)
          .sort((a, b) => {
            const [x, y] = [nanos(a.timestamp), nanos(b.timestamp)];
            return x < y ? -1 : x > y ? 1 : 0;
          });
        return json(res, entries.length ? { entries } : {});
      }
      status(res, 404, "NOT_FOUND", `No method ${method} ${path} on this test server.`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    jobs,
    repositories,
    requests,
    tokens,
    quotaProjects: quota.seen,
    logs,
    setState(id, state, error) {
      const job = jobs.get(id)!;
      job.state = state;
      if (error) job.error = { code: 3, message: error };
    },
    addLog(id, textPayload, at, insertId) {
      addEntry(id, "my-proj", "workerpool0-0", textPayload, "INFO", at, insertId);
    },
    close: async () => {
      // Every docker call a job is waiting on ends at once (its signal); then its containers are killed and removed, and waited for.
      closing.abort();
      if (options.run) {
        await Promise.allSettled([...lifecycles]);
        await Promise.all([...containers].map((name) => docker(["rm", "--force", name], { env: options.run!.dockerEnv }).catch(() => undefined)));
        await Promise.all([...networks].map((name) => docker(["network", "rm", name], { env: options.run!.dockerEnv }).catch(() => undefined)));
      }
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// ------------------------------------------------------------ users and quota projects

/** The service a request path belongs to, as Google names it in its errors. */
function serviceOf(path: string): string {
  if (path.startsWith("/v2/entries")) return "logging.googleapis.com";
  if (/\/repositories(\/|$)|\/operations\//.test(path)) return "artifactregistry.googleapis.com";
  return "aiplatform.googleapis.com";
}

/**
 * Users' logins and quota projects, as Google treats them:
 * - the token endpoint takes a user's refresh token (grant_type=refresh_token with the client's id and secret, as
 *   google-auth-library's UserRefreshClient sends it for an ADC `authorized_user` file:
 *   developers.google.com/identity/protocols/oauth2/web-server#offline) and answers an access token;
 * - a call made with a user's token and no x-goog-user-project is refused with 403 PERMISSION_DENIED and Google's
 *   own words ("Your application is authenticating by using local Application Default Credentials. The SERVICE API
 *   requires a quota project, which is not set by default. …", reason SERVICE_DISABLED, as quoted in
 *   github:GoogleCloudPlatform/cloud-foundation-fabric#2622 and github:googleapis/google-auth-library-python#1459;
 *   cloud.google.com/docs/authentication/adc-troubleshooting/user-creds). The stricter reading: every API this server
 *   stands in for refuses it (Cloud Logging's entries:list has no project in its URL to fall back on; Google does not
 *   publish which APIs bill a user's call to the resource's project instead). A service account's token needs no header.
 */
function userLogins(users: UserLogin[], tokens: Set<string>) {
  const userTokens = new Set<string>();
  const seen: Array<{ path: string; project: string | undefined }> = [];
  return {
    seen,
    refresh(form: URLSearchParams, res: http.ServerResponse): void {
      const user = users.find((u) => u.client_id === form.get("client_id"));
      if (!user || user.client_secret !== form.get("client_secret")) {
        res.writeHead(401, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: "invalid_client", error_description: "The OAuth client was not found." }));
        return;
      }
      if (user.refresh_token !== form.get("refresh_token")) {
        res.writeHead(400, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: "invalid_grant", error_description: "Bad Request" }));
        return;
      }
      const issued = `ya29.user-${crypto.randomBytes(16).toString("hex")}`;
      tokens.add(issued);
      userTokens.add(issued);
      json(res, { access_token: issued, expires_in: 3599, token_type: "Bearer", scope: "https://www.googleapis.com/auth/cloud-platform" });
    },
    /** True (and answered) when the request is a user's without a quota project. */
    refused(bearer: string, header: string | string[] | undefined, path: string, res: http.ServerResponse): boolean {
      const project = Array.isArray(header) ? header[0] : header;
      seen.push({ path, project });
      if (project || !userTokens.has(bearer)) return false;
      const service = serviceOf(path);
      res.writeHead(403, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          error: {
            code: 403,
            message: `Your application is authenticating by using local Application Default Credentials. The ${service} API requires a quota project, which is not set by default. To learn how to set your quota project, see https://cloud.google.com/docs/authentication/adc-troubleshooting/user-creds .`,
            status: "PERMISSION_DENIED",
            details: [{ "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: "SERVICE_DISABLED", domain: "googleapis.com", metadata: { service } }],
          },
        }),
      );
      return true;
    },
  };
}
