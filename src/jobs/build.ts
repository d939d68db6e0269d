/**
 * `alekseylearn build`: the image a job would run, assembled and pushed
 * without Docker, referred to by digest. Its settings are the SageMaker
 * backend's base_image, python_version and builder, validated as there.
 */
import type { Context } from "../context.js";
import { UserError } from "../errors.js";
import { builderSetting, pythonVersionSetting } from "../backends/common.js";
import { validateSettings, type Schema } from "../spec/schema.js";
import { baseImageFor } from "../package/image.js";
import { chooseBuilder } from "../package/oci/choose.js";
import { buildAndPush, type OciBuildResult } from "../package/oci/build.js";
import type { Credentials } from "../package/oci/registry.js";
import { buildSpec, type FitRequest } from "./spec.js";

/** The settings `build` takes: the image backends' (SageMaker's and Vertex AI's), as named there. */
const buildSchema = {
  base_image: {
    type: { kind: "string" },
    default: "auto",
    doc: "The image the job's image is built on; auto: python:3.11-slim.",
  },
  python_version: pythonVersionSetting,
  builder: builderSetting,
} satisfies Schema;

export interface BuildRequest extends Pick<FitRequest, "artifact" | "entry" | "envfile" | "config"> {
  to: string;
  credentials?: Credentials;
  insecure?: readonly string[];
}

/** Build and push the image of `request.artifact` to `request.to` with no Docker. */
export async function build(request: BuildRequest, ctx: Context): Promise<OciBuildResult> {
  const { settings, problems } = validateSettings(buildSchema, request.config ?? {}, "alekseylearn build (the SageMaker backend's image settings)");
  if (problems.length) throw new UserError(problems.join("; ") + ".");
  const spec = await buildSpec(
    {
      artifact: request.artifact,
      backend: "local",
      inputs: {},
      config: {},
      hyperparameters: {},
      ...(request.entry ? { entry: request.entry } : {}),
      ...(request.envfile ? { envfile: request.envfile } : {}),
    },
    ctx.cwd,
  );
  const base = baseImageFor(spec, settings.base_image, false);
  const chosen = chooseBuilder(spec, settings.builder, base);
  if (chosen.builder === "docker")
    throw new UserError(
      `alekseylearn build assembles images without Docker, and this artifact needs Docker (${chosen.reason}).`,
      "Use `alekseylearn fit … --config.builder=docker` (it builds with the local Docker daemon), or remove what needs Docker.",
    );
  return buildAndPush(
    spec,
    {
      base,
      to: request.to,
      ...(settings.python_version ? { pythonVersion: settings.python_version } : {}),
      ...(request.credentials ? { credentials: request.credentials } : {}),
      ...(request.insecure ? { insecure: request.insecure } : {}),
    },
    ctx,
  );
}
