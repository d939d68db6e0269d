/**
 * One local run, start to end: lay out the job's private /opt/ml, run the
 * artifact (in bubblewrap when there is one), keep its output in the job's log,
 * pack the model where SageMaker would, and record how it ended. This runs in
 * the `fit` process, or in a detached supervisor for `fit --detach`.
 */
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import type { Context } from "../../context.js";
import { JobStore, type JobRecord, type JobState } from "../../jobs/records.js";
import { contractConfigFiles, ML_ROOT } from "../../package/contract.js";
import { ENTRYPOINT_SOURCE } from "../../package/entrypoint.js";
import { ENTRYPOINT, jobSettingsEnv } from "../../package/image.js";
import { NOTEBOOK_RUNNER, NOTEBOOK_RUNNER_NAME } from "../../package/notebook.js";
import { trainingRunArgs } from "../../package/docker.js";
import { which } from "../../package/which.js";
import { packFolder } from "../../storage/archive.js";
import { storageFor } from "../../storage/index.js";
import { joinLocation } from "../../storage/location.js";
import { bwrapArgs, hostOptEntries, type Mount } from "./sandbox.js";

/** Where a job's run lives on this machine: its /opt/ml and its log. */
export function runPaths(stateDir: string, name: string): { dir: string; ml: string; log: string } {
  const dir = path.join(stateDir, "runs", name);
  return { dir, ml: path.join(dir, "ml"), log: path.join(dir, "job.log") };
}

function countGpus(pathVar: string | undefined): number {
  const smi = which("nvidia-smi", pathVar);
  if (!smi) return 0;
  const result = spawnSync(smi, ["-L"], { encoding: "utf8", timeout: 5000 });
  return result.status === 0 ? result.stdout.split("\n").filter((line) => line.startsWith("GPU ")).length : 0;
}

/** Lay out /opt/ml for the job in `ml`; returns the mounts (sandboxed) that bring its inputs in. */
function layout(job: JobRecord, ml: string, sandboxed: boolean): Mount[] {
  const { spec } = job;
  const channels = Object.keys(spec.inputs);
  for (const sub of ["model", "output/data", "input/config", "checkpoints"]) fs.mkdirSync(path.join(ml, sub), { recursive: true });
  for (const [file, content] of Object.entries(contractConfigFiles({ hyperparameters: spec.hyperparameters, channels }))) {
    fs.writeFileSync(path.join(ml, "input", "config", file), JSON.stringify(content, null, 2) + "\n");
  }
  const mounts: Mount[] = [];
  for (const [channel, location] of Object.entries(spec.inputs)) {
    const channelDir = path.join(ml, "input", "data", channel);
    const isDir = fs.statSync(location).isDirectory();
    // A folder becomes the channel; a single file appears inside it, as SageMaker copies an object into the channel.
    const target = isDir ? channelDir : path.join(channelDir, path.basename(location));
    fs.mkdirSync(isDir ? channelDir : path.dirname(target), { recursive: true });
    if (sandboxed) {
      if (!isDir) fs.writeFileSync(target, "");
      mounts.push({ host: location, inside: `${ML_ROOT}/input/data/${channel}${isDir ? "" : "/" + path.basename(location)}`, readOnly: true });
    } else {
      if (isDir) fs.rmdirSync(channelDir);
      fs.symlinkSync(location, target);
    }
  }
  return mounts;
}

/**
 * The command that runs the artifact with `python`: the image's entrypoint,
 * written beside the job, which computes the SM_* variables and arguments from
 * /opt/ml/input/config as SageMaker's toolkit does and then execs the script
 * (so the script is the process alekseylearn signals). `root` is the folder
 * the job sees as /opt/ml.
 */
function artifactCommand(job: JobRecord, python: string, runDir: string, root: string): { command: string[]; env: Record<string, string> } {
  const { artifact, settings } = job.spec;
  const entrypoint = path.join(runDir, ENTRYPOINT);
  fs.writeFileSync(entrypoint, ENTRYPOINT_SOURCE);
  if (artifact.kind === "notebook") fs.writeFileSync(path.join(runDir, NOTEBOOK_RUNNER_NAME), NOTEBOOK_RUNNER);
  const env: Record<string, string> = {
    ALEKSEYLEARN_ENTRY: artifact.entry,
    ALEKSEYLEARN_KIND: artifact.kind,
    ALEKSEYLEARN_EXEC: "1",
    TRAINING_JOB_NAME: job.name,
    PYTHONUNBUFFERED: "1",
    ...jobSettingsEnv(settings),
  };
  // The toolkit's own way to put /opt/ml elsewhere, for a job without a private /opt/ml.
  if (root !== ML_ROOT) env.SAGEMAKER_BASE_DIR = root;
  return { command: [python, "-u", entrypoint, "train"], env };
}

function readFailureFile(ml: string): string | undefined {
  try {
    const text = fs.readFileSync(path.join(ml, "output", "failure"), "utf8").trim();
    return text ? text.split("\n").slice(-3).join(" ") : undefined;
  } catch {
    return undefined;
  }
}

/** How the run is carried out: the environment's python, and bwrap's path when sandboxed; or a container image (runner=docker). */
export interface RunSetup {
  python: string;
  bwrap?: string;
  /** The image to run as SageMaker runs it (`docker run IMAGE train`); python and bwrap are then unused. */
  image?: string;
}

