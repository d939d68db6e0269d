/**
 * A small image model, enough to assemble a training image without Docker:
 * layers (digest, diffID, size, media type, and a way to open their bytes),
 * an image as a base plus appended layers and config edits, and the
 * manifests and indexes of Docker's v2 schema 2 and of OCI read as one.
 *
 * Image manifest v2 schema 2: github.com/distribution/distribution docs/spec/manifest-v2-2.md;
 * OCI: github.com/opencontainers/image-spec (manifest.md, image-index.md, config.md).
 */
import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import { UserError } from "../../errors.js";

export const MEDIA = {
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  dockerLayer: "application/vnd.docker.image.rootfs.diff.tar.gzip",
  dockerForeignLayer: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  ociLayer: "application/vnd.oci.image.layer.v1.tar",
  ociLayerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  ociLayerZstd: "application/vnd.oci.image.layer.v1.tar+zstd",
} as const;

/** Every manifest type this model reads, for a registry's Accept header. */
export const MANIFEST_TYPES = [MEDIA.dockerManifest, MEDIA.dockerList, MEDIA.ociManifest, MEDIA.ociIndex] as const;

/** The platform every training service here runs. */
export const TARGET_PLATFORM = { os: "linux", architecture: "amd64" } as const;

/** A content descriptor (manifest, config or layer reference). */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os?: string; architecture?: string; variant?: string };
  urls?: string[];
}

/** One layer: its compressed blob (digest, size, media type), the digest of its uncompressed tar (diffID), and its bytes. */
export interface Layer {
  digest: string;
  diffId: string;
  size: number;
  mediaType: string;
  /** The compressed bytes, as the registry stores them. */
  open(): Readable | Promise<Readable>;
  /** Where the blob lives already (registry host and repository), so a push to the same registry can mount it. */
  source?: { host: string; repository: string };
}

/** The parts of an image config (Docker's and OCI's share them) this project edits; the rest is kept as read. */
export interface ImageConfig {
  architecture?: string;
  os?: string;
  created?: string;
  config?: {
    Env?: string[];
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    WorkingDir?: string;
    Labels?: Record<string, string> | null;
    User?: string;
    [key: string]: unknown;
  };
  rootfs?: { type: string; diff_ids: string[] };
  history?: Array<{ created?: string; created_by?: string; comment?: string; empty_layer?: boolean }>;
  [key: string]: unknown;
}

/** An image: its config and its layers, bottom first. */
export interface Image {
  config: ImageConfig;
  layers: readonly Layer[];
}

/** `sha256:HEX` of `bytes`. */
export function sha256(bytes: Buffer | string): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/** A fixed time for everything alekseylearn adds, so the same inputs give the same config digest on any machine. */
export const FIXED_CREATED = "1970-01-01T00:00:00Z";

/** Append `layers` to `base` (lazy: nothing is read), each with a history entry that names it. */
export function append(base: Image, ...layers: Array<{ layer: Layer; createdBy: string }>): Image {
  const config: ImageConfig = structuredClone(base.config);
  config.rootfs = {
    type: "layers",
    diff_ids: [...(config.rootfs?.diff_ids ?? base.layers.map((layer) => layer.diffId)), ...layers.map((entry) => entry.layer.diffId)],
  };
  config.history = [...(config.history ?? []), ...layers.map((entry) => ({ created: FIXED_CREATED, created_by: entry.createdBy }))];
  return { config, layers: [...base.layers, ...layers.map((entry) => entry.layer)] };
}

/** The config edits alekseylearn makes: environment variables (set, replacing a same-named one), entrypoint, command, working folder, labels. */
export interface ConfigEdits {
  env?: Readonly<Record<string, string>>;
  entrypoint?: readonly string[];
  cmd?: readonly string[] | null;
  workingDir?: string;
  labels?: Readonly<Record<string, string>>;
}

/** `image` with `edits` made to its config (pure); `created` is fixed, so a rebuild gives the same config blob. */
export function editConfig(image: Image, edits: ConfigEdits): Image {
  const config: ImageConfig = structuredClone(image.config);
  const inner = { ...(config.config ?? {}) };
  if (edits.env) {
    const env = [...(inner.Env ?? [])];
    for (const [key, value] of Object.entries(edits.env)) {
      const at = env.findIndex((entry) => entry.split("=")[0] === key);
      if (at >= 0) env[at] = `${key}=${value}`;
      else env.push(`${key}=${value}`);
    }
    inner.Env = env;
  }
  if (edits.entrypoint) inner.Entrypoint = [...edits.entrypoint];
  // Docker's ENTRYPOINT resets an inherited CMD; the same here unless a command is given.
  if (edits.cmd !== undefined || edits.entrypoint) inner.Cmd = edits.cmd ? [...edits.cmd] : null;
  if (edits.workingDir) inner.WorkingDir = edits.workingDir;
  if (edits.labels) inner.Labels = { ...(inner.Labels ?? {}), ...edits.labels };
  config.config = inner;
  config.created = FIXED_CREATED;
  config.history = [...(config.history ?? []), { created: FIXED_CREATED, created_by: "alekseylearn: config", empty_layer: true }];
  return { config, layers: image.layers };
}

