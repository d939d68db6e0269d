/**
 * The training image of a job, assembled and pushed without Docker: the base
 * image read from its registry (its linux/amd64 image), then three
 * deterministic layers — the environment (requirements.txt installed by pip
 * for the image's platform and Python, never run in the image), the job
 * runtime (/opt/alekseylearn, as the Docker builder copies it) and the code
 * (/opt/ml/code: the shipped files) — and the Docker builder's config (its
 * environment variables, entrypoint and working folder). The same inputs give
 * the same digests, so an unchanged resubmission uploads nothing.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import type { Context } from "../../context.js";
import { failure, UserError } from "../../errors.js";
import type { JobSpec } from "../../spec/types.js";
import { environmentInContext, refuseEnvironmentCredentials } from "../image.js";
import { ENTRYPOINT, NOTEBOOK_PACKAGES, RUNTIME_IN_IMAGE, runtimeFiles } from "../runtime.js";
import { reportShipment, shippableRequirements, shippedFiles } from "../ship.js";
import { loadTar } from "../../storage/archive.js";
import {
  append,
  configBytes,
  dockerManifest,
  editConfig,
  envOf,
  isIndex,
  MEDIA,
  pickPlatform,
  sha256,
  type Image,
  type ImageConfig,
  type Layer,
} from "./image.js";
import { assembleOrFallBack, withFallback, type BuilderChoice } from "./choose.js";
import { folderEntries, layerOf, type LayerEntry } from "./layer.js";
import { formatReference, parseReference, Registry, type Credentials, type PushStats } from "./registry.js";

/** Where the environment layer's packages go, on the job's PYTHONPATH. */
export const SITE_PACKAGES = "/opt/alekseylearn/site-packages";
/** The manylinux tags pip may pick wheels of, oldest first (PEP 599/600): what runs on the images the clouds run. */
export const PIP_PLATFORMS = ["manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64", "manylinux_2_34_x86_64", "linux_x86_64"] as const;
/** Bumped when the environment layer's layout changes, so cached layers of the old layout are not used. */
const ENV_LAYER_FORMAT = "3";

/** A distribution's name as PEP 503 normalises it (`Scikit_Learn` → `scikit-learn`), for comparing dist-info folder names. */
export function normalizeName(name: string): string {
  return name.toLowerCase().replace(/[-_.]+/g, "-");
}

/**
 * The distribution a path in an image belongs to, as `name==version`, when it
 * lies in a `NAME-VERSION.dist-info` folder of a site- or dist-packages folder
 * (the installed-distribution layout of PyPA's "Recording installed projects").
 */
export function distributionAt(entryPath: string): string | undefined {
  const found = /(?:^|\/)(?:site|dist)-packages\/([^/]+?)-([^/-]+)\.dist-info(?:\/|$)/.exec(entryPath);
  return found ? `${normalizeName(found[1]!)}==${found[2]!}` : undefined;
}

/** The distributions a gzip layer holds (`name==version`), read from its tar's entry names without unpacking it; cached by the layer's digest. */
async function layerDistributions(layer: Layer, cacheDir: string): Promise<string[]> {
  const file = path.join(cacheDir, "oci-layers", `dists-${layer.digest.replace(/^sha256:/, "")}.json`);
  if (fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, "utf8")) as string[];
  const found = new Set<string>();
  const { Parser } = await loadTar();
  const { pipeline } = await import("node:stream/promises");
  const parser = new Parser({
    onReadEntry: (entry) => {
      const name = distributionAt(entry.path);
      if (name) found.add(name);
      entry.resume();
    },
  });
  await pipeline(await layer.open(), parser as unknown as NodeJS.WritableStream);
  const names = [...found].sort();
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(names));
  fs.renameSync(`${file}.tmp`, file);
  return names;
}

/** The distributions the base image has installed (every gzip layer's dist-info folders), so the environment layer does not install them again. */
export async function baseDistributions(base: Image, ctx: Pick<Context, "cacheDir">): Promise<string[]> {
  const all = new Set<string>();
  for (const layer of base.layers)
    if (layer.mediaType === MEDIA.dockerLayer || layer.mediaType === MEDIA.ociLayerGzip)
      for (const name of await layerDistributions(layer, ctx.cacheDir)) all.add(name);
  return [...all].sort();
}

