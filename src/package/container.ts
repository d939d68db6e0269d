/**
 * Building a job's training image with the local Docker: the same image for
 * SageMaker and for the local container runner (`--config.runner=docker`).
 */
import fs from "node:fs";
import path from "node:path";
import type { Context } from "../context.js";
import type { JobSpec } from "../spec/types.js";
import { buildImage, requireDaemon, type BuildResult } from "./docker.js";
import { baseImageFor, hasOwnDockerfile, writeBuildContext } from "./image.js";

/** pip's index settings worth passing into a build: http(s) ones without credentials (a build argument is kept in the image's history). */
export function pipBuildArgs(env: Context["env"], warn: (message: string) => void): Record<string, string> {
  const args: Record<string, string> = {};
  for (const key of ["PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL"]) {
    const value = env[key];
    if (!value) continue;
    let url: URL | undefined;
    try {
      url = new URL(value);
    } catch {
      url = undefined;
    }
    if (!url || !/^https?:$/.test(url.protocol)) continue; // a file:// index means nothing inside the container
    if (url.username || url.password) {
      warn(`${key} holds credentials, so it is not passed into the image build (it would be kept in the image's history); the build uses pip's default index.`);
      continue;
    }
    args[key] = value;
  }
  return args;
}

/** Build the training image of `spec` as `tag`; progress goes to the reporter and the whole build log to a file under the cache. */
export async function buildTrainingImage(spec: JobSpec, options: { tag: string; gpu: boolean; onStarted?: () => void }, ctx: Context): Promise<BuildResult & { baseImage: string }> {
  await requireDaemon(ctx.env);
  const baseImage = baseImageFor(spec, options.gpu);
  const dir = path.join(ctx.cacheDir, "build");
  fs.mkdirSync(dir, { recursive: true });
  const stem = options.tag.replace(/[^A-Za-z0-9._-]+/g, "_");
  const contextTar = path.join(dir, `${stem}.tar`);
  const logFile = path.join(dir, `${stem}.log`);
  await writeBuildContext(spec, baseImage, contextTar, { env: ctx.env, reporter: ctx.reporter });
  const log = fs.createWriteStream(logFile);
  let steps = 0;
  ctx.reporter.info(`Building the image ${options.tag} on ${hasOwnDockerfile(spec) ? `${spec.artifact.dir}/Dockerfile` : baseImage} (log: ${logFile})…`);
  try {
    const built = await buildImage({
      contextTar,
      tag: options.tag,
      buildArgs: pipBuildArgs(ctx.env, (message) => ctx.reporter.warn(message)),
      env: ctx.env,
      signal: ctx.signal,
      ...(options.onStarted ? { onStarted: options.onStarted } : {}),
      onLine: (line) => {
        log.write(line + "\n");
        // Steps show as a progress bar on a terminal; the full build output is in the log file.
        const step = /^Step (\d+)\/(\d+) : /.exec(line);
        if (step) {
          steps = Number(step[2]);
          ctx.reporter.progress?.(`Building ${options.tag}`, Number(step[1]) - 1, steps, "files");
        }
      },
    });
    if (steps) ctx.reporter.progress?.(`Building ${options.tag}`, steps, steps, "files");
    ctx.reporter.info(built.stepsRun === 0 ? "Image unchanged: every step came from Docker's cache." : `Image built: ${built.stepsRun} step(s) ran, ${built.stepsCached} from the cache.`);
    return { ...built, baseImage };
  } finally {
    await new Promise((resolve) => log.end(resolve));
    fs.rmSync(contextTar, { force: true });
  }
}
