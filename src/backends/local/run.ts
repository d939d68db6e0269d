/**
 * One local run, start to end: lay out the job's private /opt/ml, run the
 * artifact (in bubblewrap when there is one), keep its output in the job's log,
 * pack the model where SageMaker would, and record how it ended. This runs in
 * the `fit` process, or, for `fit --detach`, in jobs/' detached supervisor
 * (`runDetached`); either way it reports what changed through `record`.
 */
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { StringDecoder } from "node:string_decoder";
import { Transform } from "node:stream";
import type { Context } from "../../context.js";
import type { JobRecord, JobState } from "../../jobs/job.js";
import type { LocalJob } from "./schema.js";
import type { JobChanges } from "../types.js";
import { ML_ROOT } from "../../package/contract.js";
import { entrypointPath, LOCAL_BUCKET, runtimeEnv, trainArgs, type JobDescription } from "../../package/runtime.js";
import { which } from "../../package/which.js";
import { storageFor } from "../../storage/index.js";
import { joinLocation, schemeOf } from "../../storage/location.js";
import { keepWorkingFiles, leftBehind, snapshot, WORKING } from "../../package/working.js";
import { bwrapArgs, hostOptEntries, hostRootEntries, hostsFileText, type Mount } from "./sandbox.js";
import { runtimeSettings } from "../common.js";

/** Where a job's run lives on this machine: its /opt/ml and its log. */
export function runPaths(stateDir: string, name: string): { dir: string; ml: string; log: string } {
  const dir = path.join(stateDir, "runs", name);
  return { dir, ml: path.join(dir, "ml"), log: path.join(dir, "job.log") };
}

/** SageMaker's names of a job's hosts: algo-1 … algo-N. */
export function hostNames(count: number): string[] {
  return Array.from({ length: count }, (_, index) => `algo-${index + 1}`);
}

/**
 * One host of a multi-host job on this machine: its name and folders (algo-1's are the job's own, so a one-host job is laid
 * out as before; algo-N's are under hosts/algo-N/), every host's name, the job's rendezvous port and the sandboxes' /etc/hosts.
 */
interface LocalHost {
  name: string;
  ml: string;
  gcs: string;
  kaggle: string;
  names: readonly string[];
  port: number;
  hostsFile: string;
}

function hostFolders(paths: ReturnType<typeof runPaths>, name: string): { ml: string; gcs: string; kaggle: string } {
  const dir = name === "algo-1" ? paths.dir : path.join(paths.dir, "hosts", name);
  return { ml: path.join(dir, "ml"), gcs: path.join(dir, "gcs"), kaggle: path.join(dir, "kaggle") };
}

/** The one host of a torchrun job: its folders are the job's, and it is told the job's port. */
function singleHost(paths: ReturnType<typeof runPaths>, port: number): LocalHost {
  return { name: "algo-1", ...hostFolders(paths, "algo-1"), names: ["algo-1"], port, hostsFile: "" };
}

/** A port free on this machine now, for a job's rendezvous: two jobs run at once, each on its own. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

function countGpus(pathVar: string | undefined): number {
  const smi = which("nvidia-smi", pathVar);
  if (!smi) return 0;
  const result = spawnSync(smi, ["-L"], { encoding: "utf8", timeout: 5000 });
  return result.status === 0 ? result.stdout.split("\n").filter((line) => line.startsWith("GPU ")).length : 0;
}

/**
 * Make the job's folders: its /opt/ml, and (sandboxed) its own /gcs and /kaggle. Returns the mounts that bring its inputs
 * in (sandboxed) and where the runtime finds each channel. The runtime lays out the rest of every contract itself.
 */
function layout(job: LocalJob, paths: { ml: string }, sandboxed: boolean): { mounts: Mount[]; inputs: Record<string, string> } {
  const { spec } = job;
  fs.mkdirSync(paths.ml, { recursive: true });
  const mounts: Mount[] = [];
  const inputs: Record<string, string> = {};
  for (const [channel, location] of Object.entries(spec.inputs)) {
    if (!sandboxed) {
      inputs[channel] = location;
      continue;
    }
    // A folder becomes the channel; a single file appears inside it, as SageMaker copies an object into the channel.
    const isDir = fs.statSync(location).isDirectory();
    const inside = `${ML_ROOT}/input/data/${channel}`;
    const target = path.join(paths.ml, "input", "data", channel, isDir ? "" : path.basename(location));
    fs.mkdirSync(isDir ? target : path.dirname(target), { recursive: true });
    if (!isDir) fs.writeFileSync(target, "");
    mounts.push({ host: location, inside: isDir ? inside : `${inside}/${path.basename(location)}`, readOnly: true });
    inputs[channel] = inside;
  }
  return { mounts, inputs };
}

