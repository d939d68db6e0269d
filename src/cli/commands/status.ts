/** `alekseylearn status [JOB]`. */
import { status } from "../../jobs/lifecycle.js";
import { redactRecord } from "../../jobs/records.js";
import type { CommandRun } from "../commands.js";
import { describeJob } from "../render.js";

export const run: CommandRun = async (args, ctx, output) => {
  const job = await status(args.positionals[0], ctx);
  output.out(args.options.json ? JSON.stringify(redactRecord(job), null, 2) + "\n" : describeJob(job));
  return 0;
};
