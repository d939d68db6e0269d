/** `alekseylearn fetch`: bring a model back and unpack it. */
import { fetch } from "../../fetch.js";
import type { CommandRun } from "../commands.js";

export const run: CommandRun = async (args, ctx, output) => {
  const { options } = args;
  const result = await fetch(args.positionals[0]!, ctx, {
    ...(typeof options.to === "string" ? { to: options.to } : {}),
    extract: options["no-extract"] !== true,
    overwrite: options.overwrite === true,
  });
  if (options.json) {
    output.out(JSON.stringify(result, null, 2) + "\n");
    return 0;
  }
  ctx.reporter.info(`Fetched ${result.model}${result.job ? ` (job ${result.job})` : ""}`);
  output.out(`${result.files.length} file${result.files.length === 1 ? "" : "s"} in ${result.to}:\n`);
  for (const file of result.files.slice(0, 20)) output.out(`  ${file}\n`);
  if (result.files.length > 20) output.out(`  … and ${result.files.length - 20} more\n`);
  return 0;
};
