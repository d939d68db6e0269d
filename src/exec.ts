/** Running helper programs (pip, python -m venv, conda) with their output kept in a log file. */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";

/** Who process `pid` is: its start time (clock ticks after boot, field 22 of /proc/PID/stat, fixed for its life) and a SHA-256 of its command line (a command line may hold a credential, so only its digest is kept); undefined when it does not exist or this system has no /proc. */
export function processIdentity(pid: number): { pidStart: string; pidCommand: string } | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // Field 2, the command name, is in parentheses and may hold spaces and ")": the fields after the last ")" are plain, field 3 first.
    const start = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
    if (!start) return undefined;
    return {
      pidStart: start,
      pidCommand: createHash("sha256")
        .update(fs.readFileSync(`/proc/${pid}/cmdline`))
        .digest("hex"),
    };
  } catch {
    return undefined;
  }
}

/**
 * True when process `pid` is the one a record names: the same start time and command line, so a pid the system has
 * since given to another process (or one written into the record by hand) is never taken for the job's. Where there is
 * no /proc to ask, only whether `pid` exists.
 */
export function isRecordedProcess(recorded: { pid?: number; pidStart?: string; pidCommand?: string }): boolean {
  if (!recorded.pid || !Number.isInteger(recorded.pid) || recorded.pid <= 0) return false;
  if (!fs.existsSync("/proc/self/stat")) return isProcessAlive(recorded.pid);
  const now = processIdentity(recorded.pid);
  return now !== undefined && now.pidStart === recorded.pidStart && now.pidCommand === recorded.pidCommand;
}

/** True while process `pid` exists (also when it belongs to another user). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Run `work` on every item, at most `limit` at a time, in order of start. The
 * first failure rejects the whole (items not yet started are not started).
 */
export async function eachLimited<T>(items: readonly T[], limit: number, work: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      await work(items[index]!, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

/** How a helper program ended, with the last lines it printed. */
export interface ExecResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The last lines of its combined output, for error messages. */
  tail: string[];
}

/** Keeps the last `max` lines of a stream of text chunks. */
export class LineTail {
  private lines: string[] = [];
  private partial = "";
  constructor(private readonly max: number) {}

  /** Add a chunk; returns the complete lines it finished. */
  push(chunk: string): string[] {
    const parts = (this.partial + chunk).split(/\r?\n/);
    this.partial = parts.pop() ?? "";
    this.lines.push(...parts);
    if (this.lines.length > this.max) this.lines.splice(0, this.lines.length - this.max);
    return parts;
  }

  /** The kept lines, with any unfinished last line. */
  get(): string[] {
    return this.partial ? [...this.lines, this.partial].slice(-this.max) : [...this.lines];
  }
}

/** Run `command args`, appending its stdout and stderr to `logFile`; a killed or aborted run resolves with its signal. */
export function execLogged(
  command: string,
  args: readonly string[],
  options: {
    cwd: string;
    env: Readonly<Record<string, string | undefined>>;
    logFile: string;
    signal?: AbortSignal;
    /** Hears each complete line as it is printed (stdout and stderr apart), to show progress while the program runs. */
    onLine?: (line: string) => void;
  },
): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const log = fs.createWriteStream(options.logFile, { flags: "a" });
    log.write(`$ ${[command, ...args].join(" ")}\n`);
    const tail = new LineTail(20);
    const child = spawn(command, args, { cwd: options.cwd, env: options.env as NodeJS.ProcessEnv, stdio: ["ignore", "pipe", "pipe"], signal: options.signal });
    for (const stream of [child.stdout, child.stderr]) {
      stream.setEncoding("utf8");
      // Each stream is split apart, so a line is never made of two streams' halves.
      const lines = new LineTail(1);
      stream.on("data", (chunk: string) => {
        log.write(chunk);
        tail.push(chunk);
        if (options.onLine) for (const line of lines.push(chunk)) options.onLine(line);
      });
    }
    child.on("error", (err) => {
      if ((err as NodeJS.ErrnoException).name === "AbortError") return; // 'close' follows with the signal
      log.end();
      reject(err);
    });
    child.on("close", (code, signal) => {
      log.end(() => resolve({ code, signal, tail: tail.get() }));
    });
  });
}
