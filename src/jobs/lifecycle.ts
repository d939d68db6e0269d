/**
 * The lifecycle every backend shares: name the job, record it, submit it,
 * follow it (logs live, Ctrl-C handled), and turn its end into a result or a
 * UserError. Backends only talk to their provider.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Context } from "../context.js";
import { EXIT_FAILURE, EXIT_INTERRUPTED, UserError } from "../errors.js";
import { allBackends, getBackend } from "../backends/registry.js";
import type { Backend, LogOptions, SubmissionPlan } from "../backends/types.js";
import { buildSpec, type FitRequest } from "./spec.js";
import type { JobSpec } from "../spec/types.js";
import { joinLocation } from "../storage/location.js";
import { artifactStem } from "../package/artifact.js";
import { isValidJobName, makeJobName } from "./names.js";
import { isFinal, JobStore, skippedRecordWarning, type JobRecord } from "./records.js";
import { printable } from "../text.js";
import { namesSecret, REDACTED, redactForPrint, redactUrls, secretValues } from "../redact.js";

/** How many of a failed job's last log lines an error shows. */
const FAILURE_LINES = 15;

/** The outcome of following a job: its record, and whether we stopped watching while it still ran. */
export interface FollowResult {
  job: JobRecord;
  /** True when Ctrl-C detached from a job that goes on running (cloud backends). */
  detached: boolean;
}

/**
 * The job's record as it is now: as saved (the local runner saves as it goes), refreshed with what its
 * provider says has changed, and saved again (a job found elsewhere and not kept here is only refreshed).
 */
export async function refresh(job: JobRecord, ctx: Context): Promise<JobRecord> {
  const store = new JobStore(ctx.stateDir);
  const latest = store.find(job.name) ?? job;
  const changes = await (await getBackend(latest.backend)).describe(latest, ctx);
  if (!Object.keys(changes).length) return latest;
  return store.find(latest.name) ? store.update(latest.name, changes) : { ...latest, ...changes };
}

/** The last `count` lines of a job's log. */
export async function lastLogLines(backend: Backend, job: JobRecord, ctx: Context, count: number): Promise<string[]> {
  const lines: string[] = [];
  for await (const line of backend.logs(job, ctx, { follow: false, refresh: () => refresh(job, ctx) })) {
    lines.push(line);
    if (lines.length > count) lines.shift();
  }
  return lines;
}

/** A job that ended without completing: a UserError that carries the job's final record. */
export class JobEndedError extends UserError {
  constructor(
    readonly job: JobRecord,
    message: string,
    hint: string | undefined,
    exitCode: number,
    details: readonly string[] = [],
  ) {
    super(message, hint, exitCode, details);
  }
}

/** Turn a finished job into an error when it did not complete. */
async function checkEnded(backend: Backend, job: JobRecord, ctx: Context): Promise<void> {
  if (job.state === "failed") {
    const lines = await lastLogLines(backend, job, ctx, FAILURE_LINES);
    throw new JobEndedError(
      job,
      `Job ${job.name} failed: ${printable(job.reason ?? "no reason was given")}.`,
      `Its whole log: alekseylearn logs ${job.name}`,
      EXIT_FAILURE,
      lines,
    );
  }
  if (job.state === "stopped")
    throw new JobEndedError(
      job,
      `Job ${job.name} was stopped${job.reason && job.reason !== "stopped by request" ? `: ${printable(job.reason)}` : ""}.`,
      undefined,
      EXIT_INTERRUPTED,
    );
}

/**
 * Follow a submitted job until it ends, passing its log lines to the
 * reporter. When `ctx.signal` aborts, the job is stopped (local) or left
 * running (clouds), as its backend says.
 */
export async function follow(job: JobRecord, ctx: Context): Promise<FollowResult> {
  const backend = await getBackend(job.backend);
  const watching = new AbortController();
  const onAbort = (): void => {
    if (backend.onInterrupt === "stop") {
      ctx.reporter.info(`Stopping ${job.name}…`);
      backend
        .stop(job, ctx)
        .then((changes) => changes && new JobStore(ctx.stateDir).update(job.name, changes))
        .catch((err: unknown) => ctx.reporter.warn(`Could not stop ${job.name}: ${err instanceof Error ? err.message : String(err)}`));
    } else {
      watching.abort();
    }
  };
  if (ctx.signal?.aborted) onAbort();
  else ctx.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    for await (const line of backend.logs(job, ctx, { follow: true, signal: watching.signal, refresh: () => refresh(job, ctx) })) ctx.reporter.jobLine(line);
  } finally {
    ctx.signal?.removeEventListener("abort", onAbort);
  }
  const latest = await refresh(job, ctx);
  if (watching.signal.aborted && !isFinal(latest.state)) return { job: latest, detached: true };
  await checkEnded(backend, latest, ctx);
  return { job: latest, detached: false };
}

