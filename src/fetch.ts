/**
 * `fetch`: bring a job's model back and unpack it. LOCATION is a job name, an
 * output path (its newest job), or the location of an archive.
 */
import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import { PassThrough } from "node:stream";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Context } from "./context.js";
import { EXIT_INTERRUPTED, failure, isErrnoError, UserError } from "./errors.js";
import { isProcessAlive } from "./exec.js";
import { isFinal, JobStore, type JobRecord } from "./jobs/records.js";
import { nearest } from "./spec/nearest.js";
import { extractArchive } from "./storage/archive.js";
import { storageFor } from "./storage/index.js";
import { normalizeLocation, schemeOf } from "./storage/location.js";
import type { ProgressListener } from "./storage/types.js";
import type { Backend } from "./backends/types.js";

/** Options of `fetch`. */
export interface FetchOptions {
  /** Folder the model's files land in (relative to the context's folder); default: the context's folder. */
  to?: string;
  /** False: keep the archives as they are instead of unpacking them. Default true. */
  extract?: boolean;
  /** Replace files in `to` that differ from the archive's; by default such a conflict is an error. */
  overwrite?: boolean;
  /** Hears about bytes downloaded, per archive. */
  onProgress?: (archive: string) => ProgressListener | undefined;
  /** Let an archive expand to this many bytes; by default one may not grow past 100 times its size once above 1 GiB. */
  maxSize?: number;
}

/** What `fetch` brought back. */
export interface FetchResult {
  /** The job the model came from, when known. */
  job?: string;
  /** The model archive's location; absent when the job left no model (`noModel` says why) but left output data. */
  model?: string;
  /** Why there is no model, when the job ended without one and only its output data came back. */
  noModel?: string;
  /** The archive of /opt/ml/output/data, when the job left one. */
  output?: string;
  /** The folder the files landed in. */
  to: string;
  /** Files written, relative to `to` (archives themselves with extract: false). */
  files: string[];
  /** True when the job was stopped before it ended: the model is what it had saved by then. */
  stopped?: true;
}

const ARCHIVE = /\.(tar\.gz|tgz|tar)$/i;
const MODEL_SUFFIX = "/output/model.tar.gz";

/** What a job left to fetch: its model, its output data, or (a job that ended without a model) its output data and why there is no model. */
interface JobArchives {
  model?: string;
  output?: string;
  stopped?: true;
  noModel?: string;
}

function modelOfJob(job: JobRecord): JobArchives {
  if (!isFinal(job.state)) {
    throw failure(
      `Job ${job.name} is still ${job.state}; it has no model yet.`,
      `Wait for it with \`alekseylearn logs ${job.name} --follow\`, then fetch again.`,
    );
  }
  if (!job.model) {
    const why =
      job.state === "completed" ? (job.reason ?? "it wrote nothing to /opt/ml/model (SM_MODEL_DIR)") : `it ${job.state}${job.reason ? ` (${job.reason})` : ""}`;
    // A job that failed or wrote no model may still have left output data (an executed notebook, its working files): that comes back.
    if (job.output) return { output: job.output, noModel: why };
    throw failure(
      `Job ${job.name} has no model: ${why}.`,
      job.state === "completed" ? "Make the training artifact save its model under /opt/ml/model." : `See why with \`alekseylearn logs ${job.name}\`.`,
    );
  }
  return { model: job.model, ...(job.output ? { output: job.output } : {}), ...(job.state === "stopped" ? { stopped: true as const } : {}) };
}

/** The newest job's model under an output path, found by listing storage. */
async function newestUnder(outputPath: string, store: JobStore, ctx: Context): Promise<{ job?: string; model: string }> {
  const models = (await (await storageFor(outputPath, ctx)).list(outputPath)).filter((object) => object.location.replace(/\\/g, "/").endsWith(MODEL_SUFFIX));
  models.sort((a, b) => b.modified.getTime() - a.modified.getTime());
  const newest = models[0];
  if (!newest) {
    const recorded = store.list().find((job) => job.spec.outputPath === outputPath || job.jobOutput === outputPath);
    if (recorded) modelOfJob(recorded); // explains why the newest recorded job has none
    throw failure(`No model.tar.gz under ${outputPath}.`, "Pass a job name (`alekseylearn jobs` lists them) or the output path a job wrote to.");
  }
  const jobDir = newest.location.slice(0, -MODEL_SUFFIX.length);
  return { job: path.basename(jobDir), model: newest.location };
}