/** What the job runtime is told of `job` wherever it runs on this machine; `inputs`: channel → where the job sees its data. */
export function localDescription(job: Pick<LocalJob, "name" | "spec">, inputs: Readonly<Record<string, string>>): JobDescription {
  const { artifact, settings } = job.spec;
  return {
    entry: artifact.entry,
    kind: artifact.kind,
    name: job.name,
    inputs,
    ...runtimeSettings(settings),
  };
}

/**
 * The command that runs the artifact with `python`: the job runtime's entrypoint (in this package), which lays out every
 * platform's contract, runs the script with the variables and arguments SageMaker's toolkit would give it, and is the
 * init of the job's whole process tree. `root` is the folder the job sees as /opt/ml.
 */
function artifactCommand(
  job: LocalJob,
  python: string,
  root: string,
  inputs: Record<string, string>,
  sandboxed: boolean,
  cacheDir: string,
  host?: LocalHost,
): { command: string[]; env: Record<string, string> } {
  const cluster = host ? { hosts: host.names, currentHost: host.name, masterPort: host.port } : {};
  const env: Record<string, string> = {
    ...runtimeEnv({
      ...localDescription(job, inputs),
      ...cluster,
      platform: "local",
      sandboxed,
      supervised: true,
      stopTimeout: job.spec.settings.stop_timeout,
    }),
    PYTHONUNBUFFERED: "1",
  };
  // The toolkit's own way to put /opt/ml elsewhere, for a job without a private /opt/ml.
  if (root !== ML_ROOT) env.SAGEMAKER_BASE_DIR = root;
  // -S: the runtime needs only the standard library, so it skips site's start-up; the script it starts gets its environment as usual.
  // -X pycache_prefix: the runtime's compiled modules are kept in alekseylearn's cache (the entrypoint writes them there even
  // under PYTHONDONTWRITEBYTECODE), so no job compiles them again; the option is the init's alone, not the script's.
  const pycache = `pycache_prefix=${path.join(cacheDir, "runtime-pyc")}`;
  return { command: [python, "-S", "-u", "-X", pycache, entrypointPath(), ...trainArgs(job.spec.hyperparameters)], env };
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
export function containerName(job: LocalJob): string {
  return `alekseylearn-${job.name}`;
}

/** How a job's process is started: the program, its arguments and environment. */
interface Launch {
  program: string;
  args: string[];
  env: Record<string, string | undefined>;
}

/**
 * The command for `job`: `docker run IMAGE train` (runner=docker), else the entrypoint with this machine's Python, in bwrap
 * when there is one; `host`: one host of a multi-host job (runner=process), with its own folders.
 */
async function launchCommand(job: LocalJob, setup: RunSetup, paths: ReturnType<typeof runPaths>, ctx: Context, host?: LocalHost): Promise<Launch> {
  const sandboxed = setup.bwrap !== undefined || setup.image !== undefined;
  const { mounts, inputs } = layout(job, host ?? paths, sandboxed);
  if (setup.image) {
    // The image's runtime lays out the contracts itself, as it does on SageMaker; the container's /gcs and /kaggle are its own.
    const containerEnv = runtimeEnv({ ...localDescription(job, inputs), platform: "container" });
    const gpus = countGpus(ctx.env.PATH) > 0;
    const { trainingRunArgs } = await import("../../package/docker.js");
    return {
      program: "docker",
      args: trainingRunArgs({
        image: setup.image,
        name: containerName(job),
        ml: paths.ml,
        mounts,
        env: containerEnv,
        gpus,
        args: trainArgs(job.spec.hyperparameters).slice(1),
      }),
      env: { ...ctx.env, ...containerEnv },
    };
  }
  const roots = host ?? { ml: paths.ml, gcs: path.join(paths.dir, "gcs"), kaggle: path.join(paths.dir, "kaggle") };
  const run = artifactCommand(job, setup.python, sandboxed ? ML_ROOT : roots.ml, inputs, sandboxed, ctx.cacheDir, host);
  const env = { ...ctx.env, ...run.env };
  if (!setup.bwrap) return { program: run.command[0]!, args: run.command.slice(1), env };
  // bwrap writes the host pid of the job's init (the runtime, PID 1 of the sandbox) to fd 3, so a stop signals it, not bwrap.
  fs.mkdirSync(roots.gcs, { recursive: true });
  fs.mkdirSync(roots.kaggle, { recursive: true });
  const named = host && host.names.length > 1 ? { name: host.name, hostsFile: host.hostsFile } : undefined;
  return { program: setup.bwrap, args: bwrapArgs(roots, mounts, hostRootEntries(), hostOptEntries(), run.command, 3, named), env };
}

/** A started job process: its end, and the pid to signal to stop it (the job's init, inside bwrap when sandboxed). */
interface Running {
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>;
  init: Promise<number | undefined>;
  /** The process group alekseylearn started (bwrap, or the entrypoint). */
  group: number | undefined;
}

/**
 * A host's output with every line starting with its name, as SageMaker's log streams name their host. A line that
 * never ends (a progress bar drawn with \r) is passed on in pieces of 64 KiB, so nothing piles up here.
 */
function prefixLines(prefix: string): Transform {
  const decoder = new StringDecoder("utf8");
  let partial = "";
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      const lines = (partial + decoder.write(chunk)).split("\n");
      partial = lines.pop() ?? "";
      let text = lines.map((line) => `${prefix}${line}\n`).join("");
      if (partial.length > 65_536) {
        text += `${prefix}${partial}\n`;
        partial = "";
      }
      done(null, text);
    },
    flush(done) {
      const rest = partial + decoder.end();
      done(null, rest ? `${prefix}${rest}\n` : "");
    },
  });
}

