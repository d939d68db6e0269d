/** `alekseylearn stop JOB`. */
import { stop } from "../../jobs/lifecycle.js";
import { redactRecord } from "../../jobs/records.js";
import { printable } from "../../text.js";
import type { CommandRun } from "../commands.js";

export const run: CommandRun = async (args, ctx, output) => {
  const job = await stop(args.positionals[0]!, ctx);
  output.out(args.options.json ? JSON.stringify(redactRecord(job), null, 2) + "\n" : `Asked ${job.name} to stop; it is ${printable(job.state)}.\n`);
  return 0;
};
