/**
 * The Vertex AI backend: the artifact's image is built with the local Docker
 * and pushed to Artifact Registry, the job is a custom job
 * (`projects.locations.customJobs.create`) followed through
 * `customJobs.get` and Cloud Logging, and its model lands in Cloud Storage
 * under OUTPUT_PATH/JOB/output, where `fetch` finds it as on every backend.
 */
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Context } from "../../context.js";
import { failure, UserError } from "../../errors.js";
import { isFinal } from "../../jobs/job.js";
import { validateSettings } from "../../spec/schema.js";
import { storageFor } from "../../storage/index.js";
import { joinLocation } from "../../storage/location.js";
import { parseGs } from "../../storage/gcs.js";
import { VERSION } from "../../version.js";
import type { Backend } from "../types.js";
import { followCloudJob, leftOutput } from "../follow.js";
import { elsewhereSpec } from "../common.js";
import { LOG_POLL_SECONDS, VertexApi, type CustomJob } from "./api.js";
import { googleSession, type GoogleSession } from "./auth.js";
import { vertexDoctor } from "./doctor.js";
import { planVertex } from "./dry-run.js";
import { changesFrom, JobLog, statusLine } from "./follow.js";
import { credentialSource, defaultRegion, noProjectError, resolveProject } from "./google.js";
import { pushVertexImage } from "./image.js";
import { customJobRequest, modelLocation, parentOf, planProblems, SUBMISSION_LABEL, labelValue, wantsGpu } from "./plan.js";
import { DEFAULT_REGION, vertexSchema, type VertexJob, type VertexProvider } from "./schema.js";

/** A session, its API client and the project, for one region. */
interface Google {
  project: string;
  session: GoogleSession;
  api: VertexApi;
}

/** Google's credentials and the project for `project` (config.project or found) in `region`; a UserError naming the fix when either is missing. */
async function connect(configured: string | undefined, region: string, ctx: Context, quotaProject?: string): Promise<Google> {
  const chosen = resolveProject(configured, ctx.env);
  if (!chosen) throw noProjectError();
  const session = await sessionFor(ctx.env, quotaProject);
  return { project: chosen.project, session, api: new VertexApi(session, region, ctx.env) };
}

/** `connect` for a job: the project and region its record names (a job found by name has them), else its settings'. */
function connectTo(job: VertexJob, ctx: Context): Promise<Google> {
  return connect(job.provider?.project ?? job.spec.settings.project, job.provider?.region ?? job.spec.settings.region, ctx, job.spec.settings.quota_project);
}

/** Contexts whose environment names config.quota_project as GOOGLE_CLOUD_QUOTA_PROJECT, one per context and project (so the storage made for it is reused). */
const quotaContexts = new WeakMap<Context, Map<string, Context>>();

/** `ctx` for Cloud Storage calls of a job: with config.quota_project, the storage library sends it as x-goog-user-project too (see src/storage/gcs.ts). */
function storageContext(ctx: Context, quotaProject: string | undefined): Context {
  if (!quotaProject || ctx.env.GOOGLE_CLOUD_QUOTA_PROJECT === quotaProject) return ctx;
  const byProject = quotaContexts.get(ctx) ?? new Map<string, Context>();
  quotaContexts.set(ctx, byProject);
  let made = byProject.get(quotaProject);
  if (!made) {
    made = { ...ctx, env: { ...ctx.env, GOOGLE_CLOUD_QUOTA_PROJECT: quotaProject } };
    byProject.set(quotaProject, made);
  }
  return made;
}

/** Sessions by what chooses their credentials: a command that follows a job asks Google for a token when the last one nears its end, not at every poll. */
const sessions = new Map<string, Promise<GoogleSession>>();

function sessionFor(env: Context["env"], quotaProject: string | undefined): Promise<GoogleSession> {
  const key = JSON.stringify([
    env.GOOGLE_APPLICATION_CREDENTIALS,
    env.CLOUDSDK_CONFIG,
    env.HOME,
    env.CLOUDSDK_AUTH_TOKEN_HOST,
    env.GOOGLE_CLOUD_QUOTA_PROJECT,
    quotaProject,
  ]);
  let session = sessions.get(key);
  if (!session) {
    session = googleSession(env, { quotaProject });
    sessions.set(key, session);
    session.catch(() => sessions.delete(key)); // a failure is not kept: the next command may have fixed it
  }
  return session;
}

/** Fail before anything is built when the output path's bucket does not exist (Vertex itself finds out only when the job writes there). */
async function checkOutputBucket(outputPath: string, ctx: Context): Promise<void> {
  const { bucket } = parseGs(outputPath);
  const storage = await storageFor(outputPath, ctx);
  try {
    await storage.list(`gs://${bucket}/${randomUUID()}`);
  } catch (err) {
    if (/bucket does not exist|notFound|\b404\b/i.test((err as Error).message))
      throw failure(
        `The bucket ${bucket} of config.output_path does not exist.`,
        `Create it (gcloud storage buckets create gs://${bucket} --location=REGION) or pick another config.output_path.`,
      );
    throw err;
  }
}

