/**
 * The daemonless image handed to the local Docker daemon, for the local
 * container runner's config.builder=oci: the very image `alekseylearn build`
 * assembles for SageMaker and Vertex AI (same layers, same config, so the
 * same image ID), written as a docker-archive — `docker save`'s format:
 * manifest.json, the config and the layer blobs — and streamed to
 * `docker load`. No `docker build`, and no registry of our own.
 *
 * The base image's blobs come from the base's registry (verified by digest
 * as they are read, registry.ts) and are kept in the cache by digest, so a
 * changed job on the same base downloads nothing again; an image the daemon
 * has already (its ID is the config's digest) is not loaded at all.
 *
 * docker-archive: github.com/moby/moby image/spec/v1.2.md and
 * image/tarexport (load.go reads each layer through archive.DecompressStream,
 * so the gzip blobs go in as they are, as go-containerregistry's tarball does).
 */
import fs from "node:fs";
import path from "node:path";
import { Readable } from "node:stream";
import type { Context } from "../../context.js";
import { failure } from "../../errors.js";
import type { JobSpec } from "../../spec/types.js";
import { docker } from "../docker.js";
import { assembleImage } from "./build.js";
import { configBytes, sha256, type Image, type Layer } from "./image.js";
import { fileHeader } from "./layer.js";
import { parseReference } from "./registry.js";

const BLOCK = 512;

/** Where a base layer's blob is kept, by its digest. */
export function blobCachePath(cacheDir: string, digest: string): string {
  return path.join(cacheDir, "oci-blobs", digest.replace(/^sha256:/, "sha256-"));
}

/** `layer` read from the blob cache when it is there; else read as before (from its registry, digest checked), kept in the cache, and given. */
export function cachedLayer(layer: Layer, cacheDir: string): Layer {
  if (!layer.source) return layer; // made here (environment, runtime, code): already in hand or in the layer cache
  const file = blobCachePath(cacheDir, layer.digest);
  return {
    ...layer,
    open: async () => {
      if (fs.existsSync(file)) return fs.createReadStream(file);
      const chunks: Buffer[] = [];
      for await (const chunk of await layer.open()) chunks.push(Buffer.from(chunk as Buffer));
      const bytes = Buffer.concat(chunks);
      // registry.blob checks the digest already; checked again here, as a wrong blob in the cache would be used by every later run.
      if (sha256(bytes) !== layer.digest) throw failure(`The blob ${layer.digest} read for the image does not match its digest.`);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(`${file}.tmp-${process.pid}`, bytes);
      fs.renameSync(`${file}.tmp-${process.pid}`, file);
      return Readable.from([bytes]);
    },
  };
}

/** The names inside the archive (pure): the config by its digest, each layer blob by its digest (a blob used twice is written once). */
export function archiveNames(image: Image, config: Buffer): { config: string; layers: string[] } {
  return { config: `${sha256(config).slice(7)}.json`, layers: image.layers.map((layer) => `${layer.digest.slice(7)}.tar.gz`) };
}

/** docker-archive's manifest.json (pure): one image, its config, its layers bottom first, and the tag `docker load` gives it. */
export function archiveManifest(image: Image, config: Buffer, tag: string): Buffer {
  const names = archiveNames(image, config);
  return Buffer.from(JSON.stringify([{ Config: names.config, RepoTags: [tag], Layers: names.layers }]));
}

function padding(size: number): Buffer {
  return Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);
}

/** The docker-archive of `image` tagged `tag`, as a stream of tar blocks: one blob in memory at a time at most. */
export async function* dockerArchive(image: Image, tag: string): AsyncGenerator<Buffer> {
  const config = configBytes(image.config);
  const names = archiveNames(image, config);
  for (const [name, bytes] of [
    ["manifest.json", archiveManifest(image, config, tag)],
    [names.config, config],
  ] as const) {
    yield fileHeader(name, bytes.length);
    yield bytes;
    yield padding(bytes.length);
  }
  const written = new Set<string>();
  for (const [at, layer] of image.layers.entries()) {
    const name = names.layers[at]!;
    if (written.has(name)) continue;
    written.add(name);
    yield fileHeader(name, layer.size);
    let size = 0;
    for await (const chunk of await layer.open()) {
      size += (chunk as Buffer).length;
      yield Buffer.from(chunk as Buffer);
    }
    if (size !== layer.size) throw failure(`The layer ${layer.digest} has ${size} bytes, not the ${layer.size} its manifest says.`);
    yield padding(size);
  }
  yield Buffer.alloc(BLOCK * 2);
}

