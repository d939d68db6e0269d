/**
 * What of a project folder ships to a place that is not this machine (the
 * SageMaker image's build context, the Kaggle code dataset, `fit --dry-run`):
 * one rule set, applied before anything is packed.
 *
 * - Never code: version control, caches, virtual environments, outputs (bundle.ts).
 * - `.dockerignore` (read as Docker reads it), and `.gitignore` when the folder
 *   is in a git work tree (asked of `git` itself, so nested files, `.git/info/exclude`
 *   and the user's global excludes count exactly as git counts them).
 * - `.alekseylearnignore` (Docker's syntax) has the last word over both: a
 *   pattern keeps a file out, a `!` pattern brings it back.
 * - Secrets never ship, whatever the ignore files say, unless a `!` pattern of
 *   `.alekseylearnignore` names them: `.env*`, `.aws/`, `.ssh/`, `.gnupg/`,
 *   `.netrc`, `.pypirc`, `.docker/config.json`, `kaggle.json`, `*.pem`, `*.key`,
 *   SSH private keys (`id_rsa`, `id_ed25519`, … but not `.pub`), `credentials*.json`,
 *   and any text file under 1 MiB holding a PEM private key, a cloud
 *   service-account key or an AWS secret key.
 * - Requirements files ship without their lines that hold a credential in a URL
 *   (`--extra-index-url https://user:TOKEN@…`).
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { failure, UserError } from "../errors.js";
import { loadTar } from "../storage/archive.js";
import { printable } from "../text.js";
import { hasUrlCredentials } from "../redact.js";
import { isCode } from "./bundle.js";
import { parseDockerignore } from "./dockerignore.js";
import { byCodePoint } from "../order.js";

type Env = Readonly<Record<string, string | undefined>>;

/** The user's own ignore file for what ships, in `.dockerignore`'s syntax. */
export const SHIP_IGNORE_FILE = ".alekseylearnignore";

/** Files larger than this are not read to look for keys (a key file is small). */
const CONTENT_SCAN_LIMIT = 1024 * 1024;

/** What of a project folder ships. */
export interface Shipment {
  /** The project folder (absolute). */
  dir: string;
  /** Files and links that ship, relative with `/`, sorted. */
  files: string[];
  /** Folders that ship (holding something that ships, or empty and not excluded), relative, sorted. */
  folders: string[];
  /** Secrets kept out by the built-in refusal list that the ignore files would have shipped, relative (a folder ends with `/`), sorted. */
  secrets: string[];
  /** What `.gitignore` kept out (beyond what is never code): regular files and their bytes. */
  gitignored: { files: number; bytes: number };
  /** Files that ship with other content than they have on disk: relative path → the text that ships. */
  rewritten: Record<string, string>;
  /** Rules that could not be applied (a git work tree without the `git` program). */
  warnings: string[];
}

/** Options of `shippedFiles`. */
export interface ShipOptions {
  /** The environment `git` runs with (its PATH, HOME for the user's global excludes). */
  env?: Env;
  /** The file the job runs, relative: a UserError when the rules keep it out. */
  entry?: string;
  /** Further files, relative, that are requirements files whatever their name (the job's `--envfile`). */
  requirements?: readonly string[];
}

/** What `.alekseylearnignore` says of a path: the last of its rules matching the path or a folder above it, if any. */
type Verdict = "exclude" | "include" | undefined;

function verdictOf(rules: ReturnType<typeof parseDockerignore>, relative: string): Verdict {
  const parts = relative.split("/");
  const candidates = parts.map((_, i) => parts.slice(0, i + 1).join("/"));
  let verdict: Verdict;
  for (const rule of rules) if (candidates.some((candidate) => rule.pattern.test(candidate))) verdict = rule.exception ? "include" : "exclude";
  return verdict;
}

/** Folders whose whole content is a secret. */
const SECRET_FOLDERS = new Set([".aws", ".ssh", ".gnupg"]);

/** Why a file's name makes it a secret, or undefined. */
function secretByName(relative: string): boolean {
  const name = relative.slice(relative.lastIndexOf("/") + 1);
  return (
    name.startsWith(".env") ||
    name === ".netrc" ||
    name === ".pypirc" ||
    name === "kaggle.json" ||
    /\.(pem|key)$/i.test(name) ||
    /^credentials.*\.json$/i.test(name) ||
    // OpenSSH's private key names (ssh-keygen -t TYPE); the public half ends with .pub. Other names are caught by their content.
    (/^id_(rsa|dsa|ecdsa|ed25519|xmss)(_sk)?([._-]|$)/.test(name) && !name.endsWith(".pub")) ||
    relative === ".docker/config.json" ||
    relative.endsWith("/.docker/config.json")
  );
}

