/**
 * Python environments for local runs: one virtual environment per
 * environment-file content (and interpreter, and extra packages), cached under
 * the user's cache folder, so a second run with the same requirements installs
 * nothing.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createHash, randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { failure, UserError } from "../errors.js";
import { execLogged, isProcessAlive } from "../exec.js";
import type { Context } from "../context.js";
import type { EnvironmentFile } from "../spec/types.js";
import { redactUrls } from "../redact.js";
import { readPipLine, unreachableIndexMessage } from "./pip-progress.js";
import { which } from "./which.js";

/** A ready environment: run `python` to use it. */
export interface PythonEnvironment {
  dir: string;
  python: string;
  /** True when this call created it; false when it came from the cache. */
  created: boolean;
}

/** What decides an environment's identity. */
export interface EnvironmentRequest {
  file?: EnvironmentFile;
  /** The interpreter to build a venv from (a name on PATH or a path). */
  python: string;
  /** Packages the runner itself needs on top of the user's (nbclient for notebooks). */
  extras: readonly string[];
}

const READY = ".alekseylearn-ready";
const CONDA_TOOLS = ["micromamba", "mamba", "conda"];

/** The cache key of a request: a hash of the file's kind and content, the interpreter, and the extras. */
export function environmentKey(request: EnvironmentRequest, interpreter: string): string {
  const hash = createHash("sha256");
  hash.update(JSON.stringify({ kind: request.file?.kind ?? "none", content: request.file?.content ?? "", interpreter, extras: [...request.extras].sort() }));
  return hash.digest("hex").slice(0, 16);
}

function resolveInterpreter(request: EnvironmentRequest, ctx: Context): string {
  if (request.file?.kind === "conda") {
    const tool = CONDA_TOOLS.map((name) => which(name, ctx.env.PATH)).find(Boolean);
    if (!tool) {
      throw new UserError(
        `${path.basename(request.file.path)} needs conda to build, and none of micromamba, mamba or conda is on PATH.`,
        "Install micromamba (https://mamba.readthedocs.io), or pass a requirements.txt with --envfile.",
      );
    }
    return tool;
  }
  const python = which(request.python, ctx.env.PATH);
  if (!python)
    throw new UserError(`Python interpreter ${request.python} is not on PATH.`, "Install Python 3, or name one with --config.python=/path/to/python3.");
  return realInterpreter(python, ctx);
}

/**
 * The interpreter a name really runs. A launcher script (a pyenv or asdf shim)
 * picks a different Python by folder or setting, so it is asked; a binary is
 * itself. The answer is part of the cache key, so a new Python gets a new environment.
 */
function realInterpreter(python: string, ctx: Context): string {
  const real = fs.realpathSync(python);
  const head = Buffer.alloc(2);
  const fd = fs.openSync(real, "r");
  try {
    fs.readSync(fd, head, 0, 2, 0);
  } finally {
    fs.closeSync(fd);
  }
  if (head.toString() !== "#!") return real;
  // Asking costs a launcher start (~80 ms with pyenv), so the answer is remembered for the inputs a launcher decides by.
  const memo = path.join(ctx.cacheDir, "interpreters", createHash("sha256").update(launcherInputs(real, ctx)).digest("hex").slice(0, 16));
  try {
    const remembered = fs.readFileSync(memo, "utf8").trim();
    if (remembered && fs.existsSync(remembered)) return remembered;
  } catch {
    // not asked yet
  }
  const asked = spawnSync(real, ["-I", "-S", "-c", "import sys; print(sys.executable)"], {
    cwd: ctx.cwd,
    env: ctx.env as NodeJS.ProcessEnv,
    encoding: "utf8",
    timeout: 30_000,
  });
  const executable = asked.stdout?.trim();
  if (asked.status !== 0 || !executable)
    throw new UserError(
      `${python} does not run: ${(asked.stderr || asked.error?.message || "").trim().split("\n").pop()}`,
      "Name a working interpreter with --config.python=/path/to/python3.",
    );
  const answer = fs.realpathSync(executable);
  fs.mkdirSync(path.dirname(memo), { recursive: true });
  fs.writeFileSync(memo, answer + "\n");
  return answer;
}

/**
 * What a version manager's launcher (pyenv, asdf) picks a Python by: its
 * variables, and the version files from the current folder up, and the global one.
 */
