/**
 * `init`: write the image definition of a training artifact (Dockerfile and
 * entrypoint) into its folder for the user to read or edit, and, for
 * SageMaker, create the IAM role its jobs run as.
 */
import fs from "node:fs";
import path from "node:path";
import type { Context } from "../context.js";
import { UserError } from "../errors.js";
import { baseImageFor, imageFiles } from "../package/image.js";
import { allBackends, getBackend } from "../backends/registry.js";
import { buildSpec, type FitRequest } from "./spec.js";
import type { JobSpec } from "../spec/types.js";

/** What `init` did. */
export interface InitResult {
  /** Files written (absolute paths). */
  written: string[];
  /** Files left as they were because they already held the same text. */
  unchanged: string[];
  /** The role's ARN, when one was created or updated. */
  roleArn?: string;
  roleCreated?: boolean;
}

/** Write the image files of `spec` into its folder, refusing to replace files with other content unless `overwrite`. */
export function writeImageFiles(spec: JobSpec, gpu: boolean, overwrite: boolean, cwd: string): InitResult {
  // Whichever backend the spec is for, its base_image setting when it has one (local and SageMaker do).
  const chosen = typeof spec.settings.base_image === "string" ? spec.settings.base_image : "auto";
  const files = imageFiles(spec, baseImageFor(spec, chosen, gpu));
  const result: InitResult = { written: [], unchanged: [] };
  const clashes = Object.entries(files)
    .map(([name, text]) => ({ file: path.join(spec.artifact.dir, name), text }))
    .filter(({ file, text }) => fs.existsSync(file) && fs.readFileSync(file, "utf8") !== text);
  if (clashes.length && !overwrite) {
    throw new UserError(
      `${clashes.map(({ file }) => path.relative(cwd, file) || file).join(" and ")} already exist${clashes.length === 1 ? "s" : ""} with other content.`,
      "`fit` builds with them as they are; pass --overwrite to replace them with freshly generated ones.",
    );
  }
  for (const [name, text] of Object.entries(files)) {
    const file = path.join(spec.artifact.dir, name);
    if (fs.existsSync(file) && fs.readFileSync(file, "utf8") === text) {
      result.unchanged.push(file);
      continue;
    }
    fs.writeFileSync(file, text);
    result.written.push(file);
  }
  return result;
}

/** Write the image files for `request` (refusing to replace different ones unless `overwrite`); with `createRole`, make the SageMaker role. */
export async function init(request: FitRequest, ctx: Context, options: { overwrite?: boolean; createRole?: boolean } = {}): Promise<InitResult> {
  const config = request.config ?? {};
  // The image only needs the artifact and its environment; the role needs the SageMaker settings and inputs (they scope the role's S3 access).
  const spec = options.createRole
    ? await buildSpec({ ...request, backend: request.backend ?? "sagemaker" }, ctx.cwd)
    : await buildSpec({ ...request, backend: "local", inputs: {}, config: config.base_image !== undefined ? { base_image: config.base_image } : {} }, ctx.cwd);
  const backend = await getBackend(spec.backend);
  if (options.createRole && !backend.createRole)
    throw new UserError(
      `--create-role makes the identity a backend's jobs run as; the ${spec.backend} backend has none to make. Use it with --backend sagemaker.`,
    );
  // The config is not validated here (the image needs only base_image), so the backend named says whether it asks for a GPU, or, with none named, any backend.
  const named = options.createRole ? backend : request.backend !== undefined ? await getBackend(request.backend) : undefined;
  const gpu = named ? named.wantsGpu(config) : (await allBackends()).some((each) => each.wantsGpu(config));
  const result: InitResult = {
    ...writeImageFiles(spec, gpu, options.overwrite ?? false, ctx.cwd),
  };
  if (options.createRole && backend.createRole) {
    const role = await backend.createRole(spec, ctx);
    result.roleArn = role.arn;
    result.roleCreated = role.created;
  }
  return result;
}