/**
 * Remove from pip's `target` every distribution the base image has at the
 * same version: its files as its RECORD lists them (only those inside
 * `target`), then its dist-info folder. Returns what was removed.
 */
export function pruneInstalled(target: string, have: readonly string[]): string[] {
  if (!fs.existsSync(target)) return [];
  const removed: string[] = [];
  const root = path.resolve(target);
  for (const folder of fs.readdirSync(target).sort()) {
    const name = distributionAt(`site-packages/${folder}`);
    if (!name || !folder.endsWith(".dist-info") || !have.includes(name)) continue;
    const record = path.join(target, folder, "RECORD");
    const files = fs.existsSync(record) ? fs.readFileSync(record, "utf8").split("\n") : [];
    for (const line of files) {
      // RECORD is CSV: path,hash,size; a path with a comma is quoted.
      const relative = line.startsWith('"') ? line.slice(1, line.indexOf('"', 1)) : line.split(",")[0]!;
      if (!relative) continue;
      const full = path.resolve(target, relative);
      if (full.startsWith(root + path.sep)) fs.rmSync(full, { force: true });
    }
    fs.rmSync(path.join(target, folder), { recursive: true, force: true });
    removed.push(name);
  }
  removeEmptyFolders(target);
  return removed;
}

function removeEmptyFolders(dir: string): boolean {
  let empty = true;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory() && removeEmptyFolders(path.join(dir, entry.name))) fs.rmdirSync(path.join(dir, entry.name));
    else empty = false;
  }
  return empty;
}

export interface OciBuildOptions {
  /** The base image reference (config.base_image, resolved). */
  base: string;
  /** Where to push: HOST/REPOSITORY[:TAG]. */
  to: string;
  /** config.python_version, when set. */
  pythonVersion?: string;
  /** Credentials of the target registry (and of the base's, when it is the same). */
  credentials?: Credentials;
  /** Hosts reached over plain http (ALEKSEYLEARN_INSECURE_REGISTRIES, read by the CLI). */
  insecure?: readonly string[];
}

export interface OciBuildResult {
  /** HOST/REPOSITORY@sha256:… */
  image: string;
  digest: string;
  layers: number;
  pushedBytes: number;
  /** Layers alekseylearn made anew in this run (not from its cache). */
  layersBuilt: number;
  stats: PushStats;
}

/**
 * A blob by digest from alekseylearn's cache when there (checked against its digest again, as anything pulled is),
 * else from the registry, kept in the cache once checked: a digest names its bytes for ever, so an unchanged
 * resubmission does not fetch the base image's config again.
 */
async function cachedBlob(registry: Registry, repository: string, digest: string, cacheDir: string | undefined): Promise<Buffer> {
  const file = cacheDir ? path.join(cacheDir, "oci-blobs", digest.replace(":", "-")) : undefined;
  if (file && fs.existsSync(file)) {
    const bytes = fs.readFileSync(file);
    if (sha256(bytes) === digest) return bytes;
  }
  const bytes = await registry.blob(repository, digest);
  if (file) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(`${file}.${process.pid}.tmp`, bytes);
    fs.renameSync(`${file}.${process.pid}.tmp`, file);
  }
  return bytes;
}

/**
 * Read the base image: its manifest (an index resolved to linux/amd64), its config, and its layers as blobs that stay
 * in the registry. The tag is read from the registry every time (it may have moved); the config, named by digest,
 * comes from `cacheDir` when it was read before.
 */
export async function readBase(registry: Registry, reference: string, cacheDir?: string): Promise<{ image: Image; repository: string }> {
  const ref = parseReference(reference);
  registry.want(ref.repository, "pull");
  let { doc } = await registry.manifest(ref.repository, ref.digest ?? ref.tag!);
  if (isIndex(doc)) doc = (await registry.manifest(ref.repository, pickPlatform(doc, reference).digest)).doc;
  if (!doc.config || !doc.layers) throw failure(`The base image ${reference} has a manifest of type ${doc.mediaType} without a config or layers.`);
  const config = JSON.parse((await cachedBlob(registry, ref.repository, doc.config.digest, cacheDir)).toString("utf8")) as ImageConfig;
  if (config.os && config.architecture && `${config.os}/${config.architecture}` !== "linux/amd64")
    throw new UserError(
      `The base image ${reference} is built for ${config.os}/${config.architecture}; SageMaker and Vertex AI run linux/amd64 only.`,
      "Choose a linux/amd64 base image (config.base_image).",
    );
  const diffIds = config.rootfs?.diff_ids ?? [];
  const layers: Layer[] = doc.layers.map((descriptor, at) => ({
    digest: descriptor.digest,
    diffId: diffIds[at] ?? "",
    size: descriptor.size,
    mediaType: descriptor.mediaType,
    source: { host: registry.host, repository: ref.repository },
    open: async () => {
      const { Readable } = await import("node:stream");
      return Readable.from([await registry.blob(ref.repository, descriptor.digest, descriptor.size)]);
    },
  }));
  return { image: { config, layers }, repository: ref.repository };
}

