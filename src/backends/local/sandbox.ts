/**
 * Making every contract root private to one job with bubblewrap: the whole
 * file system is shared as it is, except that /opt is a fresh tmpfs holding
 * the host's /opt entries again plus this job's folder at /opt/ml, and /gcs
 * and /kaggle are the job's own folders. Two jobs never share a folder, and
 * nothing is created on the host's /, /opt, /gcs or /kaggle. The host's own /opt/ml
 * (SageMaker notebook instances have one, and so does a machine where a job
 * once wrote there) is never bound, nor an entry that leads into it.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { ML_ROOT } from "../../package/contract.js";
import { which } from "../../package/which.js";
import { byCodePoint } from "../../order.js";

/** A host path made visible to the job at a path of its own. */
export interface Mount {
  host: string;
  inside: string;
  readOnly: boolean;
}

/** The job's own folders that the sandbox shows at /opt/ml, /gcs and /kaggle. */
export interface SandboxRoots {
  ml: string;
  gcs: string;
  kaggle: string;
}

/** The contract roots a sandbox makes private: never the host's, whatever it has there. */
const PRIVATE_ROOTS = ["opt", "gcs", "kaggle", "proc", "dev"];

/** One entry of the host's `/`, to be shown again inside the sandbox. */
export type RootEntry = { name: string; kind: "dir" | "file" } | { name: string; kind: "link"; target: string };

/**
 * The bwrap arguments that run `command` with `roots.ml` at /opt/ml, and `roots.gcs` and `roots.kaggle` at /gcs and
 * /kaggle. The sandbox's `/` (bwrap's own tmpfs) holds the host's top-level entries again (`rootEntries`) rather than the host's
 * `/` itself, so /gcs and /kaggle exist only inside it: binding onto a missing path under a bound host `/` would make
 * the mount point on the host. The command gets a PID namespace of its own, as PID 1 (it is the job's init: when it
 * ends, nothing of the job is left), with a /proc that shows only the job; with `infoFd`, bwrap writes the init's host
 * pid there. A host of a multi-host job (`named`) gets its own host name (`--unshare-uts --hostname`) and an /etc/hosts in
 * which every host's name is 127.0.0.1, as each SageMaker host resolves algo-1 … algo-N.
 */
export function bwrapArgs(
  roots: SandboxRoots,
  mounts: readonly Mount[],
  rootEntries: readonly RootEntry[],
  optEntries: readonly string[],
  command: readonly string[],
  infoFd?: number,
  named?: { name: string; hostsFile: string },
): string[] {
  const host = rootEntries
    .filter((entry) => !PRIVATE_ROOTS.includes(entry.name))
    .flatMap((entry) =>
      entry.kind === "link"
        ? ["--symlink", entry.target, `/${entry.name}`]
        : [entry.kind === "dir" ? "--dev-bind" : "--ro-bind", `/${entry.name}`, `/${entry.name}`],
    );
  return [
    ...host,
    "--dev-bind",
    "/dev",
    "/dev",
    "--unshare-pid",
    "--as-pid-1",
    "--proc",
    "/proc",
    "--tmpfs",
    "/opt",
    ...optEntries.filter((entry) => entry !== "ml").flatMap((entry) => ["--dev-bind", `/opt/${entry}`, `/opt/${entry}`]),
    "--bind",
    roots.ml,
    ML_ROOT,
    "--bind",
    roots.gcs,
    "/gcs",
    "--bind",
    roots.kaggle,
    "/kaggle",
    ...mounts.flatMap((mount) => [mount.readOnly ? "--ro-bind" : "--bind", mount.host, mount.inside]),
    ...(named ? ["--unshare-uts", "--hostname", named.name, "--ro-bind", named.hostsFile, "/etc/hosts"] : []),
    "--die-with-parent",
    ...(infoFd !== undefined ? ["--info-fd", String(infoFd)] : []),
    "--",
    ...command,
  ];
}

/** The /etc/hosts of a multi-host job's sandboxes: this machine's own, and every host's name as 127.0.0.1. */
export function hostsFileText(names: readonly string[], own = readOr("/etc/hosts")): string {
  return `${own}${own && !own.endsWith("\n") ? "\n" : ""}${names.map((name) => `127.0.0.1\t${name}\n`).join("")}`;
}

