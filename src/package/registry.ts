/**
 * Pushing a built training image to a cloud's registry (ECR, Artifact
 * Registry), the same way for every backend: a login that never touches a
 * command line, a log or the user's Docker config; a tag of the image's own;
 * the pushed manifest read back, so an image the cloud cannot run is refused
 * before a job is made; and the image referred to by digest. An image already
 * in the registry (same image ID, its manifest still there) is not pushed again.
 */
import fs from "node:fs";
import path from "node:path";
import type { Context } from "../context.js";
import { failure } from "../errors.js";
import { SAGEMAKER_PLATFORM } from "./container.js";
import { docker, login, privateDockerConfig, pushImage } from "./docker.js";
import { hasOwnDockerfile } from "./image.js";
import { formatBytes } from "../text.js";
import type { JobSpec } from "../spec/types.js";

/** What submitting the image did, for the job record and the benchmarks. */
export interface PushedImage {
  /** REGISTRY/REPOSITORY@sha256:… */
  image: string;
  stepsRun: number;
  layersPushed: number;
  /** True when the registry already had this very image, so nothing was pushed. */
  reused: boolean;
}

/** The registry host of an image path (`123.dkr.ecr.REGION.amazonaws.com/name`, `REGION-docker.pkg.dev/P/R/I` → its host). */
export function hostOf(uri: string): string {
  return uri.split("/")[0]!;
}

/**
 * ALEKSEYLEARN_REGISTRY (host:port) stands in for the cloud's registry host
 * (ECR's, Artifact Registry's): for a registry mirror or proxy, and in tests,
 * where the registry is a local one.
 */
export function registryOverride(uri: string, env: Context["env"]): string {
  const override = env.ALEKSEYLEARN_REGISTRY;
  return override ? `${override}/${uri.split("/").slice(1).join("/")}` : uri;
}

/** The registry's scheme: plain http only for a loopback registry (the tests' and a local mirror's). */
function schemeOf(host: string): string {
  return /^(localhost|127\.\d+\.\d+\.\d+)(:\d+)?$/.test(host) ? "http" : "https";
}

/** Docker's image manifest (schema 2), the manifest type SageMaker and Vertex AI pull. */
export const DOCKER_MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json";
/** OCI's image manifest, which Docker pushes from its containerd image store. */
export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
/** Every manifest type a push may leave, for the Accept header of a read-back. */
const ANY_MANIFEST = [
  DOCKER_MANIFEST_V2,
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.oci.image.index.v1+json",
].join(", ");

/** `user:password` as the registry API's Basic authorization (ECR's token is that already, in base64). */
export function basicAuthorization(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
}

/** Is `digest` of `repository` in the registry? (HEAD of its manifest.) */
async function registryHas(host: string, repository: string, digest: string, authorization: string): Promise<boolean> {
  try {
    const response = await fetch(`${schemeOf(host)}://${host}/v2/${repository}/manifests/${digest}`, {
      method: "HEAD",
      headers: { Authorization: authorization, Accept: ANY_MANIFEST },
    });
    return response.ok;
  } catch {
    return false;
  }
}

/** A pushed image as the registry gives it back: why the cloud could not run it (empty when it can), and its layers. */
export interface ReadBack {
  problems: string[];
  /** Each layer's diff ID (the digest of its uncompressed bytes, from the config's rootfs) and its size in the registry (compressed), in order; empty when unknown. */
  layers: Array<{ diffId: string; size: number }>;
}

/**
 * Read the pushed image `digest` back from the registry: why `service`
 * (SageMaker, Vertex AI) could not run it — its manifest type (Docker's v2
 * manifest only, not an OCI manifest, nor an index such as BuildKit's
 * attestations make) and the platform in its config (linux/amd64 only) —
 * and the size of each of its layers, for the push's summary.
 */