/** A PEM private key of any kind (RSA, EC, OpenSSH, PKCS#8, encrypted), or a PGP one. */
const PRIVATE_KEY = /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----/;
/** A Google Cloud service-account key file (and the same shape from other clouds' tools). */
const SERVICE_ACCOUNT = /"type"\s*:\s*"service_account"/;
/** An AWS shared credentials file's secret key line. */
const AWS_SECRET = /^\s*aws_secret_access_key\s*=\s*\S/im;

/** True when the file is a small text file whose content is a private key or a cloud key. */
function secretByContent(file: string, size: number): boolean {
  if (size === 0 || size >= CONTENT_SCAN_LIMIT) return false;
  const bytes = fs.readFileSync(file);
  if (bytes.includes(0)) return false; // binary
  const text = bytes.toString("latin1");
  return PRIVATE_KEY.test(text) || (SERVICE_ACCOUNT.test(text) && text.includes('"private_key"')) || AWS_SECRET.test(text);
}

/** True for an error that says this user may not read a path (as opposed to a bug, or a path gone meanwhile). */
function isUnreadable(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === "EACCES" || code === "EPERM";
}

/** True for a file that pip reads as a requirements file by its usual names. */
function isRequirementsName(relative: string): boolean {
  return /(^|\/)[^/]*(requirements|constraints)[^/]*\.(txt|in)$/i.test(relative);
}

/**
 * A requirements file's text as it may ship: every line (continuations
 * joined, as pip joins them) that holds a credential in a URL — an index
 * option (`-i`, `--extra-index-url`, `--find-links`) or a requirement from a
 * private URL — is replaced by a comment. `removed` counts those lines.
 */
export function shippableRequirements(text: string): { text: string; removed: number } {
  const out: string[] = [];
  let removed = 0;
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    let logical = lines[i]!;
    let count = 1;
    while (/\\$/.test(logical) && i + 1 < lines.length) {
      logical = logical.slice(0, -1) + lines[++i]!;
      count++;
    }
    if (hasUrlCredentials(logical)) {
      removed++;
      out.push("# alekseylearn removed a line with a credential here (it must not ship).");
      for (let blank = 1; blank < count; blank++) out.push(""); // the other lines keep their numbers
    } else {
      out.push(...lines.slice(i - count + 1, i + 1));
    }
  }
  return { text: out.join("\n"), removed };
}

/** Which untracked paths git ignores in `dir` (folders end with `/`), or why git could not say. */
function gitIgnored(dir: string, env: Env): { paths: Set<string>; warning?: string } {
  const inWorkTree = (): boolean => {
    for (let at = dir; ; at = path.dirname(at)) {
      if (fs.existsSync(path.join(at, ".git"))) return true;
      if (path.dirname(at) === at) return false;
    }
  };
  // Outside any work tree (no .git above, none named by GIT_DIR) git has nothing to say: starting it cost ~45 ms of
  // every unchanged resubmission (bench/PROFILE.md, "Unchanged resubmission").
  if (!env.GIT_DIR && !inWorkTree()) return { paths: new Set() };
  const result = spawnSync("git", ["ls-files", "-z", "--others", "--ignored", "--exclude-standard", "--directory"], {
    cwd: dir,
    env: env as NodeJS.ProcessEnv,
    encoding: "utf8",
    maxBuffer: 256 * 1024 * 1024,
  });
  if (result.error) {
    return {
      paths: new Set(),
      ...(inWorkTree()
        ? {
            warning: `${dir} is in a git work tree, but git could not be run (${result.error.message}), so .gitignore was not applied to what ships; list what must stay home in ${SHIP_IGNORE_FILE}.`,
          }
        : {}),
    };
  }
  if (result.status !== 0) return { paths: new Set() }; // not a work tree
  return { paths: new Set(result.stdout.split("\0").filter(Boolean)) };
}

function readRules(dir: string, file: string): ReturnType<typeof parseDockerignore> {
  try {
    return parseDockerignore(fs.readFileSync(path.join(dir, file), "utf8"));
  } catch {
    return [];
  }
}

