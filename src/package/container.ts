/**
 * Building a job's training image with the local Docker: the same image for
 * SageMaker and for the local container runner (`--config.runner=docker`).
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Context } from "../context.js";
import type { JobSpec } from "../spec/types.js";
import { buildImage, requireDaemon, sharesKernel, type BuildResult } from "./docker.js";
import { isProcessAlive } from "../exec.js";
import { baseImageFor, hasOwnDockerfile, writeBuildContext } from "./image.js";
import { readPipLine } from "./pip-progress.js";
import { redactUrls } from "../redact.js";

/** The only platform SageMaker training runs (its containers run on x86-64 instances; Graviton is not offered for training). */
export const SAGEMAKER_PLATFORM = "linux/amd64";

/** pip's index settings for a build: http(s) ones without credentials as they are (a build argument is kept in the image's history), and the `file://` folder of an index to serve. */
export function pipBuildArgs(
  env: Context["env"],
  warn: (message: string) => void,
): { args: Record<string, string>; serve: Array<{ key: string; folder: string; path: string }> } {
  const args: Record<string, string> = {};
  const serve: Array<{ key: string; folder: string; path: string }> = [];
  for (const key of ["PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL"]) {
    const value = env[key];
    if (!value) continue;
    let url: URL | undefined;
    try {
      url = new URL(value);
    } catch {
      url = undefined;
    }
    if (url?.protocol === "file:") {
      // An index's pages link to its files relative to it (`../../files/x.whl`): the folder above it is served.
      const index = fileURLToPath(url).replace(/\/+$/, "");
      serve.push({ key, folder: path.dirname(index), path: `/${path.basename(index)}/` });
      continue;
    }
    if (!url || !/^https?:$/.test(url.protocol)) continue;
    if (url.username || url.password) {
      warn(`${key} holds credentials, so it is not passed into the image build (it would be kept in the image's history); the build uses pip's default index.`);
      continue;
    }
    args[key] = value;
  }
  return { args, serve };
}

/**
 * The port a folder is served on when it is free: the same for the same folder, so the index's URL — a build argument,
 * part of the environment layer's cache key — is the same from one build to the next, and an unchanged environment is
 * not installed again (20000–29999: below Linux's ephemeral ports).
 */
export function preferredPort(folder: string): number {
  return 20000 + (createHash("sha256").update(path.resolve(folder)).digest().readUInt32BE(0) % 10000);
}