/** The Python version the environment layer is made for: config.python_version, else the base image's PYTHON_VERSION (as the python images set it), else a clear error. */
export function pythonVersionFor(config: ImageConfig, chosen: string | undefined, base: string): string {
  const version = chosen ?? envOf(config, "PYTHON_VERSION");
  if (!version)
    throw new UserError(
      `The Python version of the base image ${base} is not known (its config sets no PYTHON_VERSION), so the environment's wheels cannot be chosen.`,
      "Set config.python_version (e.g. --config.python_version=3.11) to the base image's Python.",
    );
  const short = /^(\d+)\.(\d+)/.exec(version);
  if (!short) throw new UserError(`config.python_version ${JSON.stringify(version)} is not a Python version such as 3.11.`);
  return `${short[1]}.${short[2]}`;
}

/** The requirements the environment layer installs (the shipped requirements text, and the notebook runner's packages for a notebook); empty when none. */
export function layerRequirements(spec: JobSpec): string {
  const lines: string[] = [];
  if (spec.environment?.kind === "requirements") lines.push(shippableRequirements(spec.environment.content).text.trimEnd());
  if (spec.artifact.kind === "notebook") lines.push(...NOTEBOOK_PACKAGES);
  return lines.filter((line) => line.trim()).join("\n");
}

/** pip's arguments for the environment layer (pure): wheels only, for the image's platform and Python, into `target`. */
export function pipTargetArgs(requirementsFile: string, target: string, pythonVersion: string): string[] {
  return [
    "-m",
    "pip",
    "install",
    "--disable-pip-version-check",
    "--no-input",
    "--no-compile",
    "--target",
    target,
    ...PIP_PLATFORMS.flatMap((platform) => ["--platform", platform]),
    "--python-version",
    pythonVersion,
    "--implementation",
    "cp",
    "--only-binary=:all:",
    "-r",
    requirementsFile,
  ];
}

function run(command: string, args: string[], env: Context["env"], cwd: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env: env as NodeJS.ProcessEnv, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, output }));
  });
}

/**
 * The environment layer for `requirements` on Python `pythonVersion`, from the
 * cache (by the hash of the requirements and the target) or made with
 * `pip install --target`. A requirement with no wheel for the target is a
 * clear stop that names config.builder=docker, which can build from source.
 */
