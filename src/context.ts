/**
 * What the library is given instead of reading the process: the working folder,
 * the environment, where to keep state and caches, and where to report progress.
 * The CLI builds one from `process`; tests build their own.
 */
import path from "node:path";
import os from "node:os";

/** Receives what a long operation has to say while it runs; all of it is for people, none for scripts. */
export interface Reporter {
  /** A step of progress ("Creating environment…"). */
  info(message: string): void;
  /** Something the user should know that does not stop the work. */
  warn(message: string): void;
  /** A line the training job itself printed. */
  jobLine(line: string): void;
  /** What the current step is doing now (the package pip is downloading): on a terminal it replaces the step's own text, elsewhere it is one plain line. */
  detail?(message: string): void;
  /** How far a counted piece of work is; called again as it moves, last with done === total. */
  progress?(label: string, done: number, total: number, unit?: "files" | "bytes"): void;
}

/** A reporter that says nothing, for library callers who do not want progress. */
export const silentReporter: Reporter = { info() {}, warn() {}, jobLine() {} };

/** The library's view of its surroundings. */
export interface Context {
  /** Folder that relative paths are resolved against. */
  cwd: string;
  /** Environment passed to child processes (pip, python, bwrap) and read for tool settings. */
  env: Readonly<Record<string, string | undefined>>;
  /** Where job records and local run folders live (XDG state). */
  stateDir: string;
  /** Where reusable environments live (XDG cache). */
  cacheDir: string;
  reporter: Reporter;
  /** Aborted when the user asks to stop (Ctrl-C). */
  signal?: AbortSignal;
  /** Registry hosts reached over plain http beyond loopback (the CLI reads ALEKSEYLEARN_INSECURE_REGISTRIES). */
  insecureRegistries?: readonly string[];
}

/** The hosts of ALEKSEYLEARN_INSECURE_REGISTRIES's value (comma-separated host[:port]). */
export function parseInsecureRegistries(value: string | undefined): string[] {
  return (value ?? "")
    .split(",")
    .map((host) => host.trim())
    .filter(Boolean);
}

/** The XDG folders for this tool, from an environment (defaults follow the XDG base directory spec). */
export function defaultDirs(env: Readonly<Record<string, string | undefined>>): { stateDir: string; cacheDir: string } {
  const home = env.HOME || os.homedir();
  const state = env.XDG_STATE_HOME || path.join(home, ".local", "state");
  const cache = env.XDG_CACHE_HOME || path.join(home, ".cache");
  return { stateDir: path.join(state, "alekseylearn"), cacheDir: path.join(cache, "alekseylearn") };
}

/** A context for library callers: the given folder and environment, XDG folders, no progress output. */
export function makeContext(options: Partial<Context> & { cwd: string; env: Context["env"] }): Context {
  return { ...defaultDirs(options.env), reporter: silentReporter, ...options };
}