function launcherInputs(launcher: string, ctx: Context): string {
  const home = ctx.env.HOME || os.homedir();
  const parts = [
    launcher,
    ...Object.entries(ctx.env)
      .filter(([key]) => /^(PYENV|ASDF)_/.test(key))
      .sort()
      .map(([key, value]) => `${key}=${value}`),
  ];
  const read = (file: string): void => {
    try {
      parts.push(`${file}:${fs.readFileSync(file, "utf8")}`);
    } catch {
      // absent
    }
  };
  for (let dir = ctx.cwd; ; dir = path.dirname(dir)) {
    read(path.join(dir, ".python-version"));
    read(path.join(dir, ".tool-versions"));
    if (path.dirname(dir) === dir) break;
  }
  read(path.join(ctx.env.PYENV_ROOT || path.join(home, ".pyenv"), "version"));
  read(path.join(home, ".tool-versions"));
  return parts.join("\n");
}

/** Whether the lock folder's owner is gone: its pid file names a dead process, or it has no pid file after a minute. */
function abandoned(lockDir: string): boolean {
  try {
    const pid = Number(fs.readFileSync(path.join(lockDir, "pid"), "utf8"));
    return Number.isInteger(pid) && pid > 0 && !isProcessAlive(pid);
  } catch {
    try {
      return Date.now() - fs.statSync(lockDir).mtimeMs > 60_000;
    } catch {
      return false; // released meanwhile
    }
  }
}

