/** `alekseylearn fetch`: bring a model back and unpack it. */
import { UserError } from "../../errors.js";
import { fetch } from "../../fetch.js";
import { parseSize, printable } from "../../text.js";
import type { CommandRun } from "../commands.js";

export const run: CommandRun = async (args, ctx, output) => {
  const { options } = args;
  const maxSize = typeof options["max-size"] === "string" ? parseSize(options["max-size"]) : undefined;
  if (typeof options["max-size"] === "string" && maxSize === undefined)
    throw new UserError(`--max-size ${options["max-size"]} is not a size.`, "Write it as bytes or with a unit: 500M, 20G, 1.5T.");
  const result = await fetch(args.positionals[0]!, ctx, {
    ...(typeof options.to === "string" ? { to: options.to } : {}),
    extract: options["no-extract"] !== true,
    overwrite: options.overwrite === true,
    ...(maxSize !== undefined ? { maxSize } : {}),
  });
  if (options.json) {
    output.out(JSON.stringify(result, null, 2) + "\n");
    return 0;
  }
  if (result.model) ctx.reporter.info(`Fetched ${result.model}${result.job ? ` (job ${result.job})` : ""}`);
  // A job that ended without a model: what it left comes back, and the line says why there is no model.
  else output.out(`There was no model: ${result.noModel}. Brought back what the job left (${result.output}).\n`);
  output.out(`${result.files.length} file${result.files.length === 1 ? "" : "s"} in ${result.to}:\n`);
  // An archive's names may hold control characters: shown escaped, they cannot act on the terminal.
  for (const file of result.files.slice(0, 20)) output.out(`  ${printable(file)}\n`);
  if (result.files.length > 20) output.out(`  … and ${result.files.length - 20} more\n`);
  return 0;
};