/** Options of `fit` that are not part of the job. */
export interface FitOptions {
  /** Return once the job is submitted instead of following it. */
  detach?: boolean;
  /** Use this job name instead of a generated one (it must not exist yet). */
  name?: string;
  /** Write the artifact's Dockerfile and entrypoint anew (image backends), replacing the folder's own. */
  overwriteImage?: boolean;
}

/** The validated spec, its backend and the job's first record (named as given, or a made name; not saved), as `fit` and `planFit` both start. */
async function prepare(request: FitRequest, ctx: Context, options: FitOptions): Promise<{ spec: JobSpec; backend: Backend; name: string; job: JobRecord }> {
  const spec = await buildSpec(request, ctx.cwd);
  const backend = await getBackend(spec.backend);
  const name = options.name ?? makeJobName(artifactStem(spec.artifact));
  if (!isValidJobName(name)) {
    throw new UserError(
      `Job name ${name} is not valid on every backend.`,
      "Use 2 to 63 characters of a-z, 0-9 and -, starting with a letter and not ending with -.",
    );
  }
  if (new JobStore(ctx.stateDir).find(name)) throw new UserError(`A job named ${name} already exists.`, "Pick another name.");
  const job: JobRecord = {
    name,
    backend: spec.backend,
    state: "preparing",
    spec,
    createdAt: new Date().toISOString(),
    jobOutput: spec.outputPath ? joinLocation(spec.outputPath, name) : "",
  };
  return { spec, backend, name, job };
}

/**
 * What `fit` would do, without doing it (`fit --dry-run`): everything that can
 * be checked without creating anything is checked, and the plan returned —
 * the files that would ship, the image, and each provider request as it
 * would be sent, with credentials redacted. No job record, repository, role, object or job is created.
 */
export async function planFit(request: FitRequest, ctx: Context, options: Pick<FitOptions, "name"> = {}): Promise<SubmissionPlan> {
  const { spec, backend, job } = await prepare(request, ctx, options);
  // A plan is for printing: it holds no credential, by the rule records follow (the spec's own secret values, config file's included).
  // Secret-named hyperparameters are redacted before the plan is made, as a request may carry them encoded (Kaggle's payload is deflated).
  const hyperparameters = Object.fromEntries(
    Object.entries(spec.hyperparameters).map(([key, value]) => [key, namesSecret(key) ? REDACTED : typeof value === "string" ? redactUrls(value) : value]),
  );
  const planned = await backend.plan({ ...job, spec: { ...spec, hyperparameters } }, ctx);
  return redactForPrint(planned, secretValues(spec.settings, spec.hyperparameters)) as SubmissionPlan;
}

/** The variable that hands the detached supervisor the job's hyperparameters as given (its record holds them redacted). */
export const SUPERVISOR_HYPERPARAMETERS = "ALEKSEYLEARN_SUPERVISOR_HYPERPARAMETERS";

/** Start the detached supervisor (`supervisor.ts`) that runs job `name` with its backend's `runDetached` and `setup`, outliving this process; returns its pid. */
function startSupervisor(name: string, setup: unknown, spec: JobSpec, ctx: Context): number {
  const script = fileURLToPath(new URL("./supervisor.js", import.meta.url));
  const child = spawn(process.execPath, [script, JSON.stringify({ stateDir: ctx.stateDir, cacheDir: ctx.cacheDir, name, setup })], {
    cwd: ctx.cwd,
    // In its environment, not its arguments: a process's arguments are readable by every user of the machine, its environment only by its own.
    env: { ...(ctx.env as NodeJS.ProcessEnv), [SUPERVISOR_HYPERPARAMETERS]: JSON.stringify(spec.hyperparameters) },
    detached: true,
    stdio: "ignore",
  });
  child.unref();
  return child.pid!;
}

/**
 * Run a training job: validate, submit, and (unless detached) follow it to the
 * end. Resolves with the job's record; a failed or stopped job is a UserError.
 */
export async function fit(request: FitRequest, ctx: Context, options: FitOptions = {}): Promise<FollowResult> {
  const { spec, backend, name, job: first } = await prepare(request, ctx, options);
  const store = new JobStore(ctx.stateDir);
  if (!spec.environment) {
    ctx.reporter.warn(
      `No requirements.txt or environment.yml beside ${spec.artifact.entry}: the job runs in a fresh environment with nothing extra installed (pass one with --envfile).`,
    );
  }
  // The image's modules are loaded only for a job that asks for them (a local run needs none).
  if (options.overwriteImage && (await import("../package/image.js")).hasOwnDockerfile(spec)) {
    const { writeImageFiles } = await import("./init.js");
    for (const file of writeImageFiles(spec, backend.wantsGpu(spec.settings), true, ctx.cwd).written) ctx.reporter.info(`Rewrote ${file}`);
  }
  const job = store.save(first);
  ctx.reporter.info(`Job ${name} (${backend.name} backend)`);

  let submitted: JobRecord;
  // Whether the backend got as far as recording anything (a process, a provider's job): until then a failure is a preflight's (no project, a role check), and the name is not kept.
  let recorded = false;
  try {
    const record = (changes: Partial<JobRecord>): JobRecord => ((recorded = true), store.update(name, changes));
    const supervise = (setup: unknown): number => startSupervisor(name, setup, spec, ctx);
    submitted = store.update(name, await backend.submit(job, ctx, { detach: options.detach ?? false, record, supervise }));
  } catch (err) {
    const stopped = ctx.signal?.aborted;
    if (!recorded) {
      store.remove(name);
      ctx.reporter.info(`No record of ${name} was kept: it never started.`);
      throw err;
    }
    store.update(name, { state: stopped ? "stopped" : "failed", endedAt: new Date().toISOString(), reason: err instanceof Error ? err.message : String(err) });
    throw err;
  }
  if (options.detach) return { job: submitted, detached: true };
  return follow(submitted, ctx);
}

