/** `alekseylearn logs JOB [--follow]`: the job's output on stdout; with --json, one object a line. */
import { BACKEND_NAMES } from "../../spec/types.js";
import { logs } from "../../jobs/lifecycle.js";
import type { CommandRun } from "../commands.js";

/** One log line for scripts (`logs --json`). */
export interface LogLine {
  /** When alekseylearn read the line (ISO 8601): providers' own timestamps are not carried through every backend. */
  time: string;
  /** `job` for what the job printed (stdout and stderr together, as the providers keep them), `status` for alekseylearn's own lines about the job. */
  stream: "job" | "status";
  /** The host that printed it, in a job with more than one; null otherwise. */
  host: string | null;
  line: string;
}

/** A line as the backends yield it (`[host] text` from a multi-host job, `[backend] state` from the tool) as a LogLine. */
export function logLine(text: string, now: Date = new Date()): LogLine {
  const tagged = /^\[([^\]\s]+)\] (.*)$/s.exec(text);
  if (tagged && (BACKEND_NAMES as readonly string[]).includes(tagged[1]!)) return { time: now.toISOString(), stream: "status", host: null, line: text };
  if (tagged) return { time: now.toISOString(), stream: "job", host: tagged[1]!, line: tagged[2]! };
  return { time: now.toISOString(), stream: "job", host: null, line: text };
}

export const run: CommandRun = async (args, ctx, output) => {
  const follow = args.options.follow === true;
  // Ctrl-C stops following, never the job.
  for await (const line of logs(args.positionals[0]!, ctx, { follow, ...(ctx.signal ? { signal: ctx.signal } : {}) }))
    output.out((args.options.json ? JSON.stringify(logLine(line)) : line) + "\n");
  return 0;
};