export async function environmentLayer(
  requirements: string,
  pythonVersion: string,
  ctx: Context,
  cwd: string,
  have: readonly string[] = [],
): Promise<{ layer: Layer; built: boolean }> {
  const key = createHash("sha256")
    .update(JSON.stringify([ENV_LAYER_FORMAT, requirements, pythonVersion, PIP_PLATFORMS, have]))
    .digest("hex")
    .slice(0, 32);
  const dir = path.join(ctx.cacheDir, "oci-layers");
  const file = path.join(dir, `${key}.tar.gz`);
  const meta = path.join(dir, `${key}.json`);
  if (fs.existsSync(file) && fs.existsSync(meta)) {
    const { removed = [], ...saved } = JSON.parse(fs.readFileSync(meta, "utf8")) as { digest: string; diffId: string; size: number; removed?: string[] };
    reportPruned(removed, ctx);
    return { layer: { ...saved, mediaType: MEDIA.dockerLayer, open: () => fs.createReadStream(file) }, built: false };
  }
  fs.mkdirSync(dir, { recursive: true });
  const work = fs.mkdtempSync(path.join(dir, `${key}.tmp-`));
  try {
    fs.writeFileSync(path.join(work, "requirements.txt"), requirements + "\n");
    const target = path.join(work, "site-packages");
    ctx.reporter.info(`Installing the environment for Python ${pythonVersion} (linux/amd64 wheels) with pip --target.`);
    const result = await run(
      "python3",
      pipTargetArgs(path.join(work, "requirements.txt"), target, pythonVersion),
      { ...ctx.env, PIP_NO_CACHE_DIR: ctx.env.PIP_NO_CACHE_DIR },
      cwd,
    );
    if (result.code !== 0) {
      const tail = result.output.trim().split("\n").slice(-8);
      const noWheel = /No matching distribution|Could not find a version/i.test(result.output);
      const error = failure(
        noWheel
          ? `A requirement has no binary wheel for linux/amd64 and Python ${pythonVersion}, so the image cannot be built without Docker.`
          : `pip could not install the environment for the image (exit ${result.code ?? "killed"}).`,
        noWheel
          ? "Use config.builder=docker (it builds from source inside the image), or pin a version that has a manylinux wheel."
          : "Fix requirements.txt and try again.",
        tail,
      );
      throw noWheel ? withFallback(error, `a requirement has no binary wheel for linux/amd64 and Python ${pythonVersion}`) : error;
    }
    const removed = pruneInstalled(target, have);
    reportPruned(removed, ctx);
    const built = layerOf(fs.existsSync(target) ? folderEntries(target, SITE_PACKAGES.slice(1)) : []);
    fs.writeFileSync(`${file}.tmp`, built.bytes);
    fs.renameSync(`${file}.tmp`, file);
    fs.writeFileSync(meta, JSON.stringify({ digest: built.digest, diffId: built.diffId, size: built.size, removed }));
    return { layer: built, built: true };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** Say which packages the environment layer leaves to the base image (from a fresh build or the cache alike). */
function reportPruned(removed: readonly string[], ctx: Pick<Context, "reporter">): void {
  if (removed.length) ctx.reporter.info(`Not installing again what the base image has: ${removed.map((name) => name.replace("==", " ")).join(", ")}.`);
}

/** The job runtime's layer: /opt/alekseylearn as the Docker builder copies it (`COPY .alekseylearn/runtime/ /opt/alekseylearn/`). */
export function runtimeLayer(): Layer & { bytes: Buffer } {
  return layerOf(
    Object.entries(runtimeFiles()).map(([name, text]): LayerEntry => ({
      path: `${RUNTIME_IN_IMAGE.slice(1)}/${name}`,
      kind: "file",
      mode: 0o644,
      bytes: Buffer.from(text),
    })),
  );
}

/** The code layer: the shipped files of the project folder under /opt/ml/code (ship.ts's one rule set), rewritten files with the text that ships. */
export function codeLayer(spec: JobSpec, ctx: Pick<Context, "env" | "reporter">): Layer & { bytes: Buffer } {
  const envFile = environmentInContext(spec);
  const shipment = shippedFiles(spec.artifact.dir, {
    env: ctx.env,
    entry: spec.artifact.entry,
    requirements: envFile && !envFile.startsWith(".alekseylearn/") ? [envFile] : [],
  });
  reportShipment(
    shipment,
    (message) => ctx.reporter.warn(message),
    (message) => ctx.reporter.info(message),
  );
  const entries: LayerEntry[] = [{ path: "opt/ml/code", kind: "dir" }];
  for (const folder of shipment.folders) entries.push({ path: `opt/ml/code/${folder}`, kind: "dir" });
  for (const file of shipment.files) {
    const full = path.join(shipment.dir, file);
    const stat = fs.lstatSync(full);
    if (stat.isSymbolicLink()) entries.push({ path: `opt/ml/code/${file}`, kind: "symlink", target: fs.readlinkSync(full) });
    else
      entries.push({
        path: `opt/ml/code/${file}`,
        kind: "file",
        mode: stat.mode & 0o111 ? 0o755 : 0o644,
        bytes: file in shipment.rewritten ? Buffer.from(shipment.rewritten[file]!) : fs.readFileSync(full),
      });
  }
  return layerOf(entries);
}

/** The config edits of the Docker builder's Dockerfile (ENV, WORKDIR, ENTRYPOINT), plus PYTHONPATH for the environment layer when there is one. */
export function jobConfigEdits(spec: JobSpec, withEnvironment: boolean): Parameters<typeof editConfig>[1] {
  return {
    env: {
      PYTHONUNBUFFERED: "1",
      PYTHONDONTWRITEBYTECODE: "1",
      ...(withEnvironment ? { PYTHONPATH: SITE_PACKAGES } : {}),
      ALEKSEYLEARN_ENTRY: spec.artifact.entry,
      ALEKSEYLEARN_KIND: spec.artifact.kind,
    },
    workingDir: "/opt/ml/code",
    entrypoint: ["python3", `${RUNTIME_IN_IMAGE}/${ENTRYPOINT}`],
  };
}

/** Run `tasks` at most `limit` at a time. */
async function pool<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await task(items[next++]!);
    }),
  );
}

