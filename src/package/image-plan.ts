/**
 * What an image build would use and make, read without building: the files
 * of the build context, and the Dockerfile steps that make layers. For
 * `fit --dry-run`.
 */
import fs from "node:fs";
import path from "node:path";
import type { JobSpec } from "../spec/types.js";
import { codePaths } from "./bundle.js";
import { isIgnored, parseDockerignore } from "./dockerignore.js";
import { DOCKERFILE, environmentInContext, hasOwnDockerfile, imageFiles } from "./image.js";

/** The files of `dir` a job would ship (relative, with /, sorted): its code, less what `.dockerignore` excludes. Folders are implied by their files. */
export function shippedFiles(dir: string): string[] {
  const ignoreFile = path.join(dir, ".dockerignore");
  const ignore = fs.existsSync(ignoreFile) ? parseDockerignore(fs.readFileSync(ignoreFile, "utf8")) : [];
  const excluded = (relative: string): boolean => relative !== DOCKERFILE && isIgnored(ignore, relative);
  return codePaths(dir, excluded).filter((relative) => !fs.statSync(path.join(dir, relative)).isDirectory());
}

/** The files of the image's build context: the shipped files, the generated image files the folder lacks, and an environment file from outside it. */
export function buildContextFiles(spec: JobSpec, baseImage: string): string[] {
  const files = new Set(shippedFiles(spec.artifact.dir));
  if (!hasOwnDockerfile(spec)) for (const name of Object.keys(imageFiles(spec, baseImage))) files.add(name);
  const envFile = environmentInContext(spec);
  if (envFile) files.add(envFile);
  return [...files].sort();
}

/** The Dockerfile steps that make the image's layers (RUN, COPY, ADD), the folder's own Dockerfile when it has one. */
export function imageLayers(spec: JobSpec, baseImage: string): string[] {
  const text = hasOwnDockerfile(spec) ? fs.readFileSync(path.join(spec.artifact.dir, DOCKERFILE), "utf8") : imageFiles(spec, baseImage)[DOCKERFILE]!;
  // Continuation lines join their step, as Docker reads them.
  const steps = text.replace(/\\\r?\n\s*/g, " ").split(/\r?\n/).map((line) => line.trim());
  return steps.filter((line) => /^(RUN|COPY|ADD)\s/i.test(line));
}