/** Apply the rule set to the project folder `dir`: the files that ship, the secrets kept out, what .gitignore kept out. */
export function shippedFiles(dir: string, options: ShipOptions = {}): Shipment {
  const shipment: Shipment = { dir, files: [], folders: [], secrets: [], gitignored: { files: 0, bytes: 0 }, rewritten: {}, warnings: [] };
  const dockerRules = readRules(dir, ".dockerignore");
  const ownRules = readRules(dir, SHIP_IGNORE_FILE);
  const git = gitIgnored(dir, options.env ?? {});
  if (git.warning) shipment.warnings.push(git.warning);
  const requirements = new Set(options.requirements ?? []);
  const isGitIgnored = (relative: string, isDir: boolean): boolean => {
    if (git.paths.has(isDir ? `${relative}/` : relative)) return true;
    const parts = relative.split("/");
    return parts.slice(0, -1).some((_, i) => git.paths.has(`${parts.slice(0, i + 1).join("/")}/`));
  };

  /** What would ship but cannot be read (a folder ends with `/`), with why: named together in one error at the end. */
  const unreadable: string[] = [];
  /** Folders that could not be read, whether named in the error or skipped with a warning. */
  const unreadFolders = new Set<string>();
  /** Walk `prefix`; `secretAbove` when a secret folder above is already named; `excluded` when the rules keep it out. Returns whether anything inside ships. */
  const walk = (prefix: string, secretAbove: boolean, excluded: boolean): boolean => {
    let shipsSomething = false;
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(path.join(dir, prefix), { withFileTypes: true }).sort((a, b) => byCodePoint(a.name, b.name));
    } catch (err) {
      if (!isUnreadable(err)) throw err;
      unreadFolders.add(prefix);
      // A folder the rules keep out is only looked into for a `!` rule that brings something back; one that cannot be read brings nothing.
      if (excluded) shipment.warnings.push(`Skipped ${prefix}/: it cannot be read (${(err as NodeJS.ErrnoException).code}), and the ignore rules keep it out.`);
      else unreadable.push(`${prefix}/ (${(err as NodeJS.ErrnoException).code})`);
      return false;
    }
    for (const entry of entries) {
      const relative = prefix ? `${prefix}/${entry.name}` : entry.name;
      if (!isCode(relative)) continue;
      const full = path.join(dir, relative);
      const isDir = entry.isDirectory();
      const own = verdictOf(ownRules, relative);
      // Docker reads the Dockerfile itself even when .dockerignore names it.
      const byDocker = relative !== "Dockerfile" && verdictOf(dockerRules, relative) === "exclude";
      const byGit = isGitIgnored(relative, isDir);
      const ignored = own ? own === "exclude" : byDocker || byGit;
      if (isDir) {
        const secretFolder = SECRET_FOLDERS.has(entry.name) && own !== "include";
        const named = secretFolder && !ignored && !secretAbove;
        if (named) shipment.secrets.push(`${relative}/`);
        const inside = walk(relative, secretAbove || named, ignored || secretFolder || secretAbove);
        if (unreadFolders.has(relative)) continue; // named in the error, or skipped with a warning, by its walk
        // A folder ships when something in it does, or when it is empty and not excluded (a script may expect it); a folder the rules emptied does not.
        const empty = fs.readdirSync(full).every((name) => !isCode(`${relative}/${name}`));
        if (inside || (!ignored && !secretFolder && empty)) {
          shipment.folders.push(relative);
          shipsSomething = true;
        }
        continue;
      }
      let size: number;
      try {
        size = entry.isFile() ? fs.lstatSync(full).size : 0;
      } catch (err) {
        if (!isUnreadable(err)) throw err;
        if (!ignored) unreadable.push(`${relative} (${(err as NodeJS.ErrnoException).code})`);
        continue;
      }
      if (ignored) {
        if (byGit && !own && entry.isFile()) {
          shipment.gitignored.files++;
          shipment.gitignored.bytes += size;
        }
        continue;
      }
      // In a secret folder, only what .alekseylearnignore brings back by name ships.
      const inSecretFolder = relative
        .split("/")
        .slice(0, -1)
        .some((part) => SECRET_FOLDERS.has(part));
      let secret: boolean;
      try {
        secret = own !== "include" && (inSecretFolder || secretByName(relative) || (entry.isFile() && secretByContent(full, size)));
        // Every file that ships is read when it is packed: one that cannot be is named now, with the others, not halfway through an upload.
        if (!secret && entry.isFile()) fs.accessSync(full, fs.constants.R_OK);
      } catch (err) {
        if (!isUnreadable(err)) throw err;
        unreadable.push(`${relative} (${(err as NodeJS.ErrnoException).code})`);
        continue;
      }
      if (secret) {
        if (!secretAbove) shipment.secrets.push(relative);
        continue;
      }
      shipment.files.push(relative);
      shipsSomething = true;
      if (entry.isFile() && (isRequirementsName(relative) || requirements.has(relative)) && size < CONTENT_SCAN_LIMIT) {
        const shippable = shippableRequirements(fs.readFileSync(full, "utf8"));
        if (shippable.removed) shipment.rewritten[relative] = shippable.text;
      }
    }
    return shipsSomething;
  };
  walk("", false, false);
  if (unreadable.length)
    throw failure(
      `${unreadable.length === 1 ? "A file or folder" : `${unreadable.length} files or folders`} in ${dir} would ship but cannot be read:`,
      `Make ${unreadable.length === 1 ? "it" : "them"} readable (chmod u+r, and u+x for a folder), or keep ${unreadable.length === 1 ? "it" : "them"} out with a line in ${SHIP_IGNORE_FILE}.`,
      unreadable.slice(0, 20).map((item) => `- ${printable(item)}`),
    );
  shipment.files.sort(byCodePoint);
  shipment.folders.sort(byCodePoint);
  shipment.secrets.sort(byCodePoint);
  if (options.entry && !shipment.files.includes(options.entry)) {
    throw new UserError(
      `${options.entry} would not ship: the rules for what ships (.dockerignore, .gitignore, ${SHIP_IGNORE_FILE}, or the list of secret files) keep it out.`,
      `Add the line !${options.entry} to ${SHIP_IGNORE_FILE} in ${dir} to ship it.`,
    );
  }
  return shipment;
}

