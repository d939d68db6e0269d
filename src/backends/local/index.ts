/**
 * The local backend: runs the training artifact on this machine, in a cached
 * virtual environment, with SageMaker's /opt/ml layout made private to the job.
 */
import { EventEmitter } from "node:events";
import fs from "node:fs";
import type { Context } from "../../context.js";
import { failure } from "../../errors.js";
import { isRecordedProcess } from "../../exec.js";
import { isFinal } from "../../jobs/job.js";
import { ensureEnvironment } from "../../package/environment.js";
import { NOTEBOOK_PACKAGES } from "../../package/runtime.js";
import { schemeOf } from "../../storage/location.js";
import type { Backend, JobChanges, SubmitOptions } from "../types.js";
import { LineSplitter } from "../follow.js";
import { runLocalJob, runPaths, type RunSetup } from "./run.js";
import { chooseSandbox } from "./sandbox.js";
import { distributionProblems } from "../common.js";
import { localSchema, type LocalJob, type LocalProvider } from "./schema.js";

/** Runs started by this process, so `stop` can reach them without a signal. */
const active = new Map<string, AbortController>();

/** How often a follower looks for new log lines and a changed state (reading a small file this often costs next to nothing). */
const POLL_MS = 20;

/**
 * Each change this process records of a job it runs (its end above all), told to its follower at once, by the job's name:
 * the follower of a job run here sees it end without waiting for its next look. Jobs run elsewhere (the detached
 * supervisor, another command) are looked at every POLL_MS.
 */
const recorded = new EventEmitter().setMaxListeners(0);

/** Wait until job `name`'s record changes in this process, or `ms` pass; false when `signal` aborts first. */
function nextChange(name: string, ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (going: boolean) => (): void => {
      clearTimeout(timer);
      recorded.off(name, changed);
      signal?.removeEventListener("abort", aborted);
      resolve(going);
    };
    const changed = done(true);
    const aborted = done(false);
    const timer = setTimeout(changed, ms);
    recorded.once(name, changed);
    signal?.addEventListener("abort", aborted, { once: true });
  });
}

/** The most bytes of the log read at once: a follower that falls behind catches up in steps of this size, never holding the whole backlog. */
const READ_BYTES = 1024 * 1024;

