/**
 * Model archives: packing a folder as SageMaker packs /opt/ml/model, and
 * extracting an archive safely. Extraction refuses the whole archive when any
 * entry could land outside the target (`..`, absolute paths, links pointing
 * out, devices), and writes nothing until every entry has been checked.
 */
import fs from "node:fs";
import path from "node:path";
import { createHash, randomBytes } from "node:crypto";
import { pipeline } from "node:stream/promises";
import * as tar from "tar";
import { failure } from "../errors.js";

/** Tar entry types that extraction accepts; everything else (devices, FIFOs) refuses the archive. Pax headers are metadata. */
const ALLOWED_TYPES = new Set(["File", "OldFile", "ContiguousFile", "Directory", "SymbolicLink", "Link"]);

/**
 * Pack the contents of `dir` (entries named relative to it, no leading `./`)
 * as a gzip tar at `archive`, atomically. Returns the number of files packed;
 * an empty folder writes nothing and returns 0.
 */
export async function packFolder(dir: string, archive: string): Promise<number> {
  const entries = fs.readdirSync(dir).sort();
  if (entries.length === 0) return 0;
  const files = (fs.readdirSync(dir, { recursive: true }) as string[]).filter((entry) => !fs.lstatSync(path.join(dir, entry)).isDirectory()).length;
  const tmp = `${archive}.partial-${randomBytes(4).toString("hex")}`;
  try {
    await tar.c({ gzip: true, cwd: dir, portable: true, file: tmp }, entries);
    fs.renameSync(tmp, archive);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  return files;
}

/** Why an entry may not be extracted, or undefined when it may. `symlinks` holds the link entries seen so far. */
function refusal(entry: tar.ReadEntry, symlinks: Set<string>): string | undefined {
  const name = entry.path.replace(/\\/g, "/");
  if (entry.type.endsWith("Header") || entry.type === "ExtendedHeader" || entry.type === "GlobalExtendedHeader") return undefined;
  if (!ALLOWED_TYPES.has(entry.type)) return `entry "${name}" is a ${entry.type}, which a model archive has no business holding`;
  if (name.startsWith("/") || /^[a-zA-Z]:/.test(name)) return `entry "${name}" has an absolute path`;
  const segments = name.split("/").filter((segment) => segment !== "" && segment !== ".");
  if (segments.includes("..")) return `entry "${name}" would land outside the target folder`;
  for (let i = 1; i < segments.length; i++) {
    if (symlinks.has(segments.slice(0, i).join("/"))) return `entry "${name}" goes through the link ${segments.slice(0, i).join("/")}`;
  }
  const link = (entry.linkpath ?? "").replace(/\\/g, "/");
  if (entry.type === "SymbolicLink") {
    const target = path.posix.normalize(path.posix.join(path.posix.dirname(segments.join("/")), link));
    if (link.startsWith("/") || target === ".." || target.startsWith("../")) return `entry "${name}" is a link pointing outside the target folder (${link})`;
    symlinks.add(segments.join("/"));
  }
  if (entry.type === "Link" && (link.startsWith("/") || link.split("/").includes(".."))) return `entry "${name}" is a hard link to ${link}, outside the target folder`;
  return undefined;
}

async function sameBytes(a: string, b: string): Promise<boolean> {
  if (fs.statSync(a).size !== fs.statSync(b).size) return false;
  const digest = async (file: string): Promise<string> => {
    const hash = createHash("sha256");
    await pipeline(fs.createReadStream(file), hash);
    return hash.digest("hex");
  };
  return (await digest(a)) === (await digest(b));
}

/** Every non-folder entry under `dir`, relative, with forward slashes, sorted. */
function walk(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[])
    .filter((entry) => !fs.lstatSync(path.join(dir, entry)).isDirectory())
    .map((entry) => entry.split(path.sep).join("/"))
    .sort();
}