function readOr(file: string): string {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return "127.0.0.1\tlocalhost\n";
  }
}

/** The host's top-level entries (`/bin` as the link it is on a merged-/usr system), sorted by code point. */
export function hostRootEntries(root = "/"): RootEntry[] {
  const entries: RootEntry[] = [];
  for (const entry of fs.readdirSync(root, { withFileTypes: true }).sort((a, b) => byCodePoint(a.name, b.name))) {
    if (entry.isSymbolicLink()) entries.push({ name: entry.name, kind: "link", target: fs.readlinkSync(path.join(root, entry.name)) });
    else if (entry.isDirectory()) entries.push({ name: entry.name, kind: "dir" });
    else if (entry.isFile()) entries.push({ name: entry.name, kind: "file" });
  }
  return entries;
}

/** The host's /opt entries a job may see again (none when it has no /opt): every one but `ml`, and but a link that leads into the host's /opt/ml. */
export function hostOptEntries(opt = "/opt"): string[] {
  let entries: string[];
  try {
    entries = fs.readdirSync(opt).sort();
  } catch {
    return [];
  }
  const hostMl = realPath(path.join(opt, "ml"));
  return entries.filter((entry) => {
    if (entry === "ml") return false;
    const real = realPath(path.join(opt, entry));
    return !hostMl || !real || (real !== hostMl && !real.startsWith(hostMl + path.sep));
  });
}

function realPath(file: string): string | undefined {
  try {
    return fs.realpathSync(file);
  } catch {
    return undefined;
  }
}

/** Which sandbox a job gets: bwrap's path, or the reason there is none. */
export type SandboxChoice = { bwrap: string; reason?: undefined } | { bwrap?: undefined; reason: string };

/** The kernel settings that decide whether an unprivileged user may make namespaces (Linux, Debian/Ubuntu, AppArmor). */
const NAMESPACE_SETTINGS = [
  "/proc/sys/kernel/unprivileged_userns_clone",
  "/proc/sys/user/max_user_namespaces",
  "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
];

/** Where a passed probe of this bwrap, for this user under these kernel settings, is remembered; undefined when it cannot be told. */
function probeMemo(bwrap: string, cacheDir: string): string | undefined {
  try {
    const stat = fs.statSync(bwrap);
    const settings = NAMESPACE_SETTINGS.map((file) => {
      try {
        return fs.readFileSync(file, "utf8").trim();
      } catch {
        return "";
      }
    });
    const key = JSON.stringify([fs.realpathSync(bwrap), stat.size, stat.mtimeMs, process.getuid?.(), settings]);
    return path.join(cacheDir, "sandbox-probes", createHash("sha256").update(key).digest("hex").slice(0, 16));
  } catch {
    return undefined;
  }
}

/**
 * Pick the sandbox for the `sandbox` setting: find bwrap and check that it can make namespaces here. A probe that passed
 * is remembered in `cacheDir` (when given) for the same bwrap, user and kernel settings: it costs every run a process
 * start otherwise.
 */
export function chooseSandbox(setting: string, pathVar: string | undefined, cacheDir?: string): SandboxChoice {
  if (setting === "none") return { reason: "config.sandbox=none" };
  const bwrap = which("bwrap", pathVar);
  if (!bwrap) return { reason: "bubblewrap (bwrap) is not installed" };
  const memo = cacheDir ? probeMemo(bwrap, cacheDir) : undefined;
  if (memo && fs.existsSync(memo)) return { bwrap };
  const probe = spawnSync(bwrap, ["--dev-bind", "/", "/", "--unshare-pid", "--as-pid-1", "--proc", "/proc", "--tmpfs", "/opt", "true"], {
    encoding: "utf8",
    timeout: 10_000,
  });
  if (probe.status !== 0) return { reason: `bwrap cannot create a sandbox here (${(probe.stderr || probe.error?.message || "").trim()})` };
  if (memo) {
    try {
      fs.mkdirSync(path.dirname(memo), { recursive: true });
      fs.writeFileSync(memo, "passed\n");
    } catch {
      // not remembered: the next run probes again
    }
  }
  return { bwrap };
}