/** The record of job `name`: this machine's, else one a provider knows by that name (a job started elsewhere); a UserError naming the closest known job when neither has it. */
export async function findJob(name: string, ctx: Context): Promise<JobRecord> {
  const store = new JobStore(ctx.stateDir);
  const local = store.find(name);
  if (local) return local;
  return (await lookupElsewhere(name, ctx)) ?? store.get(name); // get throws, naming the nearest job
}

/** A job this machine has no record of, from the first provider that knows `name`. */
export async function lookupElsewhere(name: string, ctx: Context): Promise<JobRecord | undefined> {
  if (!isValidJobName(name)) return undefined;
  for (const backend of await allBackends()) {
    const found = await backend.lookup?.(name, ctx);
    // Kept here from now on, so the next command finds it without asking.
    if (found) return new JobStore(ctx.stateDir).save(found);
  }
  return undefined;
}

/** The record of a job, refreshed from its backend; with no name, the newest job. */
export async function status(name: string | undefined, ctx: Context): Promise<JobRecord> {
  const store = new JobStore(ctx.stateDir);
  const job = name ? await findJob(name, ctx) : store.list((bad) => ctx.reporter.warn(printable(skippedRecordWarning(bad))))[0];
  if (!job) throw new UserError("No jobs yet.", "Start one with `alekseylearn fit ARTIFACT`.");
  return refresh(job, ctx);
}

/** Every job this machine has a record of, newest first, refreshed where it may still change (a provider that cannot be asked leaves the record as it was). */
export async function jobs(ctx: Context): Promise<JobRecord[]> {
  const records = new JobStore(ctx.stateDir).list((bad) => ctx.reporter.warn(printable(skippedRecordWarning(bad))));
  return Promise.all(records.map((job) => (isFinal(job.state) ? job : refresh(job, ctx).catch(() => job))));
}

/** A job's log lines; with `follow`, until it ends. */
export async function* logs(name: string, ctx: Context, options: LogOptions): AsyncIterable<string> {
  const job = await findJob(name, ctx);
  yield* (await getBackend(job.backend)).logs(job, ctx, { refresh: () => refresh(job, ctx), ...options });
}

/**
 * Remove the record of job `name` (and, for a job run here, its run folder: log and /opt/ml), so the name is free again;
 * refused while the job may still run (`stop` it first). A record that cannot be read is removed as it is.
 */
export async function forget(name: string, ctx: Context): Promise<void> {
  const store = new JobStore(ctx.stateDir);
  if (!isValidJobName(name)) store.get(name); // throws, naming the nearest job: a name that is no job's names no folder either
  let job: JobRecord | undefined;
  let unreadable = false;
  try {
    job = store.find(name);
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    unreadable = true; // nothing in it can say a job runs
  }
  if (job) {
    const latest = isFinal(job.state) ? job : await refresh(job, ctx).catch(() => job);
    if (!isFinal(latest.state))
      throw new UserError(`Job ${name} is ${latest.state}; its record is kept while it may run.`, `Stop it first: alekseylearn stop ${name}`);
  } else if (!unreadable && !fs.existsSync(runPathsOf(ctx.stateDir, name))) store.get(name); // throws, naming the nearest job
  store.remove(name);
  fs.rmSync(runPathsOf(ctx.stateDir, name), { recursive: true, force: true });
}

/** A job's run folder under the state folder (the local backend's log and /opt/ml). */
function runPathsOf(stateDir: string, name: string): string {
  return path.join(stateDir, "runs", name);
}

/** Ask a job to stop; resolves with its record once the request is made. */
export async function stop(name: string, ctx: Context): Promise<JobRecord> {
  const job = await findJob(name, ctx);
  const backend = await getBackend(job.backend);
  if (isFinal(job.state)) throw new UserError(`Job ${name} has already ended (${job.state}).`, undefined, 1);
  const changes = await backend.stop(job, ctx);
  // What the stop changed is saved, and the refresh starts from it (its provider's fields are carried on).
  return refresh(changes ? new JobStore(ctx.stateDir).update(job.name, changes) : job, ctx);
}