async function streamBytes(layer: Layer): Promise<Buffer> {
  if ("bytes" in layer && Buffer.isBuffer((layer as { bytes?: unknown }).bytes)) return (layer as unknown as { bytes: Buffer }).bytes;
  const chunks: Buffer[] = [];
  for await (const chunk of await layer.open()) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks);
}

/** Push `image` to `to` as one Docker v2 schema 2 image: blobs the registry has are only HEADed, base layers in the same registry mounted. */
export async function pushImage(
  image: Image,
  to: string,
  registry: Registry,
  baseReference: string,
  ownTag = false,
  onProgress?: (done: number, total: number) => void,
): Promise<{ digest: string; stats: PushStats; image: string }> {
  const ref = parseReference(to);
  registry.want(ref.repository, "pull,push");
  const config = configBytes(image.config);
  const manifest = dockerManifest(image, config, baseReference);
  const digest = sha256(manifest);
  const stats: PushStats = { uploadedBytes: 0, uploaded: 0, mounted: 0, existing: 0 };
  const tag = ownTag ? `alekseylearn-${digest.slice(7, 19)}` : (ref.tag ?? "latest");
  // An unchanged resubmission: the tag already names this very manifest, so the registry has it and every blob it
  // references (a registry accepts a manifest only once it has its blobs); one HEAD, nothing uploaded or put.
  if ((await registry.tagDigest(ref.repository, tag)) === digest) return { digest, stats, image: `${ref.host}/${ref.repository}@${digest}` };
  // The whole image is there already (under another tag): nothing to upload, only the tag to set.
  if (!(await registry.hasManifest(ref.repository, digest))) {
    for (const layer of image.layers) if (layer.source?.host === registry.host) registry.want(layer.source.repository, "pull");
    // Progress in bytes of the blobs settled (uploaded, mounted or found there), layers and config together.
    const total = image.layers.reduce((sum, layer) => sum + layer.size, config.length);
    let done = 0;
    onProgress?.(0, total);
    await pool(image.layers, 4, async (layer) => {
      await registry.putBlob(
        ref.repository,
        { digest: layer.digest, size: layer.size, bytes: () => streamBytes(layer) },
        stats,
        layer.source?.host === registry.host ? layer.source.repository : undefined,
      );
      onProgress?.((done += layer.size), total);
    });
    await registry.putBlob(ref.repository, { digest: sha256(config), size: config.length, bytes: () => Promise.resolve(config) }, stats);
    onProgress?.((done += config.length), total);
  }
  // A tag of the image's own (from its digest) when asked: concurrent submissions never move each other's tag.
  await registry.putManifest(ref.repository, tag, manifest, MEDIA.dockerManifest);
  return { digest, stats, image: `${ref.host}/${ref.repository}@${digest}` };
}

/** The job's image, assembled (lazy: base layers stay in their registry) and ready to push to `target`'s registry. */
export interface AssembledImage {
  image: Image;
  registry: Registry;
  base: string;
  /** Layers alekseylearn made anew in this run (not from its cache). */
  layersBuilt: number;
}

/**
 * A backend's job image (SageMaker's, Vertex AI's) assembled for its registry at `targetHost` with that registry's
 * login, `config.python_version` and the insecure registries applied; `undefined` when `config.builder=auto` falls
 * back to Docker (`assembleOrFallBack`). Pushes nothing: the backend pushes once its own checks allow it.
 */
export function assembleForRegistry(
  spec: JobSpec & { settings: { builder: BuilderChoice; python_version?: string | undefined } },
  base: string,
  targetHost: string,
  credentials: Credentials,
  ctx: Context,
): Promise<AssembledImage | undefined> {
  const options = {
    base,
    targetHost,
    credentials,
    ...(spec.settings.python_version ? { pythonVersion: spec.settings.python_version } : {}),
    ...(ctx.insecureRegistries ? { insecure: ctx.insecureRegistries } : {}),
  };
  return assembleOrFallBack(spec.settings.builder, () => assembleImage(spec, options, ctx), ctx);
}

