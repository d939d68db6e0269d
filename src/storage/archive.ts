/**
 * Model archives: packing a folder as SageMaker packs /opt/ml/model, and
 * extracting an archive safely. Extraction refuses the whole archive when any
 * entry could land outside the target (`..`, absolute paths, links pointing
 * out, devices), and writes nothing until every entry has been checked.
 */
import fs from "node:fs";
import path from "node:path";
import { createHash, randomBytes } from "node:crypto";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import * as tar from "tar";
import { failure, isErrnoError } from "../errors.js";

/** Tar entry types that extraction accepts; everything else (devices, FIFOs, vendor types) refuses the archive. */
const ALLOWED_TYPES = new Set(["File", "OldFile", "ContiguousFile", "Directory", "SymbolicLink", "Link"]);

/**
 * gzip cannot compress better than about 1032:1, so node-tar's default cap of
 * 1000 refuses real models that are mostly zeros; this still stops zstd bombs.
 */
const MAX_DECOMPRESSION_RATIO = 1100;

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

/** Pack the contents of `dir` (entries named relative to it, no `./`) as a gzip tar at `archive`, atomically; returns the number of regular files packed, and an empty folder writes nothing. */
export async function packFolder(dir: string, archive: string): Promise<number> {
  const entries = fs.readdirSync(dir).sort();
  if (entries.length === 0) return 0;
  const tmp = `${archive}.partial-${randomBytes(4).toString("hex")}`;
  try {
    await tar.c({ gzip: true, cwd: dir, portable: true, file: tmp }, entries);
    fs.renameSync(tmp, archive);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  return walk(dir).filter((entry) => fs.lstatSync(path.join(dir, entry)).isFile()).length;
}

/** A tar path as segments, without empty and `.` segments. Backslashes count as separators, as on Windows. */
function segmentsOf(name: string): string[] {
  return name.replace(/\\/g, "/").split("/").filter((segment) => segment !== "" && segment !== ".");
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
  if (isAbsolute(target)) return `is a link pointing outside the target folder (${target})`;
  const parts = segmentsOf(target);
  const firstName = parts.findIndex((part) => part !== "..");
  if (firstName >= 0 && parts.slice(firstName).includes("..")) return `is a link whose target climbs out of a folder (${target}), which could lead outside the target folder through another link`;
  const climbs = firstName < 0 ? parts.length : firstName;
  if (climbs > segments.length - 1) return `is a link pointing outside the target folder (${target})`;
  return undefined;
}

/** Why an entry may not be extracted, or undefined when it may. `symlinks` holds the keys of the link entries seen so far. */
function refusal(entry: tar.ReadEntry, symlinks: Set<string>): string | undefined {
  const name = entry.path;
  if (!ALLOWED_TYPES.has(entry.type)) return `entry "${name}" is a ${entry.type}, which a model archive has no business holding`;
  if (isAbsolute(name)) return `entry "${name}" has an absolute path`;
  const segments = segmentsOf(name);
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
    if (isAbsolute(link) || target.includes("..")) return `entry "${name}" is a hard link to ${link}, outside the target folder`;
    const linkVia = throughLink(target, symlinks);
    if (linkVia) return `entry "${name}" is a hard link through the link ${linkVia}`;
  }
  return undefined;
}

/** Drop setuid, setgid and sticky bits, and keep what is extracted readable and writable by the user. */
function tameMode(entry: tar.ReadEntry): void {
  if (entry.mode === undefined) return;
  entry.mode = (entry.mode & 0o777) | (entry.type === "Directory" ? 0o700 : 0o600);
}

/** Unpack `archive` into the empty folder `staging`; throws a refusal naming the first unsafe entry, or the reason the archive cannot be read. */
async function unpackChecked(archive: string, staging: string, from?: Readable): Promise<void> {
  const refusals: string[] = [];
  const symlinks = new Set<string>();
  const checked = new WeakSet<object>();
  try {
    await new Promise<void>((resolve, reject) => {
      const unpack = new tar.Unpack({
        cwd: staging,
        strict: true,
        preserveOwner: false,
        maxDecompressionRatio: MAX_DECOMPRESSION_RATIO,
        filter: (_path, entry) => {
          checked.add(entry);
          if (refusals.length) return false;
          const why = refusal(entry as tar.ReadEntry, symlinks);
          if (why) refusals.push(why);
          else tameMode(entry as tar.ReadEntry);
          return why === undefined;
        },
        onwarn: (_code, message) => refusals.push(String(message)),
      });
      // node-tar skips entries of unknown types without calling `filter`; a model archive has none.
      unpack.on("ignoredEntry", (entry: tar.ReadEntry) => {
        if (!checked.has(entry)) refusals.push(`entry "${entry.path}" is of an unknown type (${entry.type})`);
      });
      unpack.on("error", reject);
      unpack.on("close", resolve);
      (from ?? fs.createReadStream(archive)).on("error", reject).pipe(unpack);
    });
  } catch (err) {
    // A refusal found before the error explains it better than the error does.
    if (!refusals.length) throw unreadable(archive, staging, err);
  }
  if (refusals.length) throw failure(`Refusing to extract ${archive}: ${refusals[0]}.`, "The archive may be malicious; nothing was extracted.");
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
  return names.length > 5 ? `${names.slice(0, 5).join(", ")} and ${names.length - 5} more` : names.join(", ");
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
    throw failure(`${what} would replace ${conflicts.length === 1 ? "a file" : "files"} in ${toDir} that differ${conflicts.length === 1 ? "s" : ""}: ${listSome(conflicts)}.`, "Pass --overwrite to replace them, or --to another folder.");
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
    if (isErrnoError(err, "EEXIST") || isErrnoError(err, "ENOTDIR")) throw failure(`Cannot extract into ${toDir}: it is not a folder.`, "Pass --to another folder.");
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
}

/** Safely extract the .tar.gz (or .tar) `archive` into `toDir` and return the regular files placed (relative, sorted); nothing is written when an entry is unsafe, the archive is unreadable, or a file in `toDir` would get other content without `overwrite`. */
export async function extractArchive(archive: string, toDir: string, options: ExtractOptions = {}): Promise<string[]> {
  const created = makeTarget(toDir);
  // Staging inside the target keeps the final renames on one file system.
  const staging = fs.mkdtempSync(path.join(toDir, ".alekseylearn-extract-"));
  try {
    await unpackChecked(archive, staging, options.from);
    await options.ready;
    return await placeFiles(staging, toDir, `Extracting ${path.basename(archive)}`, options.overwrite ?? false);
  } catch (err) {
    options.from?.destroy(); // a download feeding us stops waiting for a reader that is gone
    if (created) fs.rmSync(created, { recursive: true, force: true });
    throw err;
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}
