/** `alekseylearn jobs`: a table of every job, newest first; `--rm JOB` removes one record. */
import { forget, jobs } from "../../jobs/lifecycle.js";
import { redactRecord } from "../../jobs/records.js";
import { printable } from "../../text.js";
import type { CommandRun } from "../commands.js";
import { hostsCell, jobDuration, stateCell, table } from "../render.js";

export const run: CommandRun = async (args, ctx, output) => {
  if (typeof args.options.rm === "string") {
    await forget(args.options.rm, ctx);
    output.out(args.options.json ? JSON.stringify({ removed: args.options.rm }) + "\n" : `Removed the record of ${args.options.rm}.\n`);
    return 0;
  }
  const records = await jobs(ctx);
  if (args.options.json) {
    output.out(JSON.stringify(records.map(redactRecord), null, 2) + "\n");
    return 0;
  }
  if (!records.length) {
    output.out("No jobs yet. Start one with `alekseylearn fit ARTIFACT`.\n");
    return 0;
  }
  // What a record says is data: printed with its control characters escaped, as archive names are.
  const rows = records.map((job) =>
    [job.name, job.backend, stateCell(job), hostsCell(job), job.createdAt.replace("T", " ").slice(0, 19), jobDuration(job), job.model ?? job.jobOutput].map(
      printable,
    ),
  );
  output.out(table(["NAME", "BACKEND", "STATE", "HOSTS", "CREATED (UTC)", "DURATION", "MODEL"], rows));
  return 0;
};
