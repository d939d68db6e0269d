/**
 * Which builder makes a job's image (`config.builder`): `oci` (no Docker) or
 * `docker`. `auto` is oci unless the artifact needs a build inside the image,
 * and then Docker when a daemon answers, else a clear stop naming why.
 */
import fs from "node:fs";
import path from "node:path";
import type { Context } from "../../context.js";
import { UserError } from "../../errors.js";
import type { JobSpec } from "../../spec/types.js";
import { requireDaemon } from "../docker.js";
import { APT_FILE, DOCKERFILE, dockerfileFor, hasAptFile, hasOwnDockerfile } from "../image.js";

export type BuilderChoice = "auto" | "oci" | "docker";

/** Why `spec` needs Docker to build its image (a conda environment, apt.txt, its own Dockerfile unlike the generated one), or undefined when it does not. */
export function needsDocker(spec: JobSpec, baseImage: string): string | undefined {
  if (spec.environment?.kind === "conda")
    return `its environment is ${path.basename(spec.environment.path)} (conda), which only a build inside the image can install`;
  if (hasAptFile(spec)) return `it has ${APT_FILE}, whose Debian packages only a build inside the image can install`;
  if (hasOwnDockerfile(spec)) {
    const own = fs.readFileSync(path.join(spec.artifact.dir, DOCKERFILE), "utf8");
    if (own !== dockerfileFor(spec, baseImage, { apt: false })) return `it has its own ${DOCKERFILE}, which differs from the generated one`;
  }
  return undefined;
}

/** The builder for `spec` without asking Docker (pure but for reading the folder): the one chosen, or for `auto` oci unless the artifact needs Docker. */
export function chooseBuilder(spec: JobSpec, chosen: BuilderChoice, baseImage: string): { builder: "oci" | "docker"; reason?: string } {
  if (chosen === "docker") return { builder: "docker", reason: "config.builder=docker" };
  const reason = needsDocker(spec, baseImage);
  if (chosen === "oci" && reason)
    throw new UserError(`config.builder=oci cannot build this artifact: ${reason}.`, "Use config.builder=docker (or auto) with a Docker daemon running.");
  return reason ? { builder: "docker", reason } : { builder: "oci" };
}

/** The stop when the artifact needs Docker (`reason`) and none answers. */
export function dockerNeeded(reason: string, said: string): UserError {
  return new UserError(
    `This artifact needs Docker to build its image (${reason}), and no Docker daemon answers (${said}).`,
    "Start Docker and run again with config.builder=docker (or auto), or remove what needs Docker to build without it.",
  );
}

/** The builder to use: `chooseBuilder`'s, with `auto`'s fall-back to Docker checked against the daemon. */
export async function resolveBuilder(spec: JobSpec, chosen: BuilderChoice, baseImage: string, ctx: Pick<Context, "env">): Promise<"oci" | "docker"> {
  const choice = chooseBuilder(spec, chosen, baseImage);
  if (choice.builder === "docker" && chosen === "auto") {
    await requireDaemon(ctx.env).catch((err: Error) => {
      throw dockerNeeded(choice.reason!, err.message);
    });
  }
  return choice.builder;
}

/** An error of the daemonless build that Docker could get past (`fallback` says why: a base image only the daemon has, a requirement with no wheel). */
export function withFallback<E extends Error>(err: E, fallback: string): E & { fallback: string } {
  return Object.assign(err, { fallback });
}

/**
 * Run the daemonless `assemble`; with `auto`, an error Docker could get past
 * turns into `undefined` (build with Docker) when a daemon answers, and into
 * a clear stop naming the reason when none does.
 */
export async function assembleOrFallBack<T>(chosen: BuilderChoice, assemble: () => Promise<T>, ctx: Pick<Context, "env" | "reporter">): Promise<T | undefined> {
  try {
    return await assemble();
  } catch (err) {
    const reason = (err as { fallback?: string }).fallback;
    if (chosen !== "auto" || !reason) throw err;
    await requireDaemon(ctx.env).catch((daemon: Error) => {
      throw dockerNeeded(reason, daemon.message);
    });
    ctx.reporter.info(`Building the image with Docker: ${reason}.`);
    return undefined;
  }
}