/** Start `launch` in its own process group, its output appended to `log` (each line after `prefix`, when given). */
function startProcess(launch: Launch, cwd: string, log: fs.WriteStream, sandboxed: boolean, prefix?: string): Running {
  const child = spawn(launch.program, launch.args, { cwd, env: launch.env, detached: true, stdio: ["ignore", "pipe", "pipe", sandboxed ? "pipe" : "ignore"] });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
    child.on("error", (error) => resolve({ code: null, signal: null, error }));
    child.on("close", (code, sig) => resolve({ code, signal: sig }));
  });
  // Piped, so a job that prints faster than the disk takes it waits, instead of its output piling up in this process's memory.
  for (const stream of [child.stdout!, child.stderr!]) (prefix === undefined ? stream : stream.pipe(prefixLines(prefix))).pipe(log, { end: false });
  const info = child.stdio[3] as NodeJS.ReadableStream | null;
  const init = !info
    ? Promise.resolve(child.pid)
    : new Promise<number | undefined>((resolve) => {
        let text = "";
        info.setEncoding("utf8");
        info.on("data", (chunk: string) => (text += chunk));
        info.on("end", () => resolve((JSON.parse(text || "{}") as { "child-pid"?: number })["child-pid"]));
        info.on("error", () => resolve(undefined));
      });
  return { exited, init: init.catch(() => undefined), group: child.pid };
}

/**
 * How a stop reaches the job: SIGTERM to its init (the entrypoint), which
 * passes it to every process of the job and gives the job `grace` seconds
 * before SIGKILL; alekseylearn kills the whole sandbox a few seconds after
 * that, should the init itself hang. A container gets `docker stop`.
 */
function stopper(job: LocalJob, setup: RunSetup, running: Running, grace: number, ctx: Context): { stop: () => void; done: () => void } {
  let killTimer: NodeJS.Timeout | undefined;
  const send = (pid: number | undefined, sig: NodeJS.Signals): void => {
    try {
      if (pid) process.kill(pid, sig);
    } catch {
      // already gone
    }
  };
  const stop = (): void => {
    if (setup.image) {
      // docker stop sends SIGTERM to the container's first process (the entrypoint) and SIGKILL after the grace time.
      spawn("docker", ["stop", "--time", String(grace), containerName(job)], { env: ctx.env as NodeJS.ProcessEnv, stdio: "ignore" }).on("error", () => {});
      return;
    }
    void running.init.then((pid) => send(pid, "SIGTERM"));
    killTimer = setTimeout(
      () => {
        void running.init.then((pid) => send(pid, "SIGKILL"));
        send(running.group && -running.group, "SIGKILL");
      },
      (grace + 5) * 1000,
    );
  };
  return { stop, done: () => clearTimeout(killTimer) };
}

