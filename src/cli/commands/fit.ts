/** `alekseylearn fit`: validate, submit, follow, summarise. */
import { allBackends, getBackend } from "../../backends/registry.js";
import type { Backend } from "../../backends/types.js";
import { describeType } from "../../spec/schema.js";
import { fit, JobEndedError, planFit, type FollowResult } from "../../jobs/lifecycle.js";
import { redactRecord } from "../../jobs/records.js";
import { redactForPrint, secretValues } from "../../redact.js";
import type { FitRequest } from "../../spec/build.js";
import type { ParsedArgs } from "../args.js";
import type { CommandRun } from "../commands.js";
import { describeJob, describePlan, jobDuration } from "../render.js";

/** One backend's settings, one a line with its type, doc and default: `alekseylearn settings NAME` and `fit --help --backend NAME`. */
export function backendSettingsHelp(backend: Backend): string {
  const rows = Object.entries(backend.schema).map(([key, field]) => {
    const shown = field.type.kind === "duration" ? `${field.default}s` : JSON.stringify(field.default);
    const fallback = field.default === undefined ? "" : ` Default: ${shown}.`;
    const aliases = field.aliases?.length ? ` (also ${field.aliases.join(", ")})` : "";
    return `  config.${key}${aliases}: ${describeType(field.type)}. ${field.doc}${fallback}`;
  });
  return [`Settings of the ${backend.name} backend (${backend.summary}):`, ...rows].join("\n");
}

/** For `fit --help`: one line per backend pointing to its settings; with `--backend NAME`, that backend's settings. */
export async function settingsHelp(args?: ParsedArgs): Promise<string[]> {
  const asked = args?.options.backend;
  if (typeof asked === "string") return [backendSettingsHelp(await getBackend(asked))];
  const backends = await allBackends();
  const width = Math.max(...backends.map((backend) => backend.name.length)) + 2;
  return [
    [
      "Backends (each has its own --config. settings; `alekseylearn settings NAME` or `fit --help --backend NAME` lists them with defaults):",
      ...backends.map((backend) => `  ${backend.name.padEnd(width)}${backend.summary}`),
    ].join("\n"),
  ];
}

export const run: CommandRun = async (args, ctx, output) => {
  const { options, families } = args;
  // Hyperparameters stay the text typed, as SageMaker keeps them; the job decodes each with json.loads, as SageMaker's toolkit does.
  const hyperparameters: Record<string, string> = { ...families.hyperparameter };
  const request: FitRequest = {
    artifact: args.positionals[0]!,
    config: families.config ?? {},
    hyperparameters,
    inputs: families.input ?? {},
  };
  if (typeof options.entry === "string") request.entry = options.entry;
  if (typeof options.envfile === "string") request.envfile = options.envfile;
  if (typeof options.backend === "string") request.backend = options.backend;

  if (options["dry-run"]) {
    const planned = await planFit(request, ctx, typeof options.name === "string" ? { name: options.name } : {});
    // What is printed holds no credential, by the rule records follow: secret-named values wherever they appear (Environment.WANDB_API_KEY,
    // a {name, value} pair, a tag, a hyperparameter in arguments, files and scripts) and URL credentials are redacted.
    const plan = redactForPrint(planned, secretValues(request.config ?? {}, request.hyperparameters ?? {})) as typeof planned;
    output.out(options.json ? JSON.stringify(plan, null, 2) + "\n" : describePlan(plan));
    return 0;
  }
  let result: FollowResult;
  try {
    result = await fit(request, ctx, {
      detach: options.detach === true,
      overwriteImage: options.overwrite === true,
      ...(typeof options.name === "string" ? { name: options.name } : {}),
    });
  } catch (err) {
    // Scripts get the failed or stopped job's record too; the error still goes to stderr with its exit code.
    if (options.json && err instanceof JobEndedError) output.out(JSON.stringify(redactRecord(err.job), null, 2) + "\n");
    throw err;
  }
  const { job } = result;
  if (options.json) {
    output.out(JSON.stringify(redactRecord(job), null, 2) + "\n");
    return 0;
  }
  if (result.detached) {
    output.out(`${describeJob(job)}\nFollow it:  alekseylearn logs ${job.name} --follow\nStop it:    alekseylearn stop ${job.name}\n`);
    return 0;
  }
  output.out(`Job ${job.name} completed in ${jobDuration(job)}.\n`);
  if (job.model) output.out(`Model: ${job.model}\nFetch it: alekseylearn fetch ${job.name} --to model/\n`);
  // A backend that looked for the model and did not find it says where (Vertex AI); otherwise the job wrote none.
  else output.out(job.reason ? `There is no model to fetch: ${job.reason}.\n` : "It wrote nothing to /opt/ml/model, so there is no model to fetch.\n");
  if (job.output) output.out(`Output data: ${job.output}\n`);
  return 0;
};