/** The name of a local job's container, so it can be stopped by name. */
export function containerName(job: JobRecord): string {
  return `alekseylearn-${job.name}`;
}

/**
 * Run `job` to its end and return its final record. Aborting `signal` stops the
 * job: SIGTERM to its process group, SIGKILL after `stop_timeout`. Never throws
 * for the job's own failures: they end up in the record.
 */
export async function runLocalJob(job: JobRecord, setup: RunSetup, ctx: Context, signal: AbortSignal): Promise<JobRecord> {
  const store = new JobStore(ctx.stateDir);
  const paths = runPaths(ctx.stateDir, job.name);
  const log = fs.createWriteStream(paths.log, { flags: "a" });
  let logOpen = true;
  // The log is complete before the record says the job ended, so a follower that sees the end has every line.
  const closeLog = (): Promise<unknown> => (logOpen ? ((logOpen = false), new Promise((resolve) => log.end(resolve))) : Promise.resolve());
  try {
    fs.rmSync(paths.ml, { recursive: true, force: true });
    const sandboxed = setup.bwrap !== undefined || setup.image !== undefined;
    const root = sandboxed ? ML_ROOT : paths.ml;
    const mounts = layout(job, paths.ml, sandboxed);
    let program: string;
    let args: string[];
    let env: Record<string, string | undefined>;
    if (setup.image) {
      // The image's entrypoint sets the SM_* variables itself, as it does on SageMaker.
      const containerEnv = { TRAINING_JOB_NAME: job.name, ...jobSettingsEnv(job.spec.settings) };
      const gpus = countGpus(ctx.env.PATH) > 0;
      [program, args, env] = ["docker", trainingRunArgs({ image: setup.image, name: containerName(job), ml: paths.ml, mounts, env: containerEnv, gpus }), { ...ctx.env, ...containerEnv }];
    } else {
      const run = artifactCommand(job, setup.python, paths.dir, root);
      env = { ...ctx.env, ...run.env };
      [program, ...args] = setup.bwrap ? [setup.bwrap, ...bwrapArgs(paths.ml, mounts, hostOptEntries(), run.command)] : (run.command as [string, ...string[]]);
    }

    const child = spawn(program, args, { cwd: job.spec.artifact.dir, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
      child.on("error", (error) => resolve({ code: null, signal: null, error }));
      child.on("close", (code, sig) => resolve({ code, signal: sig }));
    });
    for (const stream of [child.stdout, child.stderr]) {
      stream.setEncoding("utf8");
      stream.on("data", (chunk: string) => {
        log.write(chunk);
      });
    }
    store.update(job.name, { state: "running", startedAt: new Date().toISOString(), pid: process.pid, logFile: paths.log });

    let stopping = false;
    let killTimer: NodeJS.Timeout | undefined;
    const stop = (): void => {
      stopping = true;
      const grace = Number(job.spec.settings.stop_timeout ?? 10);
      if (setup.image) {
        // docker stop sends SIGTERM to the container's first process and SIGKILL after the grace time.
        spawn("docker", ["stop", "--time", String(grace), containerName(job)], { env: ctx.env as NodeJS.ProcessEnv, stdio: "ignore" }).on("error", () => {});
        return;
      }
      const group = (sig: NodeJS.Signals): void => {
        try {
          process.kill(-child.pid!, sig);
        } catch {
          // already gone
        }
      };
      group("SIGTERM");
      killTimer = setTimeout(() => group("SIGKILL"), grace * 1000);
    };
    if (signal.aborted) stop();
    else signal.addEventListener("abort", stop, { once: true });

    const result = await exited;
    clearTimeout(killTimer);
    signal.removeEventListener("abort", stop);

    let state: JobState;
    let reason: string | undefined;
    if (result.error) {
      state = "failed";
      reason = `could not start ${program}: ${result.error.message}`;
    } else if (stopping) {
      state = "stopped";
      reason = "stopped by request";
    } else if (result.code === 0) {
      state = "completed";
    } else {
      state = "failed";
      reason = readFailureFile(paths.ml) ?? (result.code !== null ? `the training process exited with code ${result.code}` : `the training process was killed by ${result.signal}`);
    }

    const changes: Partial<JobRecord> = { state, endedAt: new Date().toISOString(), exitCode: result.code ?? undefined, reason };
    const outputs = joinLocation(job.jobOutput, "output");
    const storage = await storageFor(outputs, ctx);
    const pack = async (folder: string, name: string): Promise<string | undefined> => {
      const archive = path.join(paths.dir, name);
      if ((await packFolder(folder, archive)) === 0) return undefined;
      const location = joinLocation(outputs, name);
      await storage.upload(archive, location);
      fs.rmSync(archive, { force: true });
      return location;
    };
    if (state === "completed") changes.model = await pack(path.join(paths.ml, "model"), "model.tar.gz");
    changes.output = await pack(path.join(paths.ml, "output", "data"), "output.tar.gz");
    // A finished job's files now live in its output path; a failed one keeps its folder for inspection.
    if (state === "completed") fs.rmSync(paths.ml, { recursive: true, force: true });
    await closeLog();
    return store.update(job.name, changes);
  } catch (err) {
    if (logOpen) log.write(`\n[alekseylearn] internal error: ${(err as Error).stack ?? err}\n`);
    await closeLog();
    return store.update(job.name, { state: "failed", endedAt: new Date().toISOString(), reason: `alekseylearn failed while running the job: ${(err as Error).message}` });
  }
}
