/**
 * The job's image in ECR: built with the local Docker, its repository created
 * when missing, pushed with a login that never touches a command line, a log
 * or the user's Docker config, and referred to by digest. An image already in
 * the registry (same image ID, its manifest still there) is not pushed again.
 */
import type { Context } from "../../context.js";
import { failure } from "../../errors.js";
import { buildTrainingImage, SAGEMAKER_PLATFORM } from "../../package/container.js";
import { pushBuiltImage, registryOverride, unusableImageHint, type PushedImage } from "../../package/registry.js";
import type { SageMakerSpec } from "./schema.js";
import { awsError, awsFor, errorName } from "./aws.js";
import { baseImageFor, imageName } from "../../package/image.js";
import { assembleForRegistry, pushAssembled } from "../../package/oci/build.js";
import { chooseBuilder, resolveBuilder } from "../../package/oci/choose.js";
import { createRepositoryRequest, isGpuInstance, repositoryName } from "./plan.js";

/** The repository's URI, or undefined when there is no such repository. */
export async function findRepository(name: string, ctx: Context): Promise<string | undefined> {
  const { client, sdk } = await (await awsFor(ctx)).ecr();
  try {
    const found = await client.send(new sdk.DescribeRepositoriesCommand({ repositoryNames: [name] }), { abortSignal: ctx.signal });
    return found.repositories?.[0]?.repositoryUri;
  } catch (err) {
    if (errorName(err) === "RepositoryNotFoundException") return undefined;
    throw awsError(err, `looking up the ECR repository ${name}`);
  }
}

/** Create the repository (and say so); returns its URI. */
async function createRepository(name: string, ctx: Context): Promise<string> {
  const { client, sdk } = await (await awsFor(ctx)).ecr();
  ctx.reporter.info(`Creating the ECR repository ${name}: this artifact has not been pushed from this account and region before.`);
  try {
    const made = await client.send(new sdk.CreateRepositoryCommand(createRepositoryRequest(name)), { abortSignal: ctx.signal });
    if (!made.repository?.repositoryUri) throw failure(`ECR created ${name} but gave no URI for it.`);
    return made.repository.repositoryUri;
  } catch (err) {
    throw awsError(err, `creating the ECR repository ${name}`);
  }
}

/** Remove a repository this run created (and left empty), saying so; a failure to do so is only reported. */
async function deleteRepository(name: string, ctx: Context): Promise<void> {
  const { client, sdk } = await (await awsFor(ctx)).ecr();
  try {
    await client.send(new sdk.DeleteRepositoryCommand({ repositoryName: name, force: true }));
    ctx.reporter.info(`Removed the ECR repository ${name} again: nothing was pushed to it.`);
  } catch (err) {
    ctx.reporter.warn(`Could not remove the empty ECR repository ${name}: ${(err as Error).message}`);
  }
}

/** ECR's registry token, as `AWS:password` in base64, and the password alone. */
async function authorization(ctx: Context): Promise<{ token: string; user: string; password: string; registry: string }> {
  const { client, sdk } = await (await awsFor(ctx)).ecr();
  try {
    const answer = await client.send(new sdk.GetAuthorizationTokenCommand({}), { abortSignal: ctx.signal });
    const token = answer.authorizationData?.[0]?.authorizationToken;
    // proxyEndpoint: https://ACCOUNT.dkr.ecr.REGION.amazonaws.com, the registry the token is for.
    const registry = (answer.authorizationData?.[0]?.proxyEndpoint ?? "").replace(/^https?:\/\//, "");
    if (!token) throw failure("ECR gave no authorization token.");
    const decoded = Buffer.from(token, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    return { token, user: decoded.slice(0, colon), password: decoded.slice(colon + 1), registry };
  } catch (err) {
    throw awsError(err, "asking ECR for a registry login (ecr:GetAuthorizationToken)");
  }
}

/**
 * Build the job's image and put it in ECR; returns it by digest. ECR is asked
 * its read-only questions while Docker builds, but nothing is created or pushed
 * until the build has succeeded and `gate` (the caller's own checks) has
 * resolved true: a Dockerfile that does not build, or a missing role, leaves
 * nothing behind in AWS.
 */
export async function pushTrainingImage(
  spec: SageMakerSpec,
  ctx: Context,
  options: { gate?: Promise<boolean>; onBuildStarted?: () => void } = {},
): Promise<PushedImage> {
  const repository = repositoryName(spec);
  const gpu = isGpuInstance(spec.settings.instance_type);
  const base = baseImageFor(spec, spec.settings.base_image, gpu);
  if (chooseBuilder(spec, spec.settings.builder, base).builder === "oci") {
    // No Docker: ECR is asked its questions while the image is assembled; nothing is created or pushed before the gate.
    const found = findRepository(repository, ctx);
    const authorized = authorization(ctx);
    for (const pending of [found, authorized]) pending.catch(() => {});
    options.onBuildStarted?.();
    const existing = await found;
    // The registry host (ECR's, or ALEKSEYLEARN_REGISTRY's) before the repository exists: its URI's host part is the account's registry.
    const auth = await authorized;
    const host = registryOverride(existing ?? `${auth.registry}/${repository}`, ctx.env).split("/")[0]!;
    const assembled = await assembleForRegistry(spec, base, host, { user: auth.user, password: auth.password }, ctx);
    if (assembled) {
      if (!(await (options.gate ?? Promise.resolve(true)))) throw failure("Stopped before pushing: the checks before it failed.");
      const uri = registryOverride(existing ?? (await createRepository(repository, ctx)), ctx.env);
      try {
        return await pushAssembled(assembled, uri, ctx);
      } catch (err) {
        if (!existing) await deleteRepository(repository, ctx);
        throw err;
      }
    }
  } else if (spec.settings.builder === "auto") {
    await resolveBuilder(spec, "auto", base, ctx);
  }
  const local = `${imageName(spec)}:latest`;
  let found: Promise<string | undefined> | undefined;
  let authorized: Promise<{ token: string; user: string; password: string; registry: string }> | undefined;
  // Loading an SDK module holds the one JavaScript thread, so ECR is asked only once Docker runs on its own.
  const askEcr = (): void => {
    found = findRepository(repository, ctx);
    authorized = authorization(ctx);
    for (const pending of [found, authorized]) pending.catch(() => {}); // awaited below; a failure must not count as unhandled meanwhile
    options.onBuildStarted?.();
  };
  const built = await buildTrainingImage(spec, { tag: local, gpu, baseImage: spec.settings.base_image, platform: SAGEMAKER_PLATFORM, onStarted: askEcr }, ctx);
  const gate = options.gate ?? Promise.resolve(true);
  if (!(await gate)) throw failure("Stopped before pushing: the checks before it failed.");
  const existing = await found!;
  const uri = registryOverride(existing ?? (await createRepository(repository, ctx)), ctx.env);
  const auth = await authorized!;
  try {
    const pushed = await pushBuiltImage(
      built.imageId,
      {
        backend: "sagemaker",
        service: "SageMaker",
        uri,
        user: auth.user,
        password: auth.password,
        unusableHint: unusableImageHint(spec),
      },
      ctx,
    );
    return { image: `${uri}@${pushed.digest}`, stepsRun: built.stepsRun, layersPushed: pushed.layersPushed, reused: pushed.reused };
  } catch (err) {
    // A repository made for this push and left empty would be half-made remote state: remove it.
    if (!existing) await deleteRepository(repository, ctx);
    throw err;
  }
}