/** Where LOCATION points: a job's archives, or one archive. */
async function resolve(location: string, ctx: Context): Promise<JobArchives & { job?: string }> {
  const store = new JobStore(ctx.stateDir);
  const recorded = !schemeOf(location) && !location.includes("/") ? store.find(location) : undefined;
  if (recorded) {
    // A job left to run may have ended since (and a Slurm job's bucket copy is made when that is seen).
    const { refresh } = await import("./jobs/lifecycle.js");
    const job = isFinal(recorded.state) ? recorded : await refresh(recorded, ctx);
    return { job: job.name, ...modelOfJob(job) };
  }

  // A job this machine did not start, known to a provider by name (SageMaker).
  if (!schemeOf(location) && !location.includes("/") && !fs.existsSync(path.resolve(ctx.cwd, location))) {
    const { lookupElsewhere } = await import("./jobs/lifecycle.js");
    const found = await lookupElsewhere(location, ctx);
    if (found) return { job: found.name, ...modelOfJob(found) };
  }
  const normalized = normalizeLocation(location, ctx.cwd, "fetch location");
  if (ARCHIVE.test(normalized) || (await providerOutputs(normalized))) return { model: normalized };
  const storage = await storageFor(normalized, ctx);
  if (!schemeOf(normalized) && !fs.existsSync(normalized)) {
    const guess = nearest(
      location,
      store.list().map((record) => record.name),
    );
    throw new UserError(
      `${location} is neither a job name nor an existing path.`,
      guess ? `Did you mean the job ${guess}?` : "`alekseylearn jobs` lists the jobs; an output path or an archive's path works too.",
    );
  }
  const found = await newestUnder(normalized, store, ctx);
  const output = found.model.replace(/model\.tar\.gz$/, "output.tar.gz");
  return { ...found, ...((await storage.stat(output)) ? { output } : {}) };
}

/**
 * Bring `archive` to a local file we can read: itself when local, else a
 * download into `scratch` (which an interrupted download resumes from). When
 * `extractTo` is given, a download is unpacked while it comes down, and
 * nothing is placed there until the download has passed its checks.
 */
async function bring(
  archive: string,
  scratch: string,
  options: FetchOptions,
  ctx: Context,
  extractTo?: string,
): Promise<{ local: string; extracted?: string[] }> {
  const storage = await storageFor(archive, ctx);
  if (storage.localPath) {
    const local = storage.localPath(archive);
    if (!fs.existsSync(local)) throw failure(`${archive} does not exist.`);
    return { local };
  }
  const local = path.join(scratch, path.basename(archive));
  const label = `Downloading ${archive}`;
  ctx.reporter.info(label);
  const progress = options.onProgress?.(archive) ?? ((done: number, total: number) => ctx.reporter.progress?.(label, done, total, "bytes"));
  if (!extractTo) {
    await storage.download(archive, local, progress);
    return { local };
  }
  const compressedSize = (await storage.stat(archive))?.size;
  // The download and the extracted files share the disk: what is still to download is not free for the files.
  const downloaded = (fs.statSync(`${local}.partial`, { throwIfNoEntry: false })?.blocks ?? 0) * 512;
  const stream = new PassThrough({ highWaterMark: 4 * 1024 * 1024 });
  const downloading = storage.download(archive, local, progress, stream);
  const extracting = extractArchive(archive, extractTo, {
    overwrite: options.overwrite ?? false,
    from: stream,
    ready: downloading,
    ...(compressedSize !== undefined ? { compressedSize, reserved: Math.max(0, compressedSize - downloaded) } : {}),
    ...(options.maxSize !== undefined ? { maxSize: options.maxSize } : {}),
    ...(ctx.signal ? { signal: ctx.signal } : {}),
  });
  const [download, extraction] = await Promise.allSettled([downloading, extracting]);
  // The download's own failure (a stop, a damaged object) explains more than the unpacking that it cut short.
  if (download.status === "rejected") throw download.reason;
  if (extraction.status === "rejected") throw extraction.reason;
  return { local, extracted: extraction.value };
}

/** The backend that keeps the outputs at `model` itself (kaggle://), if one does. */
async function providerOutputs(model: string): Promise<Backend | undefined> {
  const scheme = schemeOf(model);
  // The storages' own schemes need no backend: a fetch from a file, s3:// or gs:// loads none of the backends' modules.
  if (!scheme || scheme === "s3" || scheme === "gs") return undefined;
  const { allBackends } = await import("./backends/registry.js");
  return (await allBackends()).find((backend) => backend.outputScheme === scheme);
}