/** Assemble `spec`'s training image on `options.base` for the registry `targetHost`: reads the base, makes the layers; pushes nothing. */
export async function assembleImage(spec: JobSpec, options: Omit<OciBuildOptions, "to"> & { targetHost: string }, ctx: Context): Promise<AssembledImage> {
  refuseEnvironmentCredentials(spec);
  const baseRef = parseReference(options.base);
  const registryOptions = { ...(options.insecure ? { insecure: options.insecure } : {}), ...(ctx.signal ? { signal: ctx.signal } : {}) };
  const registry = new Registry(options.targetHost, { ...registryOptions, ...(options.credentials ? { credentials: options.credentials } : {}) });
  // The base is read with the target's credentials when it lives in the same registry (so its layers can be mounted), anonymously otherwise.
  const baseRegistry = baseRef.host === options.targetHost ? registry : new Registry(baseRef.host, registryOptions);
  const { image: base } = await readBase(baseRegistry, options.base, ctx.cacheDir).catch((err: Error) => {
    // A base image the registry does not give (one only a local Docker has, or a registry out of reach) may still build with Docker.
    throw withFallback(err, `the base image ${options.base} could not be read from its registry (${err.message.replace(/\.$/, "")})`);
  });
  const requirements = layerRequirements(spec);
  let layersBuilt = 0;
  const added: Array<{ layer: Layer; createdBy: string }> = [];
  if (requirements) {
    const pythonVersion = pythonVersionFor(base.config, options.pythonVersion, options.base);
    const env = await environmentLayer(requirements, pythonVersion, ctx, spec.artifact.dir, await baseDistributions(base, ctx));
    if (env.built) layersBuilt++;
    added.push({ layer: env.layer, createdBy: `alekseylearn: pip install --target ${SITE_PACKAGES} (environment)` });
  }
  added.push({ layer: runtimeLayer(), createdBy: `alekseylearn: COPY runtime ${RUNTIME_IN_IMAGE}/` });
  added.push({ layer: codeLayer(spec, ctx), createdBy: "alekseylearn: COPY . /opt/ml/code" });
  layersBuilt += 2;
  return { image: editConfig(append(base, ...added), jobConfigEdits(spec, Boolean(requirements))), registry, base: options.base, layersBuilt };
}

/** Build `spec`'s training image on `options.base` and push it to `options.to`, with no Docker. */
export async function buildAndPush(spec: JobSpec, options: OciBuildOptions, ctx: Context): Promise<OciBuildResult> {
  const target = parseReference(options.to);
  const assembled = await assembleImage(spec, { ...options, targetHost: target.host }, ctx);
  const label = `Pushing ${assembled.image.layers.length} layers and the config to ${target.host}/${target.repository}`;
  const pushed = await pushImage(assembled.image, formatReference(target), assembled.registry, options.base, false, (done, total) =>
    ctx.reporter.progress?.(label, done, total, "bytes"),
  );
  return {
    image: pushed.image,
    digest: pushed.digest,
    layers: assembled.image.layers.length,
    pushedBytes: pushed.stats.uploadedBytes,
    layersBuilt: assembled.layersBuilt,
    stats: pushed.stats,
  };
}

/** Push an assembled job image to `uri` (REGISTRY/REPOSITORY) under a tag of its own, as the backends record it. */
export async function pushAssembled(
  assembled: AssembledImage,
  uri: string,
  ctx?: Pick<Context, "reporter">,
): Promise<{ image: string; stepsRun: number; layersPushed: number; reused: boolean }> {
  const label = `Pushing ${assembled.image.layers.length} layers and the config to ${uri}`;
  const pushed = await pushImage(assembled.image, uri, assembled.registry, assembled.base, true, (done, total) =>
    ctx?.reporter.progress?.(label, done, total, "bytes"),
  );
  return {
    image: `${uri}@${pushed.digest}`,
    stepsRun: assembled.layersBuilt,
    layersPushed: pushed.stats.uploaded,
    reused: pushed.stats.uploaded === 0 && pushed.stats.mounted === 0,
  };
}
