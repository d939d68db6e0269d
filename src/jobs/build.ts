/**
 * `alekseylearn build`: the image a job would run, assembled and pushed
 * without Docker, referred to by digest. Its settings are the SageMaker
 * backend's base_image, python_version and builder, validated as there.
 */
import fs from "node:fs";
import path from "node:path";
import type { Context } from "../context.js";
import { UserError } from "../errors.js";
import { sagemakerSchema } from "../backends/sagemaker/schema.js";
import { validateSettings } from "../spec/schema.js";
import type { JobSpec } from "../spec/types.js";
import { APT_FILE, baseImageFor, DOCKERFILE, dockerfileFor, hasAptFile, hasOwnDockerfile } from "../package/image.js";
import { buildAndPush, type OciBuildResult } from "../package/oci/build.js";
import type { Credentials } from "../package/oci/registry.js";
import { buildSpec, type FitRequest } from "./spec.js";

/** The settings `build` takes: SageMaker's, as named there. */
const buildSchema = { base_image: sagemakerSchema.base_image, python_version: sagemakerSchema.python_version, builder: sagemakerSchema.builder };

/** Why `spec` needs Docker to build its image (a conda environment, apt.txt, its own Dockerfile unlike the generated one), or undefined when it does not (pure but for reading the folder). */
export function needsDocker(spec: JobSpec, baseImage: string): string | undefined {
  if (spec.environment?.kind === "conda") return `its environment is ${path.basename(spec.environment.path)} (conda), which only a build inside the image can install`;
  if (hasAptFile(spec)) return `it has ${APT_FILE}, whose Debian packages only a build inside the image can install`;
  if (hasOwnDockerfile(spec)) {
    const own = fs.readFileSync(path.join(spec.artifact.dir, DOCKERFILE), "utf8");
    if (own !== dockerfileFor(spec, baseImage, { apt: false })) return `it has its own ${DOCKERFILE}, which differs from the generated one`;
  }
  return undefined;
}

/** The builder `auto` resolves to for `spec`: oci unless the artifact needs Docker; with `docker` chosen or needed, the reason. */
export function chooseBuilder(spec: JobSpec, chosen: "auto" | "oci" | "docker", baseImage: string): { builder: "oci" | "docker"; reason?: string } {
  if (chosen === "docker") return { builder: "docker", reason: "config.builder=docker" };
  const reason = needsDocker(spec, baseImage);
  if (chosen === "oci" && reason) throw new UserError(`config.builder=oci cannot build this artifact: ${reason}.`, "Use config.builder=docker (or auto) with a Docker daemon running.");
  return reason ? { builder: "docker", reason } : { builder: "oci" };
}

export interface BuildRequest extends Pick<FitRequest, "artifact" | "entry" | "envfile" | "config"> {
  to: string;
  credentials?: Credentials;
  insecure?: readonly string[];
}

/** Build and push the image of `request.artifact` to `request.to` with no Docker. */
export async function build(request: BuildRequest, ctx: Context): Promise<OciBuildResult> {
  const { settings, problems } = validateSettings(buildSchema, request.config ?? {}, "alekseylearn build (the SageMaker backend's image settings)");
  if (problems.length) throw new UserError(problems.join("; ") + ".");
  const spec = buildSpec(
    { artifact: request.artifact, backend: "local", inputs: {}, config: {}, hyperparameters: {}, ...(request.entry ? { entry: request.entry } : {}), ...(request.envfile ? { envfile: request.envfile } : {}) },
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