/**
 * Create the custom job. A create whose answer was lost on the way (the
 * connection dropped) may still have made the job: it is looked for by name
 * and this submission's label before anything is sent again.
 */
async function createJob(google: Google, parent: string, body: ReturnType<typeof customJobRequest>, submission: string): Promise<CustomJob> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await google.api.createCustomJob(parent, body);
    } catch (err) {
      if (err instanceof UserError || attempt >= 3) throw err;
      const made = await google.api.findCustomJob(parent, body.displayName).catch(() => undefined);
      if (made?.labels?.[SUBMISSION_LABEL] === labelValue(submission)) return made;
      await sleep(1000 * attempt);
    }
  }
}

/** What the job wrote as its failure (the entrypoint's OUTPUT_PATH/JOB/output/failure: the script's last error line), if anything. */
async function failureText(jobOutput: string, ctx: Context): Promise<string | undefined> {
  const location = joinLocation(jobOutput, "output/failure");
  const storage = await storageFor(location, ctx);
  if (!(await storage.stat(location).catch(() => undefined))) return undefined;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "alekseylearn-failure-"));
  try {
    await storage.download(location, path.join(dir, "failure"));
    return fs.readFileSync(path.join(dir, "failure"), "utf8").trim().slice(0, 1000) || undefined;
  } catch {
    return undefined;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * A succeeded job's model: OUTPUT_PATH/JOB/output/model.tar.gz once the object exists in Cloud Storage. A job can end
 * SUCCEEDED without it (a machine where Cloud Storage FUSE was not mounted at /gcs, github:GoogleCloudPlatform/gcsfuse#4333,
 * or an image whose entrypoint is not alekseylearn's), so it is looked for, never assumed; when it is missing, the reason says where it was looked for.
 */
async function foundModel(jobOutput: string, ctx: Context): Promise<{ model: string } | { reason: string }> {
  const model = modelLocation(jobOutput);
  if (await (await storageFor(model, ctx)).stat(model)) return { model };
  return { reason: `the job succeeded, but its model was not found at ${model}` };
}

/**
 * Where a job's log starts: Vertex's createTime for it (no entry of the job is older), else, for a record made before it was
 * kept, the record's creation here less ten minutes (this machine's clock may run ahead of Google's).
 */
function logsFrom(record: VertexJob): string {
  if (record.provider?.createTime) return record.provider.createTime;
  return new Date(Date.parse(record.createdAt) - 600_000).toISOString();
}

/** The Vertex AI backend. */
export const vertexBackend = {
  name: "vertex",
  summary: "Google Cloud Vertex AI custom jobs: the image is built with Docker and pushed to Artifact Registry; the model lands in Cloud Storage",
  schema: vertexSchema,
  onInterrupt: "detach",

  check: planProblems,
  plan: planVertex,
  wantsGpu,

  async submit(job, given, options) {
    const { spec } = job;
    const { region } = spec.settings;
    const ctx = storageContext(given, spec.settings.quota_project);
    const google = await connect(spec.settings.project, region, ctx, spec.settings.quota_project);
    // The credentials are tried now (a token), and the bucket looked at, before anything is built.
    await google.session.accessToken();
    await checkOutputBucket(spec.outputPath, ctx);
    const pushed = await pushVertexImage(spec, google.project, google, ctx);
    const submission = randomUUID();
    const body = customJobRequest(spec, { name: job.name, image: pushed.image, submissionId: submission, version: VERSION });
    const parent = parentOf(google.project, region);
    const accelerator = spec.settings.accelerator_type ? ` with ${spec.settings.accelerator_count} × ${spec.settings.accelerator_type}` : "";
    ctx.reporter.info(
      `Creating the custom job ${job.name} on ${spec.settings.instance_count} × ${spec.settings.machine_type}${accelerator} in ${google.project} (${region})…`,
    );
    const created = await createJob(google, parent, body, submission);
    if (options.detach) ctx.reporter.info(`Submitted ${created.name}`);
    return {
      state: "queued",
      provider: {
        resource: created.name,
        project: google.project,
        region,
        image: pushed.image,
        submission,
        status: created.state,
        ...(created.createTime ? { createTime: created.createTime } : {}),
        layersPushed: String(pushed.layersPushed),
        stepsRun: String(pushed.stepsRun),
      },
    };
  },

  async describe(job, given) {
    const resource = job.provider?.resource;
    if (isFinal(job.state) || !resource) return {};
    const ctx = storageContext(given, job.spec.settings.quota_project);
    const google = await connectTo(job, ctx);
    const answer = await google.api.getCustomJob(resource);
    if (!answer)
      throw failure(`Vertex AI has no custom job ${resource} any more.`, `It may have been deleted; \`alekseylearn jobs\` lists what this machine knows.`);
    const changes = changesFrom(answer, job);
    if (changes.state === "completed") Object.assign(changes, await foundModel(job.jobOutput, ctx));
    if (changes.state === "completed" || changes.state === "failed") {
      const output = await leftOutput(job.jobOutput, ctx);
      if (output) changes.output = output;
    }
    if (changes.state === "failed") {
      // Vertex says which replica failed and its exit status; the script's own last error line says why.
      const said = await failureText(job.jobOutput, ctx);
      // Vertex's message goes on with the replica's last error lines, which `said` already is: its first line is kept.
      const vertex = answer.error?.message?.split("\n")[0]?.trim();
      if (said) changes.reason = `${said}${vertex ? ` (${vertex})` : ""}`;
    }
    return changes;
  },

  async *logs(job, ctx, options) {
    const { settings } = job.spec;
    const google = await connectTo(job, ctx);
    // Cloud Logging's read quota (60 entries.list a minute per project, shared) sets the fastest pace; poll_interval may ask for a slower one.
    const readEvery = Math.max(settings.poll_interval, LOG_POLL_SECONDS) * 1000;
    let log: JobLog | undefined;
    yield* followCloudJob<VertexJob>({
      follow: options.follow,
      ...(options.signal ? { signal: options.signal } : {}),
      pollSeconds: settings.poll_interval,
      refresh: async () => (options.refresh ? await options.refresh() : { ...job, ...(await this.describe(job, ctx)) }) as VertexJob,
      status: (record) => (record.provider?.resource ? statusLine(record) : undefined),
      read: async (record) => {
        const resource = record.provider?.resource;
        if (!resource) return [];
        log ??= new JobLog(google.api, record.provider?.project ?? google.project, resource, settings.instance_count, readEvery, options.signal, {
          from: logsFrom(record),
          onWait: (line) => ctx.reporter.warn(line),
        });
        return log.read(!options.follow);
      },
      complete: (record, emptyReads) => !log || log.complete(record.provider?.endTime, emptyReads),
    });
  },

  async stop(job, ctx) {
    const resource = job.provider?.resource;
    if (!resource) throw failure(`${job.name} has no Vertex AI custom job yet.`);
    const google = await connectTo(job, ctx);
    await google.api.cancelCustomJob(resource);
    return { provider: { ...job.provider, cancelRequested: "true" } };
  },

  async doctor(spec, ctx, options) {
    return vertexDoctor(spec, ctx, options);
  },
  async lookup(name, ctx) {
    const region = defaultRegion(ctx.env, DEFAULT_REGION);
    let google: Google;
    try {
      // Only with credentials named by a file: finding a name must never wait on a metadata server that is not there.
      if (credentialSource(ctx.env).kind !== "file" || !resolveProject(undefined, ctx.env)) return undefined;
      google = await connect(undefined, region, ctx);
    } catch {
      return undefined;
    }
    const found = await google.api.findCustomJob(parentOf(google.project, region), name).catch(() => undefined);
    if (!found) return undefined;
    const pools = found.jobSpec?.workerPoolSpecs ?? [];
    const machine = pools[0]?.machineSpec;
    // What is known of a job started elsewhere: its settings as Vertex reports them (the rest at their defaults); its code is not here.
    const { settings } = validateSettings(
      vertexSchema,
      {
        project: google.project,
        region,
        ...(machine?.machineType ? { machine_type: machine.machineType } : {}),
        ...(machine?.acceleratorType ? { accelerator_type: machine.acceleratorType } : {}),
        instance_count: Math.max(
          1,
          pools.reduce((sum, pool) => sum + Number(pool.replicaCount ?? 0), 0),
        ),
        use_spot: found.jobSpec?.scheduling?.strategy === "SPOT",
      },
      "the vertex backend",
    );
    const jobOutput = found.jobSpec?.baseOutputDirectory?.outputUriPrefix?.replace(/\/+$/, "") ?? "";
    const record: VertexJob = {
      name,
      backend: "vertex",
      state: "queued",
      // A job alekseylearn made has its output at OUTPUT_PATH/JOB; another's base output directory is taken as it is.
      spec: elsewhereSpec("vertex", settings, { outputPath: jobOutput.endsWith(`/${name}`) ? jobOutput.slice(0, -name.length - 1) : jobOutput }),
      createdAt: new Date(found.createTime ?? Date.now()).toISOString(),
      jobOutput,
      provider: { resource: found.name, project: google.project, region },
    };
    const changes = changesFrom(found, record);
    if (changes.state === "completed") Object.assign(changes, await foundModel(jobOutput, ctx).catch(() => ({})));
    return { ...record, ...changes };
  },
} satisfies Backend<typeof vertexSchema, VertexProvider>;