/** The ID the daemon gives `reference` (`sha256:…`), or undefined when it has no such image. */
async function imageIdOf(reference: string, ctx: Pick<Context, "env">): Promise<string | undefined> {
  const found = await docker(["image", "inspect", "--format", "{{.Id}}", reference], { env: ctx.env });
  return found.code === 0 ? found.stdout.trim() || undefined : undefined;
}

/** What handing the image to Docker did: its ID there, and whether it was loaded (false: the daemon had it) with how many archive bytes. */
export interface LoadResult {
  imageId: string;
  loaded: boolean;
  bytes: number;
}

/**
 * Give the daemon `image` as `tag`: when it has an image whose ID is the
 * config's digest already (an unchanged resubmission), only the tag is set;
 * else the docker-archive is streamed to `docker load`.
 */
export async function loadIntoDocker(image: Image, tag: string, ctx: Pick<Context, "env" | "cacheDir" | "reporter" | "signal">): Promise<LoadResult> {
  const id = sha256(configBytes(image.config));
  if ((await imageIdOf(id, ctx)) === id) {
    const tagged = await docker(["tag", id, tag], { env: ctx.env });
    if (tagged.code !== 0) throw failure(`docker tag ${id} ${tag} failed.`, undefined, tagged.tail);
    ctx.reporter.info(`Docker has the image ${id.slice(0, 19)} already; nothing to load.`);
    return { imageId: id, loaded: false, bytes: 0 };
  }
  let bytes = 0;
  let streamError: Error | undefined;
  // A blob that cannot be read stops `docker load` (its stdin would otherwise stay open), and that error is the one told.
  const stop = new AbortController();
  const input = Readable.from(
    (async function* () {
      for await (const chunk of dockerArchive({ config: image.config, layers: image.layers.map((layer) => cachedLayer(layer, ctx.cacheDir)) }, tag)) {
        bytes += chunk.length;
        yield chunk;
      }
    })(),
  );
  input.on("error", (err) => {
    streamError = err;
    stop.abort();
  });
  const signal = ctx.signal ? AbortSignal.any([ctx.signal, stop.signal]) : stop.signal;
  ctx.reporter.info(`Loading the image (${image.layers.length} layers) into Docker with docker load.`);
  const result = await docker(["load", "--quiet"], { env: ctx.env, input, signal });
  if (streamError) throw streamError;
  if (ctx.signal?.aborted) throw ctx.signal.reason instanceof Error ? ctx.signal.reason : new DOMException("Stopped while loading the image.", "AbortError");
  if (result.code !== 0) throw failure("docker load refused the image.", undefined, result.tail);
  // The daemon's own ID of what it loaded: the config's digest on Docker's classic store; what `docker run` is given either way.
  const loadedId = await imageIdOf(tag, ctx);
  if (!loadedId) throw failure(`docker load finished, but Docker has no image ${tag}.`, undefined, result.tail);
  return { imageId: loadedId, loaded: true, bytes };
}

/**
 * The local container runner's image with config.builder=oci: assembled on
 * `base` as `alekseylearn build` assembles it (the base read from its
 * registry, anonymously or over plain http for the insecure registries), then
 * handed to the daemon as `tag`.
 */
export async function assembleAndLoad(
  spec: JobSpec & { settings: { python_version?: string | undefined } },
  base: string,
  tag: string,
  ctx: Context,
): Promise<LoadResult & { layersBuilt: number }> {
  const assembled = await assembleImage(
    spec,
    {
      base,
      targetHost: parseReference(base).host,
      ...(spec.settings.python_version ? { pythonVersion: spec.settings.python_version } : {}),
      ...(ctx.insecureRegistries ? { insecure: ctx.insecureRegistries } : {}),
    },
    ctx,
  );
  return { ...(await loadIntoDocker(assembled.image, tag, ctx)), layersBuilt: assembled.layersBuilt };
}
