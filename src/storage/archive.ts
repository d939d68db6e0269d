/**
 * Model archives: packing a folder as SageMaker packs /opt/ml/model, and
 * extracting an archive safely. Extraction refuses the whole archive when any
 * entry could land outside the target (`..`, absolute paths, links pointing
 * out, devices), when it would not fit on the target's disk, or when it grows
 * past 100 times its compressed size once above 1 GiB (an archive bomb;
 * `maxSize` allows more), and writes nothing until every entry has been
 * checked. Names are shown with their control characters escaped.
 */
import fs from "node:fs";
import path from "node:path";
import { createHash, randomBytes } from "node:crypto";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import zlib from "node:zlib";
import type * as Tar from "tar";
import { EXIT_INTERRUPTED, failure, isErrnoError, UserError } from "../errors.js";
import { formatBytes, printable } from "../text.js";

/** Tar entry types that extraction accepts; everything else (devices, FIFOs, vendor types) refuses the archive. */
const ALLOWED_TYPES = new Set(["File", "OldFile", "ContiguousFile", "Directory", "SymbolicLink", "Link"]);

/**
 * gzip cannot compress better than about 1032:1, so node-tar's default cap of
 * 1000 refuses real models that are mostly zeros; this still stops zstd bombs.
 */
const MAX_DECOMPRESSION_RATIO = 1100;

/**
 * Bytes per read of a local archive, and per chunk out of gunzip. node-tar
 * inflates on the main thread in 16 KiB chunks, each written to the file on
 * its own (one thread-pool round trip per 16 KiB); Node's own gunzip stream
 * inflates on the thread pool, and its 1 MiB chunks reach the file as 1 MiB
 * writes. Measured on 2 cores, a 1 GiB model: 7 s before, 1.6 s now. Memory
 * stays a few MiB.
 */
const CHUNK = 1024 * 1024;

/** Whether `source` starts with gzip's magic bytes (RFC 1952); the bytes read to see are put back, so the stream is whole for whoever reads it next. */
async function startsWithGzip(source: Readable): Promise<boolean> {
  const head = await new Promise<Buffer | null>((resolve, reject) => {
    const settle = (settled: () => void): void => {
      source.off("readable", attempt);
      source.off("end", ended);
      source.off("error", failed);
      settled();
    };
    // read(2) gives null until two bytes are there, or what is left once the stream has ended.
    const attempt = (): void => {
      const chunk = source.read(2) as Buffer | null;
      if (chunk !== null || source.readableEnded) settle(() => resolve(chunk));
    };
    const ended = (): void => settle(() => resolve(null));
    const failed = (err: Error): void => settle(() => reject(err));
    source.on("readable", attempt);
    source.once("end", ended);
    source.once("error", failed);
  });
  if (head) source.unshift(head);
  return head !== null && head.length === 2 && head[0] === 0x1f && head[1] === 0x8b;
}

/** Above this many bytes, an archive may not grow past `MAX_GROWTH` times its compressed size unless a larger `maxSize` is given. */
const GROWTH_FLOOR = 1024 ** 3;
/** How many times its compressed size an archive may grow once above `GROWTH_FLOOR` (real models compress a few times, not a hundred). */
const MAX_GROWTH = 100;

/**
 * node-tar, loaded on first use: a command that packs or unpacks nothing (most of them) does not pay for loading it. A
 * local run starts loading it while its job runs (`loadTar` without waiting), so packing the model costs it nothing then.
 */
export function loadTar(): Promise<typeof Tar> {
  return import("tar");
}

/** Every entry under `dir` (files, links and folders), relative, with forward slashes, sorted. Links are not followed. */
function walk(dir: string, under = ""): string[] {
  const names: string[] = [];
  for (const dirent of fs.readdirSync(path.join(dir, under), { withFileTypes: true })) {
    const name = under ? `${under}/${dirent.name}` : dirent.name;
    names.push(name);
    if (dirent.isDirectory()) names.push(...walk(dir, name));
  }
  return names.sort();
}

/**
 * Up to this many bytes of files, a folder is packed in one synchronous pass: a small model (most local runs') is packed in
 * about a millisecond instead of ~10 ms of reads, gzip steps and writes each handed to the thread pool and back, and the
 * event loop waits at most a few tens of milliseconds for it. A larger folder is streamed, as before.
 */
