/** `alekseylearn init ARTIFACT`: write the Dockerfile and entrypoint; with --create-role, make the SageMaker role. */
import path from "node:path";
import { init } from "../../jobs/init.js";
import type { FitRequest } from "../../spec/build.js";
import type { CommandRun } from "../commands.js";

export const run: CommandRun = async (args, ctx, output) => {
  const { options, families } = args;
  const request: FitRequest = { artifact: args.positionals[0]!, config: families.config ?? {}, inputs: families.input ?? {} };
  if (typeof options.entry === "string") request.entry = options.entry;
  if (typeof options.envfile === "string") request.envfile = options.envfile;
  if (typeof options.backend === "string") request.backend = options.backend;
  const result = await init(request, ctx, { overwrite: options.overwrite === true, createRole: options["create-role"] === true });
  if (options.json) {
    output.out(JSON.stringify(result, null, 2) + "\n");
    return 0;
  }
  const shown = (file: string): string => path.relative(ctx.cwd, file) || file;
  for (const file of result.written) output.out(`Wrote ${shown(file)}\n`);
  for (const file of result.unchanged) output.out(`Up to date: ${shown(file)}\n`);
  if (result.written.length || result.unchanged.length) output.out("`alekseylearn fit` builds the job's image from these; edit them as you like.\n");
  if (result.roleArn) output.out(`${result.roleCreated ? "Created" : "Updated the policy of"} the role ${result.roleArn}\n`);
  return 0;
};
