/** `alekseylearn logs JOB [--follow]`: the job's output on stdout. */
import { logs } from "../../jobs/lifecycle.js";
import type { CommandRun } from "../commands.js";

export const run: CommandRun = async (args, ctx, output) => {
  const follow = args.options.follow === true;
  // Ctrl-C stops following, never the job.
  for await (const line of logs(args.positionals[0]!, ctx, { follow, ...(ctx.signal ? { signal: ctx.signal } : {}) })) output.out(line + "\n");
  return 0;
};