function listSome(names: string[]): string {
  return names.length > 5 ? `${names.slice(0, 5).join(", ")} and ${names.length - 5} more` : names.join(", ");
}

/**
 * Extract the .tar.gz (or .tar) `archive` into `toDir` and return the files
 * written (relative, sorted). Nothing is written when any entry is unsafe, the
 * archive is unreadable, or a file in `toDir` would be replaced by different
 * content (unless `overwrite`).
 */
export async function extractArchive(archive: string, toDir: string, options: { overwrite?: boolean } = {}): Promise<string[]> {
  const existed = fs.existsSync(toDir);
  fs.mkdirSync(toDir, { recursive: true });
  const staging = fs.mkdtempSync(path.join(toDir, ".alekseylearn-extract-"));
  const undo = (): void => {
    fs.rmSync(staging, { recursive: true, force: true });
    if (!existed) fs.rmSync(toDir, { recursive: true, force: true });
  };
  try {
    const refusals: string[] = [];
    const warnings: string[] = [];
    const symlinks = new Set<string>();
    try {
      await tar.x({
        file: archive,
        cwd: staging,
        strict: true,
        preserveOwner: false,
        filter: (_path, entry) => {
          const why = refusal(entry as tar.ReadEntry, symlinks);
          if (why) refusals.push(why);
          return why === undefined && refusals.length === 0;
        },
        onwarn: (_code, message) => warnings.push(String(message)),
      });
    } catch (err) {
      throw failure(`${archive} is not a readable .tar.gz archive: ${(err as Error).message}.`, "Fetch it again; nothing was extracted.");
    }
    if (refusals.length) throw failure(`Refusing to extract ${archive}: ${refusals[0]}.`, "The archive may be malicious; nothing was extracted.");
    if (warnings.length) throw failure(`Refusing to extract ${archive}: ${warnings[0]}.`, "Nothing was extracted.");

    const entries = walk(staging);
    const conflicts: string[] = [];
    const moves: string[] = [];
    for (const entry of entries) {
      const from = path.join(staging, entry);
      const to = path.join(toDir, entry);
      const existing = fs.lstatSync(to, { throwIfNoEntry: false });
      if (!existing) moves.push(entry);
      else if (existing.isFile() && fs.lstatSync(from).isFile() && (await sameBytes(from, to))) continue;
      else if (options.overwrite && !existing.isDirectory()) moves.push(entry);
      else conflicts.push(entry);
    }
    // A folder in the archive where the target has a file (or the reverse) is a conflict too.
    for (const entry of entries) {
      const parts = entry.split("/");
      for (let i = 1; i < parts.length; i++) {
        const stat = fs.lstatSync(path.join(toDir, ...parts.slice(0, i)), { throwIfNoEntry: false });
        if (stat && !stat.isDirectory()) conflicts.push(parts.slice(0, i).join("/"));
      }
    }
    if (conflicts.length) {
      const names = [...new Set(conflicts)];
      throw failure(`Extracting ${path.basename(archive)} would replace ${names.length === 1 ? "a file" : "files"} in ${toDir} that differ${names.length === 1 ? "s" : ""}: ${listSome(names)}.`, "Pass --overwrite to replace them, or --to another folder.");
    }
    for (const entry of moves) {
      const to = path.join(toDir, entry);
      fs.mkdirSync(path.dirname(to), { recursive: true });
      fs.renameSync(path.join(staging, entry), to);
    }
    for (const dir of (fs.readdirSync(staging, { recursive: true }) as string[]).filter((e) => fs.lstatSync(path.join(staging, e)).isDirectory())) {
      fs.mkdirSync(path.join(toDir, dir), { recursive: true }); // empty folders the archive holds
    }
    fs.rmSync(staging, { recursive: true, force: true });
    return entries.filter((entry) => fs.lstatSync(path.join(toDir, entry)).isFile());
  } catch (err) {
    undo();
    throw err;
  }
}