/** The value of `name` in the config's environment, if set. */
export function envOf(config: ImageConfig, name: string): string | undefined {
  const entry = config.config?.Env?.find((item) => item.startsWith(`${name}=`));
  return entry?.slice(name.length + 1);
}

/** The config's bytes as pushed. Serialised once from the object, whose key order comes from the base config and the edits, so it never varies between runs. */
export function configBytes(config: ImageConfig): Buffer {
  return Buffer.from(JSON.stringify({ ...config, architecture: TARGET_PLATFORM.architecture, os: TARGET_PLATFORM.os }));
}

/** A manifest or index as read (Docker v2 schema 2 or OCI). */
export interface ManifestDocument {
  schemaVersion?: number;
  mediaType?: string;
  config?: Descriptor;
  layers?: Descriptor[];
  manifests?: Descriptor[];
}

/** Parse a manifest or index; `contentType` is the registry's Content-Type, used when the document names no media type (OCI allows that). */
export function parseManifest(bytes: Buffer, contentType: string | null): ManifestDocument & { mediaType: string } {
  let doc: ManifestDocument;
  try {
    doc = JSON.parse(bytes.toString("utf8")) as ManifestDocument;
  } catch {
    throw new UserError("The registry answered with a manifest that is not JSON.");
  }
  const mediaType = doc.mediaType ?? (doc.manifests ? MEDIA.ociIndex : undefined) ?? contentType?.split(";")[0]?.trim() ?? MEDIA.ociManifest;
  if (doc.schemaVersion !== 2)
    throw new UserError(`The image's manifest has schemaVersion ${String(doc.schemaVersion)}; only schema 2 (Docker v2 schema 2, OCI) is read.`);
  return { ...doc, mediaType };
}

/** True for an index (a multi-platform image). */
export function isIndex(doc: { mediaType: string }): boolean {
  return doc.mediaType === MEDIA.dockerList || doc.mediaType === MEDIA.ociIndex;
}

/** The linux/amd64 entry of an index, or a clear error naming the platforms it has. */
export function pickPlatform(doc: ManifestDocument, reference: string): Descriptor {
  const entries = doc.manifests ?? [];
  const found = entries.find((entry) => entry.platform?.os === TARGET_PLATFORM.os && entry.platform.architecture === TARGET_PLATFORM.architecture);
  if (found) return found;
  const platforms = entries.map((entry) => `${entry.platform?.os ?? "?"}/${entry.platform?.architecture ?? "?"}`).join(", ");
  throw new UserError(
    `The base image ${reference} has no linux/amd64 image (it has ${platforms || "none"}); SageMaker and Vertex AI run linux/amd64 only.`,
    "Choose a base image built for linux/amd64 (config.base_image).",
  );
}

/**
 * The Docker media type a layer is pushed with: an OCI gzip layer becomes
 * Docker's gzip layer with the very same blob (the bytes are the same format),
 * so the pushed manifest is a Docker v2 schema 2 one the clouds pull. A zstd
 * or uncompressed layer has no Docker counterpart and is refused clearly (it
 * would need recompressing, and so a new digest).
 */
export function dockerLayerType(mediaType: string, reference: string): string {
  if (mediaType === MEDIA.dockerLayer || mediaType === MEDIA.ociLayerGzip) return MEDIA.dockerLayer;
  if (mediaType === MEDIA.dockerForeignLayer) return mediaType;
  throw new UserError(
    `The base image ${reference} has a layer of type ${mediaType}, which Docker's v2 schema 2 manifest (the one SageMaker and Vertex AI pull) cannot carry.`,
    "Use a base image with gzip layers (most published images have them), or config.builder=docker, which rebuilds it through Docker.",
  );
}

/** The Docker v2 schema 2 manifest of `image`, whose config is `config` (its bytes as pushed). */
export function dockerManifest(image: Image, config: Buffer, reference: string): Buffer {
  const manifest = {
    schemaVersion: 2,
    mediaType: MEDIA.dockerManifest,
    config: { mediaType: MEDIA.dockerConfig, size: config.length, digest: sha256(config) },
    layers: image.layers.map((layer) => ({ mediaType: dockerLayerType(layer.mediaType, reference), size: layer.size, digest: layer.digest })),
  };
  return Buffer.from(JSON.stringify(manifest, null, 3));
}