const PACK_AT_ONCE_BYTES = 4 * 1024 * 1024;

/** Pack the contents of `dir` (entries named relative to it, no `./`) as a gzip tar at `archive`, atomically; returns the number of regular files packed, and an empty folder writes nothing. */
export async function packFolder(dir: string, archive: string): Promise<number> {
  const entries = fs.readdirSync(dir).sort();
  if (entries.length === 0) return 0;
  const files = walk(dir)
    .map((entry) => fs.lstatSync(path.join(dir, entry)))
    .filter((stat) => stat.isFile());
  const bytes = files.reduce((sum, stat) => sum + stat.size, 0);
  const tmp = `${archive}.partial-${randomBytes(4).toString("hex")}`;
  const tar = await loadTar();
  fs.mkdirSync(path.dirname(archive), { recursive: true });
  try {
    const options = { gzip: true, cwd: dir, portable: true, file: tmp };
    if (bytes <= PACK_AT_ONCE_BYTES) tar.c({ ...options, sync: true }, entries);
    else await tar.c(options, entries);
    fs.renameSync(tmp, archive);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  return files.length;
}

/** A tar path as segments, without empty and `.` segments. Backslashes count as separators, as on Windows. */
function segmentsOf(name: string): string[] {
  return name
    .replace(/\\/g, "/")
    .split("/")
    .filter((segment) => segment !== "" && segment !== ".");
}

function isAbsolute(name: string): boolean {
  return /^[\\/]/.test(name) || /^[a-zA-Z]:/.test(name);
}

/** How a path is compared with the links seen so far: case and Unicode form ignored, as some file systems do. */
function linkKey(segments: readonly string[]): string {
  return segments.join("/").normalize("NFC").toLowerCase();
}

/** The earlier symlink that `segments` would pass through (any segment but the last), if any. */
function throughLink(segments: readonly string[], symlinks: ReadonlySet<string>): string | undefined {
  for (let i = 1; i < segments.length; i++) {
    if (symlinks.has(linkKey(segments.slice(0, i)))) return segments.slice(0, i).join("/");
  }
  return undefined;
}

/**
 * Why a symlink at `segments` pointing to `target` is unsafe, or undefined.
 * `..` is allowed only at the start of the target: there it climbs through
 * the link's own folders, which are real ones, while after a name it could
 * climb out of a folder reached through another link (`s -> .`, `t -> s/..`).
 */
function symlinkRefusal(segments: readonly string[], target: string): string | undefined {
  if (isAbsolute(target)) return `is a link pointing outside the target folder (${printable(target)})`;
  const parts = segmentsOf(target);
  const firstName = parts.findIndex((part) => part !== "..");
  if (firstName >= 0 && parts.slice(firstName).includes(".."))
    return `is a link whose target climbs out of a folder (${printable(target)}), which could lead outside the target folder through another link`;
  const climbs = firstName < 0 ? parts.length : firstName;
  if (climbs > segments.length - 1) return `is a link pointing outside the target folder (${printable(target)})`;
  return undefined;
}

/** Why an entry may not be extracted, or undefined when it may. `symlinks` holds the keys of the link entries seen so far. */
function refusal(entry: Tar.ReadEntry, symlinks: Set<string>): string | undefined {
  const name = printable(entry.path);
  if (!ALLOWED_TYPES.has(entry.type)) return `entry "${name}" is a ${entry.type}, which a model archive has no business holding`;
  if (isAbsolute(entry.path)) return `entry "${name}" has an absolute path`;
  const segments = segmentsOf(entry.path);
  if (segments.includes("..")) return `entry "${name}" would land outside the target folder`;
  if (segments.length === 0 && entry.type !== "Directory") return `entry "${name}" has no file name`;
  const via = throughLink(segments, symlinks);
  if (via) return `entry "${name}" goes through the link ${via}`;

  const link = entry.linkpath ?? "";
  if (entry.type === "SymbolicLink") {
    const why = symlinkRefusal(segments, link);
    if (why) return `entry "${name}" ${why}`;
    symlinks.add(linkKey(segments));
  }
  if (entry.type === "Link") {
    const target = segmentsOf(link);
    if (isAbsolute(link) || target.includes("..")) return `entry "${name}" is a hard link to ${printable(link)}, outside the target folder`;
    const linkVia = throughLink(target, symlinks);
    if (linkVia) return `entry "${name}" is a hard link through the link ${linkVia}`;
  }
  return undefined;
}

/** Drop setuid, setgid and sticky bits, and keep what is extracted readable and writable by the user. */
function tameMode(entry: Tar.ReadEntry): void {
  if (entry.mode === undefined) return;
  entry.mode = (entry.mode & 0o777) | (entry.type === "Directory" ? 0o700 : 0o600);
}

/** How large an extraction may grow. */
interface SizeLimits {
  /** Bytes free on the target's disk. */
  free: number;
  /** The archive's own size, when known. */
  compressed?: number;
  /** What the user allows (`--max-size`); when set, it replaces the growth rule. */
  maxSize?: number;
}

/** A refusal of the archive: what is wrong with it, and what to do. */
interface Refusal {
  message: string;
  hint: string;
}

const MALICIOUS_HINT = "The archive may be malicious; nothing was extracted.";

/** Why an archive whose regular files add up to `total` bytes (so far) may not be extracted into `dir`, or undefined. */
function sizeRefusal(total: number, limits: SizeLimits, dir: string): Refusal | undefined {
  if (limits.maxSize !== undefined) {
    if (total > limits.maxSize)
      return {
        message: `it expands to more than ${formatBytes(total)}, past --max-size ${formatBytes(limits.maxSize)}`,
        hint: "Pass a larger --max-size if you trust the archive; nothing was extracted.",
      };
  } else if (limits.compressed !== undefined && total > GROWTH_FLOOR && total > MAX_GROWTH * limits.compressed) {
    return {
      message: `it expands to more than ${formatBytes(total)} from ${formatBytes(limits.compressed)}, over ${MAX_GROWTH} times its size (an archive bomb, or a model of mostly zeros)`,
      hint: `Pass --max-size SIZE (for example --max-size ${Math.ceil(total / 1024 ** 3) * 2}G) to allow more if you trust the archive; nothing was extracted.`,
    };
  }
  // The archive's own limits are named first: a bomb is a bomb on any disk, and the answer does not depend on the free space.
  if (total > limits.free) {
    return {
      message: `it expands to more than ${formatBytes(total)}, and the disk of ${dir} has ${formatBytes(limits.free)} free`,
      hint: "Free some space there, or fetch --to a folder on another disk; nothing was extracted.",
    };
  }
  return undefined;
}

/** The error for an extraction stopped by the user (Ctrl-C): exit 130, and nothing of it is left. */
function stopped(archive: string): UserError {
  return new UserError(`Stopped while extracting ${archive}; nothing was extracted.`, undefined, EXIT_INTERRUPTED);
}

/** Unpack `archive` into the empty folder `staging`; throws a refusal naming the first unsafe entry (or the size it would reach), or the reason the archive cannot be read. */
async function unpackChecked(archive: string, staging: string, limits: SizeLimits, target: string, from?: Readable, signal?: AbortSignal): Promise<void> {
  const refusals: Refusal[] = [];
  const symlinks = new Set<string>();
  const checked = new WeakSet<object>();
  let total = 0;
  const source = from ?? fs.createReadStream(archive, { highWaterMark: CHUNK });
  // A stop ends the reading; the unpacker then fails on its cut input, and the caller removes what was made.
  const onAbort = (): void => void source.destroy(Object.assign(new Error("stopped"), { name: "AbortError" }));
  if (signal?.aborted) onAbort();
  else signal?.addEventListener("abort", onAbort, { once: true });
  try {
    // A gzip archive is inflated here, not by node-tar (see CHUNK). node-tar still reads zstd and brotli itself, under its
    // decompression ratio; gzip cannot exceed that ratio (see MAX_DECOMPRESSION_RATIO), and the size rules below apply to every archive.
    const gunzip = (await startsWithGzip(source)) ? zlib.createGunzip({ chunkSize: CHUNK }) : undefined;
    const tar = await loadTar();
    await new Promise<void>((resolve, reject) => {
      const unpack = new tar.Unpack({
        cwd: staging,
        strict: true,
        preserveOwner: false,
        maxDecompressionRatio: MAX_DECOMPRESSION_RATIO,
        filter: (_path, entry) => {
          checked.add(entry);
          if (refusals.length) return false;
          const readEntry = entry as Tar.ReadEntry;
          const why = refusal(readEntry, symlinks);
          if (why) refusals.push({ message: why, hint: MALICIOUS_HINT });
          else {
            // Sizes are known from each header before its bytes come, so a bomb is refused before it is written.
            if (readEntry.type !== "Directory" && readEntry.type !== "SymbolicLink" && readEntry.type !== "Link") total += readEntry.size ?? 0;
            const tooBig = sizeRefusal(total, limits, target);
            if (tooBig) refusals.push(tooBig);
            else tameMode(readEntry);
          }
          if (refusals.length) {
            // Nothing more will be written: stop reading (a bomb is not inflated to the end), and let the unpacker finish.
            if (gunzip) {
              gunzip.unpipe(unpack);
              source.unpipe(gunzip);
              gunzip.destroy();
            } else source.unpipe(unpack);
            if (!from) (source as fs.ReadStream).destroy();
            setImmediate(() => unpack.end());
          }
          return refusals.length === 0;
        },
        onwarn: (_code, message) => refusals.push({ message: printable(String(message)), hint: MALICIOUS_HINT }),
      });
      // node-tar skips entries of unknown types without calling `filter`; a model archive has none.
      unpack.on("ignoredEntry", (entry: Tar.ReadEntry) => {
        if (!checked.has(entry)) refusals.push({ message: `entry "${printable(entry.path)}" is of an unknown type (${entry.type})`, hint: MALICIOUS_HINT });
      });
      unpack.on("error", reject);
      unpack.on("close", resolve);
      source.on("error", reject);
      if (gunzip) source.pipe(gunzip.on("error", reject)).pipe(unpack);
      else source.pipe(unpack);
    });
  } catch (err) {
    if (signal?.aborted) throw stopped(archive);
    // A refusal found before the error explains it better than the error does.
    if (!refusals.length) throw unreadable(archive, staging, err);
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
  if (signal?.aborted) throw stopped(archive);
  const first = refusals[0];
  if (first) throw failure(`Refusing to extract ${archive}: ${first.message}.`, first.hint);
}

/** The failure for an extraction error: the archive's fault, unless the file system failed while writing. */
function unreadable(archive: string, staging: string, err: unknown): Error {
  const message = err instanceof Error ? err.message : String(err);
  if (isErrnoError(err) && err.syscall && err.path !== archive) {
    return failure(`Could not extract ${archive} into ${path.dirname(staging)}: ${message}.`, "Nothing was extracted.");
  }
  return failure(`${archive} is not a readable .tar.gz archive: ${message}.`, "Fetch it again; nothing was extracted.");
}

async function sameContent(a: string, b: string): Promise<boolean> {
  const [statA, statB] = [fs.lstatSync(a), fs.lstatSync(b)];
  if (statA.isSymbolicLink() && statB.isSymbolicLink()) return fs.readlinkSync(a) === fs.readlinkSync(b);
  if (!statA.isFile() || !statB.isFile() || statA.size !== statB.size) return false;
  const digest = async (file: string): Promise<string> => {
    const hash = createHash("sha256");
    await pipeline(fs.createReadStream(file), hash);
    return hash.digest("hex");
  };
  return (await digest(a)) === (await digest(b));
}

function listSome(names: readonly string[]): string {
  const shown = names.map(printable);
  return shown.length > 5 ? `${shown.slice(0, 5).join(", ")} and ${shown.length - 5} more` : shown.join(", ");
}

/** What to do with `entry` of `staging`: move it into `toDir`, leave what is there (the same content, or a folder to merge into), or stop. */
async function placement(staging: string, toDir: string, entry: string, overwrite: boolean): Promise<"move" | "skip" | "conflict"> {
  const from = fs.lstatSync(path.join(staging, entry));
  const existing = fs.lstatSync(path.join(toDir, entry), { throwIfNoEntry: false });
  if (!existing) return "move";
  // A folder merges into a folder; a folder and anything else (a link to a folder included) cannot be reconciled.
  if (from.isDirectory() || existing.isDirectory()) return from.isDirectory() && existing.isDirectory() ? "skip" : "conflict";
  if (await sameContent(path.join(staging, entry), path.join(toDir, entry))) return "skip";
  return overwrite ? "move" : "conflict";
}

/**
 * Move everything under `staging` into `toDir`, keeping relative paths, once
 * it is certain nothing will be lost: a file in `toDir` with other content is
 * a conflict (unless `overwrite`), and so is a file where a folder must go or
 * the other way round. Identical files are left as they are. Returns the
 * regular files placed (relative, sorted). `what` starts the conflict message
 * ("Extracting x").
 */
export async function placeFiles(staging: string, toDir: string, what: string, overwrite: boolean): Promise<string[]> {
  const entries = walk(staging);
  const conflicts: string[] = [];
  const moves: string[] = [];
  for (const entry of entries) {
    // Below a conflicting folder, `toDir` holds a file or a link, and looking inside it would fail or follow the link.
    if (conflicts.some((conflict) => entry.startsWith(`${conflict}/`))) continue;
    const verdict = await placement(staging, toDir, entry, overwrite);
    if (verdict === "conflict") conflicts.push(entry);
    if (verdict === "move") moves.push(entry);
  }
  if (conflicts.length) {
    throw failure(
      `${what} would replace ${conflicts.length === 1 ? "a file" : "files"} in ${toDir} that differ${conflicts.length === 1 ? "s" : ""}: ${listSome(conflicts)}.`,
      "Pass --overwrite to replace them, or --to another folder.",
    );
  }
  const files = entries.filter((entry) => fs.lstatSync(path.join(staging, entry)).isFile());
  for (const entry of moves) {
    const from = path.join(staging, entry);
    const to = path.join(toDir, entry);
    // Folders are made rather than moved, so that their contents go through the same checks; parents come first in `entries`.
    if (fs.lstatSync(from).isDirectory()) fs.mkdirSync(to, { recursive: true });
    else fs.renameSync(from, to);
  }
  return files;
}

/** Make `toDir` and return the first folder this created (to remove on failure), or undefined when it existed. */
function makeTarget(toDir: string): string | undefined {
  try {
    return fs.mkdirSync(toDir, { recursive: true });
  } catch (err) {
    if (isErrnoError(err, "EEXIST") || isErrnoError(err, "ENOTDIR"))
      throw failure(`Cannot extract into ${toDir}: it is not a folder.`, "Pass --to another folder.");
    throw err;
  }
}

/** How to extract. */
export interface ExtractOptions {
  /** Replace files in the target whose content differs. */
  overwrite?: boolean;
  /** Read the archive from this stream (a download in progress) instead of from the file `archive` names. */
  from?: Readable;
  /** Nothing is placed in the target until this settles fine (the download's own check). */
  ready?: Promise<unknown>;
  /** The archive's size in bytes, for the growth rule, when it is read from `from` (a file's size is read from the file). */
  compressedSize?: number;
  /** Allow the extracted files to add up to this many bytes, instead of 100 times the archive's size once above 1 GiB (`--max-size`). */
  maxSize?: number;
  /** Bytes of the target's disk already promised elsewhere (the rest of a download into the same disk): not free for the files. */
  reserved?: number;
  /** Stops the extraction (Ctrl-C): it then fails with exit 130 and leaves nothing behind. */
  signal?: AbortSignal;
}

/** Safely extract the .tar.gz (or .tar) `archive` into `toDir` and return the regular files placed (relative, sorted); nothing is written when an entry is unsafe, the archive is too large (see `ExtractOptions.maxSize`) or unreadable, or a file in `toDir` would get other content without `overwrite`. */
export async function extractArchive(archive: string, toDir: string, options: ExtractOptions = {}): Promise<string[]> {
  const created = makeTarget(toDir);
  // Staging inside the target keeps the final renames on one file system.
  const staging = fs.mkdtempSync(path.join(toDir, ".alekseylearn-extract-"));
  try {
    const { bavail, bsize } = fs.statfsSync(staging);
    const compressed = options.from ? options.compressedSize : fs.statSync(archive).size;
    const limits: SizeLimits = {
      free: Math.max(0, bavail * bsize - (options.reserved ?? 0)),
      ...(compressed !== undefined ? { compressed } : {}),
      ...(options.maxSize !== undefined ? { maxSize: options.maxSize } : {}),
    };
    await unpackChecked(archive, staging, limits, toDir, options.from, options.signal);
    await options.ready;
    if (options.signal?.aborted) throw stopped(archive);
    return await placeFiles(staging, toDir, `Extracting ${path.basename(archive)}`, options.overwrite ?? false);
  } catch (err) {
    options.from?.destroy(); // a download feeding us stops waiting for a reader that is gone
    if (created) fs.rmSync(created, { recursive: true, force: true });
    throw err;
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}