/** Pack what the job left in its /opt/ml into its output path: the model (when it completed or was stopped, as SageMaker uploads a stopped job's model) and its output data. */
async function packOutputs(
  job: LocalJob,
  paths: ReturnType<typeof runPaths>,
  state: JobState,
  ctx: Context,
  doing: { now?: string },
): Promise<Pick<JobRecord, "model" | "output">> {
  const outputs = joinLocation(job.jobOutput, "output");
  const storage = await storageFor(outputs, ctx);
  const pack = async (folder: string, name: string): Promise<string | undefined> => {
    const location = joinLocation(outputs, name);
    // An output folder on this machine gets the archive written in place (atomically), not packed in the run's folder and copied.
    const inPlace = storage.localPath?.(location);
    const archive = inPlace ?? path.join(paths.dir, name);
    const what = name === "model.tar.gz" ? "the model" : "the output data";
    doing.now = `packing ${what}`;
    if ((await (await import("../../storage/archive.js")).packFolder(folder, archive)) === 0) {
      fs.rmSync(archive, { force: true }); // empty folders only (say, the AIP_TENSORBOARD_LOG_DIR nothing wrote to): no archive
      return undefined;
    }
    if (inPlace) return location;
    doing.now = `uploading ${what} to ${location}`;
    // A copy into a folder here is quick and says nothing; an upload to a bucket says where, and how many bytes have gone.
    const label = `Uploading ${what} to ${location}`;
    if (!storage.localPath) ctx.reporter.info(label);
    await storage.upload(archive, location, storage.localPath ? undefined : (done, total) => ctx.reporter.progress?.(label, done, total, "bytes"));
    fs.rmSync(archive, { force: true });
    return location;
  };
  const packed: Pick<JobRecord, "model" | "output"> = {};
  const model = state === "completed" || state === "stopped" ? await pack(path.join(paths.ml, "model"), "model.tar.gz") : undefined;
  if (model) packed.model = model;
  const output = await pack(path.join(paths.ml, "output", "data"), "output.tar.gz");
  if (output) packed.output = output;
  return packed;
}

/**
 * A multi-host job yields one model, algo-1's (SageMaker's first host, rank 0's): what the other hosts left in their model
 * and output data folders is kept in output.tar.gz under hosts/algo-N/model/ and hosts/algo-N/data/.
 */
function keepOtherHosts(hosts: readonly LocalHost[], ml: string): void {
  for (const host of hosts.slice(1)) {
    for (const [from, to] of [
      [path.join(host.ml, "model"), "model"],
      [path.join(host.ml, "output", "data"), "data"],
    ] as const) {
      if (fs.existsSync(from) && fs.readdirSync(from).length)
        fs.cpSync(from, path.join(ml, "output", "data", "hosts", host.name, to), { recursive: true, verbatimSymlinks: true });
    }
  }
}

/** Files the job left in its working folder, named in its log and kept in output.tar.gz under working/. */
function keepLeftBehind(dir: string, before: ReturnType<typeof snapshot>, skip: readonly string[], ml: string, log: fs.WriteStream): void {
  const files = leftBehind(before, snapshot(dir, skip));
  if (!files.length) return;
  keepWorkingFiles(dir, files, path.join(ml, "output", "data"));
  const shown = files.slice(0, 10).join(", ") + (files.length > 10 ? `, … (${files.length - 10} more)` : "");
  log.write(
    `[alekseylearn] warning: the job wrote ${files.length} file(s) into ${dir}: ${shown}. They stay there, and are kept in output.tar.gz under ${WORKING}/ (only /opt/ml/model is the model).\n`,
  );
}

/**
 * In bubblewrap /gcs is the job's own folder: what the job wrote there beyond the folders the Vertex variables name (a
 * script given a gs:// path of its own, which it turned into /gcs/BUCKET/…, as Vertex AI's samples do) reached no
 * bucket. It is kept in output.tar.gz under gcs/, and named, rather than lost with the job's folder.
 */
