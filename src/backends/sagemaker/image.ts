/**
 * The job's image in ECR: built with the local Docker, its repository created
 * when missing, pushed with a login that never touches a command line, a log
 * or the user's Docker config, and referred to by digest. An image already in
 * the registry (same image ID, its manifest still there) is not pushed again.
 */
import fs from "node:fs";
import path from "node:path";
import type { Context } from "../../context.js";
import { failure } from "../../errors.js";
import { buildTrainingImage, SAGEMAKER_PLATFORM } from "../../package/container.js";
import { docker, login, privateDockerConfig, pushImage } from "../../package/docker.js";
import type { SageMakerSpec } from "./schema.js";
import { awsError, awsFor, errorName } from "./aws.js";
import { hasOwnDockerfile, imageName, isGpuInstance } from "../../package/image.js";
import { createRepositoryRequest, repositoryName } from "./plan.js";

/** What submitting the image did, for the job record and the benchmarks. */
export interface PushedImage {
  /** REGISTRY/REPOSITORY@sha256:… */
  image: string;
  stepsRun: number;
  layersPushed: number;
  /** True when the registry already had this very image, so nothing was pushed. */
  reused: boolean;
}

/** The registry host of a repository URI (`123.dkr.ecr.REGION.amazonaws.com/name` → its host). */
function hostOf(uri: string): string {
  return uri.split("/")[0]!;
}

/**
 * ALEKSEYLEARN_REGISTRY (host:port) stands in for ECR's registry host: for a
 * registry mirror or proxy, and in tests, where the ECR API is moto's and the
 * registry a local one.
 */
export function registryOverride(uri: string, env: Context["env"]): string {
  const override = env.ALEKSEYLEARN_REGISTRY;
  return override ? `${override}/${uri.split("/").slice(1).join("/")}` : uri;
}

/** The registry's scheme: plain http only for a loopback registry (the tests' and a local mirror's). */
function schemeOf(host: string): string {
  return /^(localhost|127\.\d+\.\d+\.\d+)(:\d+)?$/.test(host) ? "http" : "https";
}

/** Docker's image manifest (schema 2), the one manifest type SageMaker pulls. */
export const DOCKER_MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json";
/** Every manifest type a push may leave, for the Accept header of a read-back. */
const ANY_MANIFEST = [
  DOCKER_MANIFEST_V2,
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.oci.image.index.v1+json",
].join(", ");

/** Is `digest` of `repository` in the registry? (HEAD of its manifest with ECR's token.) */
async function registryHas(host: string, repository: string, digest: string, token: string): Promise<boolean> {
  try {
    const response = await fetch(`${schemeOf(host)}://${host}/v2/${repository}/manifests/${digest}`, {
      method: "HEAD",
      headers: { Authorization: `Basic ${token}`, Accept: ANY_MANIFEST },
    });
    return response.ok;
  } catch {
    return false;
  }
}

/**
 * Why SageMaker could not run the pushed image `digest`, read back from the
 * registry: its manifest type (SageMaker pulls Docker's v2 manifest only, not
 * an OCI manifest, nor an index such as BuildKit's attestations make) and the
 * platform in its config (linux/amd64 only); empty when it can run it.
 */
export async function pushedImageProblems(host: string, repository: string, digest: string, token: string): Promise<string[]> {
  const base = `${schemeOf(host)}://${host}/v2/${repository}`;
  const headers = { Authorization: `Basic ${token}` };
  const answer = await fetch(`${base}/manifests/${digest}`, { headers: { ...headers, Accept: ANY_MANIFEST } });
  if (!answer.ok) return [`the registry does not give back its manifest (HTTP ${answer.status})`];
  const manifest = (await answer.json()) as {
    mediaType?: string;
    config?: { digest?: string };
    manifests?: Array<{ platform?: { os?: string; architecture?: string } }>;
  };
  const type = manifest.mediaType ?? answer.headers.get("content-type") ?? "";
  if (manifest.manifests) {
    const platforms = manifest.manifests.map((entry) => `${entry.platform?.os ?? "?"}/${entry.platform?.architecture ?? "?"}`);
    return [
      `it is an image index (${type}: ${platforms.join(", ")}), as BuildKit pushes with provenance attestations or for several platforms; SageMaker needs one ${DOCKER_MANIFEST_V2}`,
    ];
  }
  const problems: string[] = [];
  if (type !== DOCKER_MANIFEST_V2) problems.push(`its manifest is ${type || "of no declared type"}; SageMaker pulls only ${DOCKER_MANIFEST_V2}`);
  if (manifest.config?.digest) {
    const blob = await fetch(`${base}/blobs/${manifest.config.digest}`, { headers });
    if (!blob.ok) return [...problems, `the registry does not give back its config (HTTP ${blob.status})`];
    const config = (await blob.json()) as { os?: string; architecture?: string };
    const platform = `${config.os ?? "?"}/${config.architecture ?? "?"}`;
    if (platform !== SAGEMAKER_PLATFORM)
      problems.push(`it is built for ${platform}; SageMaker training runs ${SAGEMAKER_PLATFORM} only (the job would fail with "exec format error")`);
  }
  return problems;
}