/** Say what the rules kept out, once: each secret by its path, and how much .gitignore kept out. */
export function reportShipment(shipment: Shipment, warn: (message: string) => void, info: (message: string) => void): void {
  for (const warning of shipment.warnings) warn(warning);
  for (const secret of shipment.secrets)
    warn(`Not shipping ${secret}: it looks like a secret (add !${secret.replace(/\/$/, "")} to ${SHIP_IGNORE_FILE} if it must ship).`);
  for (const file of Object.keys(shipment.rewritten)) warn(`Shipping ${file} without its lines that hold a credential in a URL.`);
  const { files, bytes } = shipment.gitignored;
  if (files) info(`.gitignore kept ${files} file${files === 1 ? "" : "s"} (${bytes} bytes) from shipping.`);
}

/** Every entry of a shipment in the order it is packed: folders before what they hold, by name. */
export function shipmentEntries(shipment: Shipment): string[] {
  return [...shipment.folders, ...shipment.files].sort(byCodePoint);
}

/**
 * Write the shipment as a plain tar at `file` (entries sorted, no times or
 * owners, so the same tree gives the same bytes), leaving out the entries for
 * which `skip` holds; rewritten files go in with the text that ships.
 */
export async function packShipment(shipment: Shipment, file: string, skip: (relative: string) => boolean = () => false): Promise<void> {
  const tar = await loadTar();
  const options = { portable: true, mtime: new Date(0), noDirRecurse: true, sync: true as const, file };
  const entries = shipmentEntries(shipment).filter((entry) => !skip(entry));
  const plain = entries.filter((entry) => !(entry in shipment.rewritten));
  const rewritten = entries.filter((entry) => entry in shipment.rewritten);
  const staging = rewritten.length ? fs.mkdtempSync(path.join(os.tmpdir(), "alekseylearn-ship-")) : undefined;
  try {
    for (const entry of rewritten) {
      const target = path.join(staging!, entry);
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.writeFileSync(target, shipment.rewritten[entry]!);
      fs.chmodSync(target, fs.statSync(path.join(shipment.dir, entry)).mode & 0o777);
    }
    const groups = [
      { cwd: shipment.dir, names: plain },
      { cwd: staging ?? "", names: rewritten },
    ].filter((group) => group.names.length);
    if (!groups.length) {
      fs.writeFileSync(file, Buffer.alloc(1024)); // an empty tar: two zero blocks
      return;
    }
    groups.forEach((group, i) => (i === 0 ? tar.c : tar.r)({ ...options, cwd: group.cwd }, group.names));
  } finally {
    if (staging) fs.rmSync(staging, { recursive: true, force: true });
  }
}