function keepGcsWrites(gcs: string, ml: string, log: fs.WriteStream): void {
  if (!fs.existsSync(gcs)) return;
  const files = [...snapshot(gcs).keys()].filter((file) => !file.startsWith(`${LOCAL_BUCKET}/`));
  if (!files.length) return;
  keepWorkingFiles(gcs, files, path.join(ml, "output", "data"), "gcs");
  const shown =
    files
      .slice(0, 10)
      .map((file) => `/gcs/${file}`)
      .join(", ") + (files.length > 10 ? `, … (${files.length - 10} more)` : "");
  log.write(
    `[alekseylearn] warning: the job wrote ${files.length} file(s) through /gcs (${shown}): on this machine /gcs is the job's own folder, not Cloud Storage, so they are kept in output.tar.gz under gcs/. $AIP_MODEL_DIR names the job's model folder.\n`,
  );
}

/**
 * Without a sandbox, a script that hard-codes /opt/ml writes into this machine's /opt/ml when this
 * user may write there (root): the files it writes there are named afterwards.
 */
function hostMlWatch(): { report: (log: fs.WriteStream) => void } | undefined {
  try {
    fs.accessSync(fs.existsSync(ML_ROOT) ? ML_ROOT : path.dirname(ML_ROOT), fs.constants.W_OK);
  } catch {
    return undefined;
  }
  const before = fs.existsSync(ML_ROOT) ? snapshot(ML_ROOT) : new Map<string, string>();
  return {
    report: (log) => {
      const written = fs.existsSync(ML_ROOT) ? leftBehind(before, snapshot(ML_ROOT)) : [];
      if (written.length)
        log.write(
          `[alekseylearn] warning: the job wrote into this machine's ${ML_ROOT} (config.sandbox=none): ${written
            .slice(0, 10)
            .map((file) => `${ML_ROOT}/${file}`)
            .join(", ")}. Use $SM_MODEL_DIR and the other SM_* variables, or bubblewrap for a private /opt/ml.\n`,
        );
    },
  };
}

/** How the run ended, in the record's terms. */
function outcome(result: Awaited<Running["exited"]>, stopping: boolean, program: string, ml: string): { state: JobState; reason?: string } {
  if (result.error) return { state: "failed", reason: `could not start ${program}: ${result.error.message}` };
  if (stopping) return { state: "stopped", reason: "stopped by request" };
  if (result.code === 0) return { state: "completed" };
  return {
    state: "failed",
    reason:
      readFailureFile(ml) ??
      (result.code !== null ? `the training process exited with code ${result.code}` : `the training process was killed by ${result.signal}`),
  };
}

/**
 * Run `job` to its end and return its final record; `record` saves what changes as it goes (jobs/ owns the
 * records). Aborting `signal` stops the job (see `stopper`). Never throws for the job's own failures: they end up in the record.
 */