/** Images pushed from this machine: repository URI → image ID → digest. */
function pushedFile(ctx: Context): string {
  return path.join(ctx.cacheDir, "sagemaker", "pushed-images.json");
}

function readPushed(ctx: Context): Record<string, Record<string, string>> {
  try {
    return JSON.parse(fs.readFileSync(pushedFile(ctx), "utf8")) as Record<string, Record<string, string>>;
  } catch {
    return {};
  }
}

function rememberPushed(ctx: Context, uri: string, imageId: string, digest: string): void {
  const pushed = readPushed(ctx);
  pushed[uri] = { ...pushed[uri], [imageId]: digest };
  fs.mkdirSync(path.dirname(pushedFile(ctx)), { recursive: true });
  const tmp = `${pushedFile(ctx)}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(pushed, null, 2) + "\n");
  fs.renameSync(tmp, pushedFile(ctx));
}

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
async function authorization(ctx: Context): Promise<{ token: string; user: string; password: string }> {
  const { client, sdk } = await (await awsFor(ctx)).ecr();
  try {
    const answer = await client.send(new sdk.GetAuthorizationTokenCommand({}), { abortSignal: ctx.signal });
    const token = answer.authorizationData?.[0]?.authorizationToken;
    if (!token) throw failure("ECR gave no authorization token.");
    const decoded = Buffer.from(token, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    return { token, user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
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
  const local = `${imageName(spec)}:latest`;
  let found: Promise<string | undefined> | undefined;
  let authorized: Promise<{ token: string; user: string; password: string }> | undefined;
  // Loading an SDK module holds the one JavaScript thread, so ECR is asked only once Docker runs on its own.
  const askEcr = (): void => {
    found = findRepository(repository, ctx);
    authorized = authorization(ctx);
    for (const pending of [found, authorized]) pending.catch(() => {}); // awaited below; a failure must not count as unhandled meanwhile
    options.onBuildStarted?.();
  };
  const built = await buildTrainingImage(
    spec,
    { tag: local, gpu: isGpuInstance(spec.settings.instance_type), baseImage: spec.settings.base_image, platform: SAGEMAKER_PLATFORM, onStarted: askEcr },
    ctx,
  );
  const gate = options.gate ?? Promise.resolve(true);
  if (!(await gate)) throw failure("Stopped before pushing: the checks before it failed.");
  const existing = await found!;
  const uri = registryOverride(existing ?? (await createRepository(repository, ctx)), ctx.env);
  const auth = await authorized!;
  const host = hostOf(uri);
  const known = readPushed(ctx)[uri]?.[built.imageId];
  if (known && (await registryHas(host, repository, known, auth.token))) {
    ctx.reporter.info(`Image unchanged and already in ${uri}: nothing to push.`);
    return { image: `${uri}@${known}`, stepsRun: built.stepsRun, layersPushed: 0, reused: true };
  }
  // A tag of its own for every image (never `latest`, which an immutable-tag repository refuses to move): its image ID, the digest of its config.
  const tagged = `${uri}:${imageTag(built.imageId)}`;
  const tag = await docker(["tag", built.imageId, tagged], { env: ctx.env });
  if (tag.code !== 0) throw failure(`docker tag ${tagged} failed.`, undefined, tag.tail.slice(-3));
  const config = await privateDockerConfig(ctx.env);
  try {
    await login(host, auth.user, auth.password, config.env);
    ctx.reporter.info(`Pushing ${tagged}…`);
    const pushed = await pushImage(tagged, config.env);
    ctx.reporter.info(`Pushed ${uri}@${pushed.digest}: ${pushed.layersPushed} layer(s) sent, ${pushed.layersExisting} already there.`);
    const problems = await pushedImageProblems(host, repository, pushed.digest, auth.token);
    if (problems.length) {
      throw failure(
        `SageMaker cannot run the image pushed as ${uri}@${pushed.digest}: ${problems.join("; ")}. No job was created.`,
        `alekseylearn builds with --platform ${SAGEMAKER_PLATFORM} and Docker's classic builder (or BuildKit with --provenance=false --sbom=false); an image built on another platform anyway comes from a base image made for it (FROM in ${hasOwnDockerfile(spec) ? "your Dockerfile" : "config.base_image"}): pick a ${SAGEMAKER_PLATFORM} one. With Docker Desktop's containerd image store, which pushes OCI manifests, turn that store off or set DOCKER_BUILDKIT=0.`,
      );
    }
    rememberPushed(ctx, uri, built.imageId, pushed.digest);
    return { image: `${uri}@${pushed.digest}`, stepsRun: built.stepsRun, layersPushed: pushed.layersPushed, reused: false };
  } catch (err) {
    // A repository made for this push and left empty would be half-made remote state: remove it.
    if (!existing) await deleteRepository(repository, ctx);
    throw err;
  } finally {
    config.dispose();
  }
}

/** The tag an image is pushed under: `img-` and the start of its image ID (the digest of its config), unique per image (pure). */
export function imageTag(imageId: string): string {
  return `img-${imageId.replace(/^sha256:/, "").slice(0, 16)}`;
}
