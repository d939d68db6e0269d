/**
 * What an image build would use and make, read without building: the files
 * of the build context, and the Dockerfile steps that make layers. For
 * `fit --dry-run`.
 */
import fs from "node:fs";
import path from "node:path";
import type { JobSpec } from "../spec/types.js";
import { codePaths } from "./bundle.js";
import type { Context } from "../context.js";
import { reportShipment, shippedFiles, type Shipment } from "./ship.js";
import { contextRuntimeFiles, DOCKERFILE, environmentInContext, hasOwnDockerfile, imageFiles } from "./image.js";

/** Every file of `dir` that is code or data (no caches, environments or outputs): what a job run on this machine sees of its folder. */
export function folderFiles(dir: string): string[] {
  return codePaths(dir).filter((relative) => !fs.statSync(path.join(dir, relative)).isDirectory());
}

/** What of `spec`'s folder ships to a backend, by the one rule set of `ship.ts` (secrets named in `shipment.secrets`). */
export function jobShipment(spec: JobSpec, env: Readonly<Record<string, string | undefined>>): Shipment {
  const envFile = environmentInContext(spec);
  return shippedFiles(spec.artifact.dir, { env, entry: spec.artifact.entry, requirements: envFile && !envFile.startsWith(".alekseylearn/") ? [envFile] : [] });
}

/** The files of the image's build context: the shipped files, the generated Dockerfile the folder lacks, the job runtime, and an environment file from outside it. */
export function buildContextFiles(spec: JobSpec, baseImage: string, shipment: Shipment): string[] {
  const files = new Set(shipment.files);
  if (!hasOwnDockerfile(spec)) for (const name of Object.keys(imageFiles(spec, baseImage))) files.add(name);
  for (const name of Object.keys(contextRuntimeFiles())) files.add(name);
  const envFile = environmentInContext(spec);
  if (envFile) files.add(envFile);
  return [...files].sort();
}

/** The Dockerfile steps that make the image's layers (RUN, COPY, ADD), the folder's own Dockerfile when it has one. */
export function imageLayers(spec: JobSpec, baseImage: string): string[] {
  const text = hasOwnDockerfile(spec) ? fs.readFileSync(path.join(spec.artifact.dir, DOCKERFILE), "utf8") : imageFiles(spec, baseImage)[DOCKERFILE]!;
  // Continuation lines join their step, as Docker reads them.
  const steps = text
    .replace(/\\\r?\n\s*/g, " ")
    .split(/\r?\n/)
    .map((line) => line.trim());
  return steps.filter((line) => /^(RUN|COPY|ADD)\s/i.test(line));
}

/**
 * The files and image a cloud submission of `spec` would build on `baseImage` for `platform`, by the one rule set of
 * `ship.ts`; the secrets it keeps out are named through `reporter`.
 */
export function imagePlan(
  spec: JobSpec,
  baseImage: string,
  platform: string,
  ctx: Pick<Context, "env" | "reporter">,
): { files: string[]; image: { base: string; platform: string; layers: string[] } } {
  const shipment = jobShipment(spec, ctx.env);
  reportShipment(
    shipment,
    (message) => ctx.reporter.warn(message),
    (message) => ctx.reporter.info(message),
  );
  return { files: buildContextFiles(spec, baseImage, shipment), image: { base: baseImage, platform, layers: imageLayers(spec, baseImage) } };
}