export async function runLocalJob(
  job: LocalJob,
  setup: RunSetup,
  ctx: Context,
  signal: AbortSignal,
  record: (changes: JobChanges) => JobRecord,
): Promise<JobRecord> {
  const paths = runPaths(ctx.stateDir, job.name);
  const log = fs.createWriteStream(paths.log, { flags: "a" });
  let logOpen = true;
  // The log is complete before the record says the job ended, so a follower that sees the end has every line.
  const closeLog = (): Promise<unknown> => (logOpen ? ((logOpen = false), new Promise((resolve) => log.end(resolve))) : Promise.resolve());
  try {
    for (const folder of ["ml", "gcs", "kaggle", "hosts"]) fs.rmSync(path.join(paths.dir, folder), { recursive: true, force: true });
    const sandboxed = setup.bwrap !== undefined || setup.image !== undefined;
    const { settings } = job.spec;
    const names = hostNames(setup.image ? 1 : settings.instance_count);
    // Several hosts, or torchrun's rendezvous even on one: a port of the job's own, so two such jobs run at once.
    const port = names.length > 1 || settings.distribution === "torchrun" ? await freePort() : undefined;
    const hostsFile = path.join(paths.dir, "hosts", "etc-hosts");
    if (names.length > 1) {
      fs.mkdirSync(path.dirname(hostsFile), { recursive: true });
      fs.writeFileSync(hostsFile, hostsFileText(names));
    }
    const hosts: LocalHost[] | undefined =
      names.length > 1 ? names.map((name) => ({ name, ...hostFolders(paths, name), names, port: port!, hostsFile })) : undefined;
    const launches = await Promise.all(
      hosts
        ? hosts.map((host) => launchCommand(job, setup, paths, ctx, host))
        : [launchCommand(job, setup, paths, ctx, port !== undefined ? singleHost(paths, port) : undefined)],
    );
    // The image keeps its own working files (its entrypoint does); a job run here works in its folder, watched from outside.
    const workingDir = setup.image ? undefined : job.spec.artifact.dir;
    // alekseylearn's own state, cache and this job's outputs are not the job's files, wherever they lie.
    const ours = [ctx.stateDir, ctx.cacheDir, ...(schemeOf(job.spec.outputPath) ? [] : [job.spec.outputPath])];
    const before = workingDir ? snapshot(workingDir, ours) : undefined;
    const hostMl = !sandboxed ? hostMlWatch() : undefined;
    const runnings = launches.map((one, index) =>
      startProcess(one, job.spec.artifact.dir, log, setup.bwrap !== undefined, hosts ? `[${hosts[index]!.name}] ` : undefined),
    );
    record({ state: "running", startedAt: new Date().toISOString(), pid: process.pid, logFile: paths.log });
    // The packer (zlib, node-tar) loads while the job runs, neither before it starts nor after it ends (packOutputs reports a
    // failure to load, should there be one).
    import("../../storage/archive.js").then((archive) => archive.loadTar()).catch(() => undefined);

    let stopping = false;
    const stoppers = runnings.map((running) => stopper(job, setup, running, settings.stop_timeout, ctx));
    const onAbort = (): void => {
      stopping = true;
      for (const { stop } of stoppers) stop();
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
    // A host that fails fails the job: the others are stopped, and the reason is the failed host's.
    let failed: number | undefined;
    const results = await Promise.all(
      runnings.map((running, index) =>
        running.exited.then((result) => {
          if (!stopping && failed === undefined && (result.error || result.code !== 0)) {
            failed = index;
            stoppers.forEach(({ stop }, other) => other !== index && stop());
          }
          return result;
        }),
      ),
    );
    for (const { done } of stoppers) done();
    signal.removeEventListener("abort", onAbort);

    if (workingDir && before) keepLeftBehind(workingDir, before, ours, paths.ml, log);
    if (setup.bwrap) keepGcsWrites(path.join(paths.dir, "gcs"), paths.ml, log);
    if (hostMl) hostMl.report(log);
    if (hosts) keepOtherHosts(hosts, paths.ml);
    const at = failed ?? 0;
    const ended = outcome(results[at]!, stopping && failed === undefined, launches[at]!.program, hosts ? hosts[at]!.ml : paths.ml);
    const { state } = ended;
    const reason = hosts && failed !== undefined && ended.reason ? `${hosts[at]!.name}: ${ended.reason}` : ended.reason;
    const doing: { now?: string } = {};
    let packed: Pick<JobRecord, "model" | "output">;
    try {
      packed = await packOutputs(job, paths, state, ctx, doing);
    } catch (err) {
      // Ctrl-C (or `stop`) while the outputs were packed or uploaded: the job is stopped, and says what did not finish.
      if (!signal.aborted && !ctx.signal?.aborted) throw err;
      const why = `stopped while ${doing.now ?? "packing the outputs"}, which did not finish; the job's files are kept in ${paths.ml}`;
      log.write(`[alekseylearn] ${why}\n`);
      await closeLog();
      return record({ state: "stopped", endedAt: new Date().toISOString(), exitCode: results[at]!.code ?? undefined, reason: why });
    }
    const changes: JobChanges = {
      state,
      endedAt: new Date().toISOString(),
      exitCode: results[at]!.code ?? undefined,
      reason,
      ...packed,
    };
    // A finished job's files now live in its output path; a failed or stopped one keeps its folder for inspection.
    if (state === "completed") for (const folder of ["ml", "gcs", "kaggle", "hosts"]) fs.rmSync(path.join(paths.dir, folder), { recursive: true, force: true });
    await closeLog();
    return record(changes);
  } catch (err) {
    if (logOpen) log.write(`\n[alekseylearn] internal error: ${(err as Error).stack ?? err}\n`);
    await closeLog();
    return record({ state: "failed", endedAt: new Date().toISOString(), reason: `alekseylearn failed while running the job: ${(err as Error).message}` });
  }
}