/** Read at most READ_BYTES of what `file` holds past `offset` (nothing when it does not exist yet). */
function readFrom(file: string, offset: number): Buffer {
  let fd: number;
  try {
    fd = fs.openSync(file, "r");
  } catch {
    return Buffer.alloc(0);
  }
  try {
    const size = fs.fstatSync(fd).size;
    if (size <= offset) return Buffer.alloc(0);
    const buffer = Buffer.alloc(Math.min(size - offset, READ_BYTES));
    const read = fs.readSync(fd, buffer, 0, buffer.length, offset);
    return buffer.subarray(0, read);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Build the image SageMaker would run (runner=docker); the run then starts it with `train`. config.builder=oci assembles
 * it without `docker build` (the image `alekseylearn build` pushes, same ID) and hands it to the daemon with docker load.
 * auto is Docker here: this runner needs the daemon anyway, and Docker's build cache and the daemon's own base images
 * serve a user's repeated runs.
 */
async function containerSetup(job: LocalJob, ctx: Context): Promise<{ setup: RunSetup; provider: LocalProvider }> {
  const { imageName } = await import("../../package/image.js");
  const tag = `${imageName(job.spec)}:local`;
  if (job.spec.settings.builder === "oci") {
    const { baseImageFor } = await import("../../package/image.js");
    const { chooseBuilder } = await import("../../package/oci/choose.js");
    const { assembleAndLoad } = await import("../../package/oci/load.js");
    const base = baseImageFor(job.spec, job.spec.settings.base_image, false);
    chooseBuilder(job.spec, "oci", base); // an artifact only Docker can build (environment.yml, apt.txt, its own Dockerfile) is refused clearly
    const loaded = await assembleAndLoad(job.spec, base, tag, ctx);
    return {
      setup: { python: "python3", image: loaded.imageId },
      provider: { runner: "docker", builder: "oci", image: tag, imageId: loaded.imageId, load: loaded.loaded ? "loaded" : "present" },
    };
  }
  const { buildTrainingImage } = await import("../../package/container.js");
  const built = await buildTrainingImage(job.spec, { tag, gpu: false, baseImage: job.spec.settings.base_image, platform: job.spec.settings.platform }, ctx);
  return { setup: { python: "python3", image: built.imageId }, provider: { runner: "docker", builder: "docker", image: tag, imageId: built.imageId } };
}

/** Start the run here, or under jobs/' detached supervisor (which calls `runDetached` and saves the record); returns what changed once it is under way. */
function submitRun(
  job: LocalJob,
  how: { setup: RunSetup; provider: LocalProvider },
  ctx: Context,
  options: SubmitOptions<LocalProvider>,
): JobChanges<LocalProvider> {
  const logFile = runPaths(ctx.stateDir, job.name).log;
  fs.mkdirSync(runPaths(ctx.stateDir, job.name).dir, { recursive: true });
  if (options.detach) return { pid: options.supervise(how.setup), logFile, provider: how.provider };
  const controller = new AbortController();
  active.set(job.name, controller);
  const changes = { pid: process.pid, logFile, provider: how.provider };
  const record = (change: JobChanges<LocalProvider>): ReturnType<typeof options.record> => {
    const saved = options.record(change);
    recorded.emit(job.name);
    return saved;
  };
  void runLocalJob({ ...job, ...changes }, how.setup, ctx, controller.signal, record).finally(() => active.delete(job.name));
  return changes;
}

/**
 * Without a sandbox, an artifact that names /opt/ml or /kaggle itself would use this machine's folders, not the job's:
 * refused before anything runs (config.sandbox=auto), or run with a warning naming the line (config.sandbox=none, asked
 * for explicitly).
 */
async function refuseLiteralRoots(spec: LocalJob["spec"], reason: string, ctx: Context): Promise<void> {
  const { literalRoots } = await import("./literal-roots.js");
  const found = literalRoots(spec);
  if (!found.length) return;
  const first = found[0]!;
  const where = `${first.file} line ${first.line} names ${first.named}${found.length > 1 ? ` (and ${found.length - 1} more line${found.length > 2 ? "s" : ""})` : ""}`;
  if (spec.settings.sandbox === "none") {
    ctx.reporter.warn(`${where}; with config.sandbox=none that is this machine's folder, not the job's, and fetch will not see what it writes there.`);
    return;
  }
  throw failure(
    `${where}, but ${reason}, so that path would be this machine's folder, not the job's: the job would read no hyperparameters or data there and write its model where fetch never looks.`,
    "Install bubblewrap (apt-get install bubblewrap) for a private /opt/ml and /kaggle, or run the job in its container with --config.runner=docker; --config.sandbox=none runs it anyway.",
  );
}

/** True when this user may write this machine's /opt/ml (or create it). */
function hostMlWritable(): boolean {
  try {
    fs.accessSync(fs.existsSync("/opt/ml") ? "/opt/ml" : "/opt", fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** The local backend. */
export const localBackend = {
  name: "local",
  summary: "this machine, in a cached Python environment with a private /opt/ml (the default)",
  schema: localSchema,
  onInterrupt: "stop",
  // The plan's modules (the image's, for runner=docker) are loaded only for `fit --dry-run`.
  plan: async (job, ctx) => (await import("./plan.js")).planLocal(job, ctx),
  // No setting asks for one: a job here uses this machine's GPUs, if any (runner=docker passes them to the container).
  wantsGpu: (_settings) => false,

  check(spec) {
    const problems: string[] = distributionProblems(spec);
    if (spec.settings.instance_count > 1 && spec.settings.runner === "docker")
      problems.push("config.instance_count > 1 runs one process per host on this machine (runner=process); runner=docker runs one container");
    // A builder asked for by name with runner=process would build nothing: said, rather than ignored, so no one believes the job ran in that image.
    if (spec.settings.runner !== "docker" && spec.settings.builder !== "auto")
      problems.push(`config.builder=${spec.settings.builder} builds the job's image, but runner=process builds none; add --config.runner=docker`);
    if (spec.settings.runner !== "docker" && spec.settings.python_version !== undefined)
      problems.push("config.python_version is the image's Python for config.builder=oci; runner=process uses config.python");
    if (spec.settings.builder === "oci" && !["auto", "linux/amd64"].includes(spec.settings.platform))
      problems.push(`config.builder=oci builds linux/amd64 only (SageMaker's platform), not config.platform=${spec.settings.platform}`);
    if (schemeOf(spec.outputPath) && schemeOf(spec.outputPath) !== "s3" && schemeOf(spec.outputPath) !== "gs")
      problems.push(`the local backend writes to a local folder, s3:// or gs://, not ${spec.outputPath}`);
    for (const [channel, location] of Object.entries(spec.inputs)) {
      if (schemeOf(location)) problems.push(`input ${channel}: the local backend reads local files and folders, not ${location}`);
      else if (!fs.existsSync(location)) problems.push(`input ${channel}: ${location} does not exist`);
    }
    return problems;
  },

  async submit(job, ctx, options) {
    const { spec } = job;
    // This process prepares the job; if it dies while pip runs, `status` sees the pid gone and says so. (Recorded once the
    // checks before it pass: a job refused by them never started, and keeps no record.)
    if (spec.settings.runner === "docker") {
      options.record({ pid: process.pid });
      return submitRun(job, await containerSetup(job, ctx), ctx, options);
    }
    const sandbox = chooseSandbox(spec.settings.sandbox, ctx.env.PATH, ctx.cacheDir);
    if (sandbox.reason !== undefined) {
      if (spec.settings.sandbox === "bwrap")
        throw failure(`config.sandbox=bwrap, but ${sandbox.reason}.`, "Install bubblewrap (apt-get install bubblewrap), or use --config.sandbox=auto.");
      await refuseLiteralRoots(spec, sandbox.reason, ctx);
      const gs = Object.entries(spec.hyperparameters).find(([, value]) => typeof value === "string" && value.startsWith("gs://"));
      if (gs)
        ctx.reporter.warn(
          `hyperparameter ${gs[0]} is a gs:// URI (${gs[1]}); without a sandbox, a script that turns it into a /gcs/… path, as Vertex AI's samples do, writes into this machine's /gcs. Install bubblewrap for a /gcs of the job's own, or leave it to $AIP_MODEL_DIR.`,
        );
      if (spec.settings.sandbox === "auto") {
        ctx.reporter.warn(
          `${sandbox.reason}: the job finds its folders through SM_MODEL_DIR, AIP_MODEL_DIR and the other variables only, not at /opt/ml, /gcs or /kaggle. Install bubblewrap (apt-get install bubblewrap) for a private /opt/ml, /gcs and /kaggle.`,
        );
      }
    }
    if (!sandbox.bwrap && hostMlWritable()) {
      ctx.reporter.warn(
        "Without a sandbox, a script that hard-codes /opt/ml writes into this machine's /opt/ml (you may write there); alekseylearn names what it wrote afterwards. $SM_MODEL_DIR and the other SM_* variables point at the job's own folder.",
      );
    }
    options.record({ pid: process.pid });
    const started = Date.now();
    const environment = await ensureEnvironment(
      { file: spec.environment, python: spec.settings.python, extras: spec.artifact.kind === "notebook" ? NOTEBOOK_PACKAGES : [] },
      ctx,
    );
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    ctx.reporter.info(environment.created ? `Environment ready in ${seconds}s: ${environment.dir}` : `Using the cached environment ${environment.dir}`);
    const setup: RunSetup = { python: environment.python, ...(sandbox.bwrap ? { bwrap: sandbox.bwrap } : {}) };
    return submitRun(job, { setup, provider: { sandbox: setup.bwrap ? "bwrap" : "none", environment: environment.dir } }, ctx, options);
  },

  // The detached supervisor's run, started by `submit` through `options.supervise`.
  runDetached(job, setup: RunSetup, ctx, signal, record) {
    return runLocalJob(job, setup, ctx, signal, record);
  },

  // The run itself saves how it goes (in this process, or in the detached supervisor); all there is to find out here is a run that died unrecorded.
  async describe(record) {
    if (!isFinal(record.state) && record.pid && !active.has(record.name) && !isRecordedProcess(record)) {
      return { state: "failed", endedAt: new Date().toISOString(), reason: "the process running the job ended before the job did" };
    }
    return {};
  },

  async *logs(job, ctx, options) {
    // The job's own log, where this machine's runs are kept: never a path the record names (a record is data, and may have been edited).
    const file = runPaths(ctx.stateDir, job.name).log;
    const lines = new LineSplitter();
    let offset = 0;
    for (;;) {
      // The state is read before the bytes: once it is final, the log is already complete.
      const record = options.follow && options.refresh ? await options.refresh() : undefined;
      for (let chunk = readFrom(file, offset); chunk.length; chunk = readFrom(file, offset)) {
        offset += chunk.length;
        yield* lines.push(chunk);
      }
      if (!record || isFinal(record.state)) {
        yield* lines.end();
        return;
      }
      if (!(await nextChange(job.name, POLL_MS, options.signal))) return; // the reader stopped following
    }
  },

  async stop(job): Promise<JobChanges<LocalProvider> | void> {
    const controller = active.get(job.name);
    if (controller) return controller.abort();
    if (isFinal(job.state)) return;
    // Only the job's own process is signalled: a pid that now names another process (reused, or edited into the record) means the job's is gone.
    if (isRecordedProcess(job)) process.kill(job.pid!, "SIGTERM");
    else return { state: "stopped", endedAt: new Date().toISOString(), reason: "stopped by request" };
  },
} satisfies Backend<typeof localSchema, LocalProvider>;