/** Serve `folder` read-only over http on `address` (a PEP 503 index tree: a folder answers with its index.html); its port, and a close. */
export async function serveFolder(folder: string, address: string): Promise<{ port: number; close(): Promise<void> }> {
  const root = path.resolve(folder);
  const server = http.createServer((request, response) => {
    let file: string;
    try {
      file = path.resolve(root, "." + decodeURIComponent(new URL(request.url ?? "/", "http://index").pathname));
    } catch {
      return void response.writeHead(400).end();
    }
    if ((file !== root && !file.startsWith(root + path.sep)) || !["GET", "HEAD"].includes(request.method ?? "")) return void response.writeHead(404).end();
    fs.stat(file, (err, stat) => {
      if (!err && stat.isDirectory()) file = path.join(file, "index.html");
      const stream = fs.createReadStream(file);
      stream.once("error", () => (response.headersSent ? response.destroy() : response.writeHead(404).end()));
      stream.once("open", () => {
        response.writeHead(200, { "Content-Type": file.endsWith(".html") ? "text/html" : "application/octet-stream" });
        if (request.method === "HEAD") return (void stream.destroy(), response.end());
        stream.pipe(response);
      });
    });
  });
  const listen = (port: number): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const failed = (err: Error): void => reject(err);
      server.once("error", failed).listen(port, address, () => (server.off("error", failed), resolve()));
    });
  // Another build (or anything else) may hold the preferred port: any free one then (the layer is built again).
  await listen(preferredPort(folder)).catch(() => listen(0));
  return {
    port: (server.address() as { port: number }).port,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** What a build is asked for, from the backend's settings. */
export interface BuildChoices {
  /** The image's tag. */
  tag: string;
  /** config.base_image (`auto`: the default for the environment and `gpu`). */
  baseImage: string;
  gpu: boolean;
  /** The platform to build for (SageMaker's always; config.platform on this machine); `auto` or unset: the daemon's own. */
  platform?: string;
  onStarted?: () => void;
}

/** A Dockerfile instruction as one short line for the progress display: spaces folded, URL credentials hidden, cut at 80 characters. */
function shorten(instruction: string): string {
  const line = redactUrls(instruction.replace(/\s+/g, " ").trim());
  return line.length > 80 ? `${line.slice(0, 79)}…` : line;
}

/** Remove the build contexts of `stem` that a process which has since died left behind (a build killed outright): they do not pile up. */
function removeDeadContexts(dir: string, stem: string): void {
  for (const name of fs.readdirSync(dir)) {
    const pid = name.startsWith(`${stem}.`) ? /^(\d+)\.tar$/.exec(name.slice(stem.length + 1))?.[1] : undefined;
    if (pid && Number(pid) !== process.pid && !isProcessAlive(Number(pid))) fs.rmSync(path.join(dir, name), { force: true });
  }
}

/** Build the training image of `spec` as `tag`; progress goes to the reporter and the whole build log to a file under the cache. */
export async function buildTrainingImage(spec: JobSpec, options: BuildChoices, ctx: Context): Promise<BuildResult & { baseImage: string; platform: string }> {
  const daemon = await requireDaemon(ctx.env);
  const platform = options.platform === "auto" ? undefined : options.platform;
  if (!platform && daemon.platform && daemon.platform !== SAGEMAKER_PLATFORM) {
    ctx.reporter.info(
      `Building for this Docker's platform, ${daemon.platform}; SageMaker runs ${SAGEMAKER_PLATFORM} only (set --config.platform=${SAGEMAKER_PLATFORM} to build what it would run).`,
    );
  }
  const baseImage = baseImageFor(spec, options.baseImage, options.gpu);
  const dir = path.join(ctx.cacheDir, "build");
  fs.mkdirSync(dir, { recursive: true });
  const stem = options.tag.replace(/[^A-Za-z0-9._-]+/g, "_");
  // One build context per building process: two builds of the same tag at once (two terminals, two tests) must not
  // overwrite or remove each other's (one did, and the other's docker build read a file that was gone).
  removeDeadContexts(dir, stem);
  const contextTar = path.join(dir, `${stem}.${process.pid}.tar`);
  const logFile = path.join(dir, `${stem}.log`);
  await writeBuildContext(spec, baseImage, contextTar, { env: ctx.env, reporter: ctx.reporter });
  const log = fs.createWriteStream(logFile);
  let step = "";
  const pip = pipBuildArgs(ctx.env, (message) => ctx.reporter.warn(message));
  // A file:// index means nothing inside the build: it is served over http for the build's duration. A daemon on
  // this kernel reaches it on loopback with the host's network; Docker Desktop's and Colima's VMs as host.docker.internal.
  const local = sharesKernel(daemon);
  const servers: Array<{ close(): Promise<void> }> = [];
  ctx.reporter.info(
    `Building the image ${options.tag}${platform ? ` for ${platform}` : ""} on ${hasOwnDockerfile(spec) ? `${spec.artifact.dir}/Dockerfile` : baseImage} (log: ${logFile})…`,
  );
  try {
    for (const { key, folder, path: urlPath } of pip.serve) {
      const served = await serveFolder(folder, local ? "127.0.0.1" : "0.0.0.0");
      servers.push(served);
      const host = local ? "127.0.0.1" : "host.docker.internal";
      pip.args[key] = `http://${host}:${served.port}${urlPath}`;
      if (!local) pip.args.PIP_TRUSTED_HOST = host;
    }
    const built = await buildImage({
      contextTar,
      tag: options.tag,
      buildArgs: pip.args,
      network: local ? "host" : "default",
      ...(!local && servers.length ? { addHosts: ["host.docker.internal:host-gateway"] } : {}),
      ...(platform ? { platform } : {}),
      env: ctx.env,
      signal: ctx.signal,
      ...(options.onStarted ? { onStarted: options.onStarted } : {}),
      logFile,
      onLine: (line) => {
        log.write(line + "\n");
        // Which step runs, and inside an environment step what pip is doing: on a terminal under the build's spinner,
        // elsewhere one plain line each. The full build output is in the log file.
        const header = /^Step (\d+\/\d+) : (.*)$/.exec(line);
        if (header) {
          step = `step ${header[1]}`;
          ctx.reporter.detail?.(`${step}: ${shorten(header[2]!)}`);
        } else if (step) {
          const pip = readPipLine(line).detail;
          if (pip) ctx.reporter.detail?.(`${step}: ${pip}`);
        }
      },
    });
    ctx.reporter.info(
      built.stepsRun === 0
        ? "Image unchanged: every step came from Docker's cache."
        : `Image built: ${built.stepsRun} step(s) ran, ${built.stepsCached} from the cache.`,
    );
    return { ...built, baseImage, platform: platform ?? daemon.platform };
  } finally {
    await Promise.all(servers.map((server) => server.close()));
    await new Promise((resolve) => log.end(resolve));
    fs.rmSync(contextTar, { force: true });
  }
}