export async function readPushedImage(
  host: string,
  repository: string,
  digest: string,
  authorization: string,
  service = "SageMaker",
  manifestTypes: readonly string[] = [DOCKER_MANIFEST_V2],
): Promise<ReadBack> {
  const base = `${schemeOf(host)}://${host}/v2/${repository}`;
  const headers = { Authorization: authorization };
  const answer = await fetch(`${base}/manifests/${digest}`, { headers: { ...headers, Accept: ANY_MANIFEST } });
  if (!answer.ok) return { problems: [`the registry does not give back its manifest (HTTP ${answer.status})`], layers: [] };
  const manifest = (await answer.json()) as {
    mediaType?: string;
    config?: { digest?: string };
    layers?: Array<{ size?: number }>;
    manifests?: Array<{ platform?: { os?: string; architecture?: string } }>;
  };
  const type = manifest.mediaType ?? answer.headers.get("content-type") ?? "";
  if (manifest.manifests) {
    const platforms = manifest.manifests.map((entry) => `${entry.platform?.os ?? "?"}/${entry.platform?.architecture ?? "?"}`);
    return {
      problems: [
        `it is an image index (${type}: ${platforms.join(", ")}), as BuildKit pushes with provenance attestations or for several platforms; ${service} needs one ${manifestTypes.join(" or ")}`,
      ],
      layers: [],
    };
  }
  const problems: string[] = [];
  if (!manifestTypes.includes(type)) problems.push(`its manifest is ${type || "of no declared type"}; ${service} pulls only ${manifestTypes.join(" or ")}`);
  let layers: ReadBack["layers"] = [];
  if (manifest.config?.digest) {
    const blob = await fetch(`${base}/blobs/${manifest.config.digest}`, { headers });
    if (!blob.ok) return { problems: [...problems, `the registry does not give back its config (HTTP ${blob.status})`], layers };
    const config = (await blob.json()) as { os?: string; architecture?: string; rootfs?: { diff_ids?: string[] } };
    const platform = `${config.os ?? "?"}/${config.architecture ?? "?"}`;
    if (platform !== SAGEMAKER_PLATFORM)
      problems.push(`it is built for ${platform}; ${service} training runs ${SAGEMAKER_PLATFORM} only (the job would fail with "exec format error")`);
    // The manifest's layers and the config's diff IDs are the same layers in the same order (the image spec's rootfs).
    const diffIds = config.rootfs?.diff_ids ?? [];
    if (diffIds.length === manifest.layers?.length) layers = diffIds.map((diffId, index) => ({ diffId, size: manifest.layers![index]!.size ?? 0 }));
  }
  return { problems, layers };
}

/** The push in one line: layers and bytes sent of all (pure); the bytes are the registry's compressed sizes, when known. */
export function pushSummary(pushedLayers: readonly string[], existing: number, layers: ReadBack["layers"]): string {
  const total = pushedLayers.length + existing;
  const sent = new Set(pushedLayers);
  // docker push names a layer by the first 12 hex digits of its diff ID.
  const bytes = (which: ReadBack["layers"]): number => which.reduce((sum, layer) => sum + layer.size, 0);
  const sentBytes = bytes(layers.filter((layer) => sent.has(layer.diffId.replace(/^sha256:/, "").slice(0, 12))));
  const size = layers.length ? ` (${formatBytes(sentBytes)} of ${formatBytes(bytes(layers))})` : "";
  return `${pushedLayers.length} of ${total} layer(s) sent${size}, ${existing} already there`;
}

/** Images pushed from this machine by `backend`: pushed repository URI → image ID → digest. */
function pushedFile(ctx: Context, backend: string): string {
  return path.join(ctx.cacheDir, backend, "pushed-images.json");
}

function readPushed(ctx: Context, backend: string): Record<string, Record<string, string>> {
  try {
    return JSON.parse(fs.readFileSync(pushedFile(ctx, backend), "utf8")) as Record<string, Record<string, string>>;
  } catch {
    return {};
  }
}

function rememberPushed(ctx: Context, backend: string, uri: string, imageId: string, digest: string): void {
  const file = pushedFile(ctx, backend);
  const pushed = readPushed(ctx, backend);
  pushed[uri] = { ...pushed[uri], [imageId]: digest };
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(pushed, null, 2) + "\n");
  fs.renameSync(tmp, file);
}

/** The tag an image is pushed under: `img-` and the start of its image ID (the digest of its config), unique per image (pure). */
export function imageTag(imageId: string): string {
  return `img-${imageId.replace(/^sha256:/, "").slice(0, 16)}`;
}