/** Wait for, then take, a lock folder; returns its release. Another process creating the same environment holds it. */
async function lock(dir: string, signal?: AbortSignal): Promise<() => void> {
  const lockDir = `${dir}.lock`;
  for (;;) {
    try {
      fs.mkdirSync(lockDir);
      fs.writeFileSync(path.join(lockDir, "pid"), String(process.pid));
      return () => fs.rmSync(lockDir, { recursive: true, force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      // A process killed mid-install (kill -9, a crash) leaves its lock behind.
      if (abandoned(lockDir)) fs.rmSync(lockDir, { recursive: true, force: true });
      else {
        try {
          await sleep(500, undefined, { signal });
        } catch {
          throw new UserError("Stopped while waiting for another run that creates the same environment; nothing was kept.", undefined, 130);
        }
      }
    }
  }
}

/**
 * Remove `target` (a folder or a link) whatever is still being written into it: a process Ctrl-C reached may write its
 * last files while it dies (pip's build subprocesses do), and removing a folder that gains an entry meanwhile fails with
 * ENOTEMPTY, so the removal is tried again for a few seconds. True once it is gone.
 */
function removeWhole(target: string): boolean {
  try {
    fs.rmSync(target, { recursive: true, force: true, maxRetries: 20, retryDelay: 50 });
  } catch {
    // still being written into: reported by the caller, removed by the next run
  }
  return !fs.existsSync(target) && !isLink(target);
}

function isLink(target: string): boolean {
  try {
    return fs.lstatSync(target).isSymbolicLink();
  } catch {
    return false;
  }
}

/** The unfinished builds of `dir` left by an interrupted run (their folders and links), for the next build to remove. */
function leftovers(dir: string): string[] {
  const prefix = `${path.basename(dir)}.build-`;
  return fs
    .readdirSync(path.dirname(dir))
    .filter((name) => name.startsWith(prefix))
    .map((name) => path.join(path.dirname(dir), name));
}

/** Where the environment for `request` is cached and whether it is ready there; builds nothing (a UserError when the interpreter is missing, as for a build). */
export function environmentLocation(request: EnvironmentRequest, ctx: Context): { dir: string; ready: boolean } {
  const dir = path.join(ctx.cacheDir, "envs", environmentKey(request, resolveInterpreter(request, ctx)));
  return { dir, ready: fs.existsSync(path.join(dir, READY)) };
}

/**
 * Return the cached environment for `request`, creating it first when it is not there. It is built in a folder of its
 * own (`KEY.build-RANDOM`) and published at `envs/KEY` by one rename of a link to it once it is complete, so an
 * interruption at any moment leaves either the whole environment or none at `envs/KEY`. The folder itself never moves:
 * a venv's scripts and a conda prefix name their own folder by absolute path.
 */
export async function ensureEnvironment(request: EnvironmentRequest, ctx: Context): Promise<PythonEnvironment> {
  const interpreter = resolveInterpreter(request, ctx);
  const dir = path.join(ctx.cacheDir, "envs", environmentKey(request, interpreter));
  const python = path.join(dir, "bin", "python");
  if (fs.existsSync(path.join(dir, READY))) return { dir, python, created: false };

  fs.mkdirSync(path.dirname(dir), { recursive: true });
  const release = await lock(dir, ctx.signal);
  try {
    if (fs.existsSync(path.join(dir, READY))) return { dir, python, created: false };
    // What an interrupted run (or an older version, building in place) left: never used, since it has no ready mark.
    for (const left of [dir, ...leftovers(dir)]) removeWhole(left);
    const building = `${dir}.build-${randomBytes(4).toString("hex")}`;
    try {
      await build(request, interpreter, building, `${dir}.install.log`, ctx);
      fs.writeFileSync(
        path.join(building, READY),
        JSON.stringify({ file: request.file?.path, extras: request.extras, createdAt: new Date().toISOString() }) + "\n",
      );
      const link = `${building}.link`;
      fs.symlinkSync(path.basename(building), link);
      fs.renameSync(link, dir); // the one step that makes the environment appear, whole
      return { dir, python, created: true };
    } catch (err) {
      const removed = [building, `${building}.link`].map(removeWhole).every(Boolean);
      if (ctx.signal?.aborted || (err instanceof UserError && err.exitCode === 130))
        throw new UserError(
          removed
            ? "Stopped while creating the environment; nothing was kept."
            : `Stopped while creating the environment; the unfinished ${building} is still being written to and was left (it is never used, and the next run removes it).`,
          undefined,
          130,
        );
      if (!removed) ctx.reporter.warn(`Could not remove the unfinished environment ${building} yet; it is never used, and the next run removes it.`);
      throw err;
    }
  } finally {
    release();
  }
}

async function build(request: EnvironmentRequest, interpreter: string, dir: string, logFile: string, ctx: Context): Promise<void> {
  fs.writeFileSync(logFile, "");
  // Unbuffered, so pip's lines arrive as it prints them and progress is live. Pip's own retry and timeout settings are left as
  // the user has them: PIP_RETRIES here would override their pip.conf, so an unreachable index is named at its first retry instead.
  const env = { ...ctx.env, PIP_DISABLE_PIP_VERSION_CHECK: "1", PYTHONUNBUFFERED: "1" };
  const cwd = request.file ? path.dirname(request.file.path) : ctx.cwd;
  let indexes: string[] = [];
  let unreachable = false;
  const onPipLine = (line: string): void => {
    const read = readPipLine(line);
    if (read.indexes) indexes = read.indexes.map(redactUrls);
    if (read.detail) ctx.reporter.detail?.(read.detail);
    if (read.retrying && !unreachable) {
      unreachable = true;
      ctx.reporter.warn(unreachableIndexMessage(indexes, read.retrying, logFile));
    }
  };
  const step = async (what: string, command: string, args: string[], onLine?: (line: string) => void): Promise<void> => {
    ctx.reporter.info(what);
    const result = await execLogged(command, args, { cwd, env, logFile, ...(ctx.signal ? { signal: ctx.signal } : {}), ...(onLine ? { onLine } : {}) });
    if (ctx.signal?.aborted) throw new UserError("Stopped while creating the environment.", undefined, 130);
    if (result.code !== 0) {
      throw failure(
        `Creating the environment failed: \`${path.basename(command)} ${args.slice(0, 3).join(" ")}…\` exited with ${result.code ?? result.signal}.`,
        unreachable
          ? `pip could not reach its package index: set PIP_INDEX_URL=URL or run \`python3 -m pip config set global.index-url URL\`. The full output is in ${logFile}.`
          : `The full output is in ${logFile}.`,
        result.tail,
      );
    }
  };

  const file = request.file;
  if (file?.kind === "conda") {
    const tool = path.basename(interpreter);
    const args =
      tool === "conda" ? ["env", "create", "--yes", "--prefix", dir, "--file", file.path] : ["create", "--yes", "--prefix", dir, "--file", file.path];
    await step(`Creating the conda environment from ${path.basename(file.path)} with ${tool}…`, interpreter, args);
    if (!fs.existsSync(path.join(dir, "bin", "python")))
      throw failure(`${path.basename(file.path)} does not install python, so the job cannot run.`, "Add `python` to its dependencies.");
  } else {
    await step("Creating a Python virtual environment…", interpreter, ["-m", "venv", dir]);
  }
  const packages = [...(file?.kind === "requirements" ? ["-r", file.path] : []), ...request.extras];
  if (packages.length) {
    const what = file?.kind === "requirements" ? `Installing ${path.basename(file.path)}` : `Installing ${request.extras.join(", ")}`;
    await step(`${what} (pip)…`, path.join(dir, "bin", "python"), ["-m", "pip", "install", "--no-input", ...packages], onPipLine);
  }
}