/** Fetch a model: download its archive and, unless told not to, extract it safely into `to`. */
export async function fetch(location: string, ctx: Context, options: FetchOptions = {}): Promise<FetchResult> {
  const to = path.resolve(ctx.cwd, options.to ?? ".");
  if (fs.existsSync(to) && !fs.statSync(to).isDirectory())
    throw new UserError(`${options.to ?? to} is a file, not a folder to fetch into.`, "Pass --to a folder (it is created when missing).");
  const source = await resolve(location, ctx);
  // SageMaker uploads what a stopped job saved; so does every backend whose packing alekseylearn does.
  if (source.stopped) ctx.reporter.warn(`Job ${source.job} was stopped before it ended: this is what it had saved in /opt/ml/model when it stopped.`);
  const provider = source.model ? await providerOutputs(source.model) : undefined;
  if (source.model && provider?.fetchOutputs) {
    const files = await provider.fetchOutputs(source.model, to, { overwrite: options.overwrite ?? false }, ctx);
    return { ...(source.job ? { job: source.job } : {}), model: source.model, to, files };
  }
  // The first folder this fetch made, if any: a fetch that fails takes it away again.
  const createdTo = fs.mkdirSync(to, { recursive: true });
  // One fetch at a time into a folder: another one waits here for it, so that neither takes the other's scratch files away.
  const unlock = await lockFolder(to, ctx);
  // The same scratch folder for the same model, so that fetching again after an interruption resumes the download.
  const scratch = path.join(
    to,
    `.alekseylearn-fetch-${createHash("sha256")
      .update(source.model ?? source.output!)
      .digest("hex")
      .slice(0, 12)}`,
  );
  fs.mkdirSync(scratch, { recursive: true });
  let finished = false;
  try {
    const files: string[] = [];
    const archives: Array<[string, string]> = source.model ? [[source.model, "."]] : [];
    if (source.output) archives.push([source.output, "output"]);
    for (const [archive, into] of archives) {
      const extractTo = options.extract === false ? undefined : path.join(to, into);
      const { local, extracted: alreadyExtracted } = await bring(archive, scratch, options, ctx, extractTo);
      if (options.extract === false) {
        const target = path.join(to, path.basename(archive));
        if (fs.existsSync(target) && !options.overwrite) throw failure(`${target} already exists.`, "Pass --overwrite to replace it, or --to another folder.");
        // A download already sits in the scratch folder inside `to`: move it; a local archive is copied.
        if (local.startsWith(scratch + path.sep)) fs.renameSync(local, target);
        else fs.copyFileSync(local, target);
        files.push(path.relative(to, target));
      } else {
        const extracted =
          alreadyExtracted ??
          (await extractArchive(local, extractTo!, {
            overwrite: options.overwrite ?? false,
            ...(options.maxSize !== undefined ? { maxSize: options.maxSize } : {}),
            ...(ctx.signal ? { signal: ctx.signal } : {}),
          }));
        files.push(...extracted.map((file) => (into === "." ? file : `${into}/${file}`)));
      }
    }
    finished = true;
    return {
      ...(source.job ? { job: source.job } : {}),
      ...(source.model ? { model: source.model } : {}),
      ...(source.output ? { output: source.output } : {}),
      ...(source.noModel ? { noModel: source.noModel } : {}),
      to,
      files,
      ...(source.stopped ? { stopped: true as const } : {}),
    };
  } finally {
    // A partial download stays for the next try; everything else goes.
    const keep = !finished && fs.readdirSync(scratch).some((name) => name.endsWith(".partial"));
    if (!keep) fs.rmSync(scratch, { recursive: true, force: true });
    // Removed while still locked, so that no fetch waiting for this one starts in a folder that then disappears.
    if (!finished && !keep && createdTo) fs.rmSync(createdTo, { recursive: true, force: true });
    unlock();
  }
}

/** The lock file that lets one fetch at a time work in a folder. */
const LOCK = ".alekseylearn-fetch.lock";

/** Who holds a lock: its process and host, as written in the lock file ("PID HOST NONCE"). */
function lockHolder(lock: string): { pid: number; host: string; token: string } | undefined {
  try {
    const token = fs.readFileSync(lock, "utf8").trim();
    const [pid, host] = token.split(" ");
    return Number(pid) > 0 ? { pid: Number(pid), host: host ?? "", token } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Take the fetch lock of `to`, waiting while another fetch (another process,
 * or another call in this one) holds it; a lock whose process has died on
 * this host is taken over. The lock file appears whole or not at all (made
 * aside, then hard-linked into place, which fails when one is there). Returns
 * the release.
 */
async function lockFolder(to: string, ctx: Context): Promise<() => void> {
  const lock = path.join(to, LOCK);
  const token = `${process.pid} ${os.hostname()} ${randomBytes(6).toString("hex")}`;
  const aside = `${lock}.${randomBytes(6).toString("hex")}`;
  let told = false;
  for (;;) {
    fs.mkdirSync(to, { recursive: true });
    fs.writeFileSync(aside, `${token}\n`);
    try {
      fs.linkSync(aside, lock);
      return () => {
        if (lockHolder(lock)?.token === token) fs.rmSync(lock, { force: true });
      };
    } catch (err) {
      if (!isErrnoError(err, "EEXIST")) throw err;
    } finally {
      fs.rmSync(aside, { force: true });
    }
    const holder = lockHolder(lock);
    if (holder && holder.host === os.hostname() && !isProcessAlive(holder.pid)) {
      fs.rmSync(lock, { force: true }); // its fetch died; what it left is resumed or replaced by this one
      continue;
    }
    if (!told) ctx.reporter.info(`Waiting for another fetch into ${to}${holder ? ` (process ${holder.pid})` : ""} to finish…`);
    told = true;
    try {
      await sleep(200, undefined, ctx.signal ? { signal: ctx.signal } : undefined);
    } catch {
      throw new UserError(`Stopped while waiting for another fetch into ${to}; nothing was changed.`, undefined, EXIT_INTERRUPTED);
    }
  }
}