/** Where a built image goes, and how. */
export interface PushTarget {
  /** The backend (its cache of what it pushed). */
  backend: string;
  /** The cloud, in words, for messages (SageMaker, Vertex AI). */
  service: string;
  /** REGISTRY_HOST/REPOSITORY as pushed to (ALEKSEYLEARN_REGISTRY already applied). */
  uri: string;
  /** The registry login: the password goes to `docker login` on stdin only. */
  user: string;
  password: string;
  /** What to do when the cloud could not run what was pushed (the build's platform, Docker's image store). */
  unusableHint: string;
  /**
   * The Authorization header of the registry API's reads (the read-back, the look for an unchanged image); by default
   * `user:password` as Basic, which ECR documents. Artifact Registry documents `Bearer ACCESS_TOKEN` for its Docker API.
   */
  authorization?: string;
  /** The manifest types the cloud runs; by default Docker's v2 schema 2 only (SageMaker's documented requirement). */
  manifestTypes?: readonly string[];
}

/**
 * Push the built image `imageId` to `target`, unless the registry has it
 * already; returns its digest and what was sent. Throws, naming why, when the
 * pushed image is one `target.service` cannot run.
 */
export async function pushBuiltImage(imageId: string, target: PushTarget, ctx: Context): Promise<{ digest: string; layersPushed: number; reused: boolean }> {
  const host = hostOf(target.uri);
  const repository = target.uri.slice(host.length + 1);
  const authorization = target.authorization ?? basicAuthorization(target.user, target.password);
  const known = readPushed(ctx, target.backend)[target.uri]?.[imageId];
  if (known && (await registryHas(host, repository, known, authorization))) {
    ctx.reporter.info(`Image unchanged and already in ${target.uri}: nothing to push.`);
    return { digest: known, layersPushed: 0, reused: true };
  }
  // A tag of its own for every image (never `latest`, which an immutable-tag repository refuses to move): its image ID, the digest of its config.
  const tagged = `${target.uri}:${imageTag(imageId)}`;
  const tag = await docker(["tag", imageId, tagged], { env: ctx.env });
  if (tag.code !== 0) throw failure(`docker tag ${tagged} failed.`, undefined, tag.tail.slice(-3));
  const config = await privateDockerConfig(ctx.env);
  try {
    await login(host, target.user, target.password, config.env);
    ctx.reporter.info(`Pushing ${tagged}…`);
    // Each layer as it is done: on a terminal the line under the step, elsewhere one plain line each.
    const pushed = await pushImage(tagged, config.env, (step) => ctx.reporter.detail?.(`layer ${step.done}/${step.total}: ${step.layer} ${step.status}`));
    const { problems, layers } = await readPushedImage(host, repository, pushed.digest, authorization, target.service, target.manifestTypes);
    ctx.reporter.info(`Pushed ${target.uri}@${pushed.digest}: ${pushSummary(pushed.pushedLayers, pushed.layersExisting, layers)}.`);
    if (problems.length)
      throw failure(
        `${target.service} cannot run the image pushed as ${target.uri}@${pushed.digest}: ${problems.join("; ")}. No job was created.`,
        target.unusableHint,
      );
    rememberPushed(ctx, target.backend, target.uri, imageId, pushed.digest);
    return { digest: pushed.digest, layersPushed: pushed.layersPushed, reused: false };
  } finally {
    config.dispose();
  }
}

/** What to do about an image the cloud cannot run: build for linux/amd64, with a base image made for it. */
export function unusableImageHint(spec: JobSpec): string {
  return `alekseylearn builds with --platform ${SAGEMAKER_PLATFORM} and Docker's classic builder (or BuildKit with --provenance=false --sbom=false); an image built on another platform anyway comes from a base image made for it (FROM in ${hasOwnDockerfile(spec) ? "your Dockerfile" : "config.base_image"}): pick a ${SAGEMAKER_PLATFORM} one. With Docker Desktop's containerd image store, which pushes OCI manifests, turn that store off or set DOCKER_BUILDKIT=0.`;
}
