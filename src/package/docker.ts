/**
 * The local Docker CLI, as the SageMaker backend and the local container
 * runner use it: is a daemon there, build an image, log in to a registry,
 * push, and the arguments of `docker run` for a training container.
 * Every call goes through the `docker` program (honouring DOCKER_HOST and the
 * user's Docker settings), never through the daemon's socket directly.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { failure } from "../errors.js";
import { LineTail } from "../exec.js";
import { ML_ROOT } from "./contract.js";

type Env = Readonly<Record<string, string | undefined>>;

/** What a finished `docker` call printed. */
export interface DockerResult {
  code: number | null;
  stdout: string;
  /** The last lines of stderr, for error messages. */
  tail: string[];
}

/** Run `docker ARGS`, feeding `input` on stdin; `onLine` sees each line of stdout and stderr as it comes, with the stream it came on. */
export function docker(
  args: readonly string[],
  options: {
    env: Env;
    cwd?: string;
    input?: string | Readable;
    onLine?: (line: string, stream: "stdout" | "stderr") => void;
    signal?: AbortSignal;
    onStarted?: () => void;
  },
): Promise<DockerResult> {
  return new Promise((resolve, reject) => {
    const child = spawn("docker", args, { cwd: options.cwd, env: options.env as NodeJS.ProcessEnv, stdio: ["pipe", "pipe", "pipe"], signal: options.signal });
    child.once("spawn", () => options.onStarted?.());
    let stdout = "";
    const tail = new LineTail(20);
    // Each stream is cut into lines on its own, so a half line of one never joins a half line of the other.
    const partial = { stdout: "", stderr: "" };
    const see = (stream: keyof typeof partial, chunk: string): void => {
      const parts = (partial[stream] + chunk).split(/\r?\n/);
      partial[stream] = parts.pop() ?? "";
      for (const line of parts) options.onLine?.(line, stream);
    };
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
      see("stdout", chunk);
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      tail.push(chunk);
      see("stderr", chunk);
    });
    child.on("error", (err) => {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") {
        reject(
          failure(
            "Docker is not installed (no `docker` program on PATH).",
            "Install Docker (https://docs.docker.com/engine/install/), or use a backend that needs no image.",
          ),
        );
      } else if ((err as NodeJS.ErrnoException).name !== "AbortError") {
        reject(err);
      }
    });
    child.on("close", (code) => {
      for (const stream of ["stdout", "stderr"] as const) if (partial[stream]) options.onLine?.(partial[stream], stream);
      resolve({ code, stdout, tail: tail.get() });
    });
    child.stdin.on("error", () => {}); // docker may exit before reading stdin
    if (options.input instanceof Readable) {
      // An input that cannot be read (a build context removed under it) fails the command, and docker is not left waiting on stdin.
      options.input.once("error", (err) => {
        child.kill();
        reject(err);
      });
      options.input.pipe(child.stdin);
    } else child.stdin.end(options.input ?? "");
  });
}

/** What the daemon says of itself: its version, the platform it builds for, and its kernel. */
export interface DaemonInfo {
  version: string;
  /** `os/arch` of the daemon (`linux/amd64`, `linux/arm64`). */
  platform: string;
  kernel: string;
}

/** Fail with a clear message unless a Docker daemon answers; what it says of itself when it does. */
export async function requireDaemon(env: Env): Promise<DaemonInfo> {
  const result = await docker(["version", "--format", "{{.Server.Version}} {{.Server.Os}}/{{.Server.Arch}} {{.Server.KernelVersion}}"], { env });
  const [version = "", platform = "", kernel = ""] = result.stdout.trim().split(/\s+/);
  if (result.code === 0 && version) return { version, platform, kernel };
  const said = result.tail.filter((line) => line.trim()).slice(-1)[0] ?? "";
  if (/permission denied/i.test(said)) {
    throw failure(
      `Docker answers, but you may not use it (docker said: ${said.trim()}).`,
      "Add yourself to the docker group (sudo usermod -aG docker $USER, then log in again), or use rootless Docker.",
    );
  }
  throw failure(
    `No Docker daemon answers${env.DOCKER_HOST ? ` at ${env.DOCKER_HOST}` : ""}${said ? ` (docker said: ${said.trim()})` : ""}.`,
    "Start Docker (e.g. `sudo systemctl start docker`, or Docker Desktop) and try again; building without a daemon is planned as config.builder=oci.",
  );
}

/** True when the daemon runs on this very kernel (a Linux host's own dockerd), so `--network host` in a build reaches this machine's loopback; false for Docker Desktop's and Colima's virtual machines. */
export function sharesKernel(daemon: DaemonInfo, hostPlatform: string = process.platform, hostKernel: string = os.release()): boolean {
  return hostPlatform === "linux" && daemon.kernel === hostKernel;
}

/** What a build did: the image's ID, and how many steps ran rather than came from the cache. */
export interface BuildResult {
  imageId: string;
  /** Steps that ran (a step taken from the build cache does not count). */
  stepsRun: number;
  stepsCached: number;
}

/** How many lines of a failed build's output its error shows. */
const BUILD_TAIL_LINES = 15;

/** The arguments of `docker build` reading its context from stdin (pure). */
export function buildArgs(options: {
  tag: string;
  buildKit: boolean;
  platform?: string;
  network: "host" | "default";
  addHosts?: readonly string[];
  buildArgNames?: readonly string[];
}): string[] {
  const args = ["build", "--tag", options.tag];
  if (options.network === "host") args.push("--network", "host");
  for (const host of options.addHosts ?? []) args.push("--add-host", host);
  // The platform is a flag, never a rewritten FROM line, so a user's own Dockerfile gets it too.
  if (options.platform) args.push("--platform", options.platform);
  // BuildKit (buildx) attaches provenance and SBOM attestations, which turn the pushed image into an
  // index that SageMaker refuses; the classic builder never makes them.
  if (options.buildKit) args.push("--provenance=false", "--sbom=false");
  for (const name of options.buildArgNames ?? []) args.push("--build-arg", name);
  args.push("-");
  return args;
}

/** Build the image from the build context in the tar file `contextTar` (its Dockerfile at the top) as `tag`; build log lines go to `onLine`. */
export async function buildImage(options: {
  contextTar: string;
  tag: string;
  buildArgs?: Record<string, string>;
  /** `os/arch` to build for (`--platform`); the daemon's own when unset. */
  platform?: string;
  /** `host`: the build's RUN steps use the daemon host's network (the default); `default`: Docker's own. */
  network?: "host" | "default";
  /** `--add-host` entries (`host.docker.internal:host-gateway`). */
  addHosts?: readonly string[];
  env: Env;
  onLine?: (line: string) => void;
  signal?: AbortSignal;
  onStarted?: () => void;
  /** Where the caller keeps the whole build output, named in the error of a failed build. */
  logFile?: string;
}): Promise<BuildResult> {
  // Build args are passed by name only, their values through the environment, so none shows in a process list.
  const env: Record<string, string | undefined> = { ...options.env, DOCKER_BUILDKIT: options.env.DOCKER_BUILDKIT ?? "0" };
  for (const [key, value] of Object.entries(options.buildArgs ?? {})) env[key] = value;
  const args = buildArgs({
    tag: options.tag,
    buildKit: env.DOCKER_BUILDKIT !== "0",
    network: options.network ?? "host",
    buildArgNames: Object.keys(options.buildArgs ?? {}),
    ...(options.platform ? { platform: options.platform } : {}),
    ...(options.addHosts ? { addHosts: options.addHosts } : {}),
  });
  let stepsRun = 0;
  let stepsCached = 0;
  // The classic builder prints "Step N/M : INSTRUCTION", then " ---> Using cache" when the step came from the cache.
  let step: { from: boolean; cached: boolean } | undefined;
  const endStep = (): void => {
    if (step && !step.from) {
      if (step.cached) stepsCached++;
      else stepsRun++;
    }
    step = undefined;
  };
  // A failing step prints its cause (pip's or apt's error) on stdout and only Docker's summary on stderr: keep both.
  const tail = new LineTail(BUILD_TAIL_LINES);
  const result = await docker(args, {
    env,
    input: fs.createReadStream(options.contextTar),
    signal: options.signal,
    ...(options.onStarted ? { onStarted: options.onStarted } : {}),
    onLine: (line) => {
      const header = /^Step \d+\/\d+ : (\S+)/.exec(line);
      if (header) {
        endStep();
        step = { from: header[1]!.toUpperCase() === "FROM", cached: false };
      } else if (step && /---> Using cache/.test(line)) {
        step.cached = true;
      }
      if (line.trim()) tail.push(line + "\n");
      options.onLine?.(line);
    },
  });
  endStep();
  if (result.code !== 0) {
    throw failure(
      `docker build failed (exit ${result.code ?? "killed"}); the build's last lines:`,
      `Fix the Dockerfile, apt.txt or the environment file and run fit again${options.logFile ? ` (the whole build log: ${options.logFile})` : ""}.`,
      tail.get(),
    );
  }
  const inspect = await docker(["image", "inspect", "--format", "{{.Id}}", options.tag], { env: options.env });
  return { imageId: inspect.stdout.trim(), stepsRun, stepsCached };
}

/** The user's Docker endpoint as `docker` variables: DOCKER_HOST (and its TLS settings) of the current context, so a client with another config folder still reaches the same daemon. */
export async function currentEndpoint(env: Env): Promise<Record<string, string>> {
  // DOCKER_HOST wins over any context, and goes on as it is.
  if (env.DOCKER_HOST) return {};
  const inspected = await docker(["context", "inspect", "--format", "{{json .}}"], { env });
  if (inspected.code !== 0) return {}; // an old client without contexts: it has only DOCKER_HOST
  let context: {
    Name?: string;
    Endpoints?: { docker?: { Host?: string; SkipTLSVerify?: boolean } };
    TLSMaterial?: { docker?: string[] };
    Storage?: { TLSPath?: string };
  };
  try {
    context = JSON.parse(inspected.stdout) as typeof context;
  } catch {
    return {};
  }
  const host = context.Endpoints?.docker?.Host;
  if (!host) return {};
  const endpoint: Record<string, string> = { DOCKER_HOST: host };
  if (context.TLSMaterial?.docker?.length && context.Storage?.TLSPath) {
    endpoint.DOCKER_CERT_PATH = path.join(context.Storage.TLSPath, "docker");
    if (!context.Endpoints?.docker?.SkipTLSVerify) endpoint.DOCKER_TLS_VERIFY = "1";
  }
  return endpoint;
}

/**
 * A private Docker client config folder, so a registry login never lands in
 * the user's ~/.docker/config.json (nor in Docker Desktop's keychain). The
 * user's current context lives in their config folder, so it is resolved
 * first and passed on as DOCKER_HOST: Docker Desktop's `desktop-linux`,
 * Colima's socket or `DOCKER_CONTEXT` keep working for the push.
 */
export async function privateDockerConfig(env: Env): Promise<{ env: Record<string, string | undefined>; dispose(): void }> {
  const endpoint = await currentEndpoint(env);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "alekseylearn-docker-"));
  fs.chmodSync(dir, 0o700);
  // DOCKER_CONTEXT would name a context the private folder does not have.
  const { DOCKER_CONTEXT: _context, ...rest } = env;
  return { env: { ...rest, ...endpoint, DOCKER_CONFIG: dir }, dispose: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** `docker login` with the password on stdin (never on a command line or in a log). */
export async function login(registry: string, user: string, password: string, env: Env): Promise<void> {
  const result = await docker(["login", "--username", user, "--password-stdin", registry], { env, input: password });
  if (result.code !== 0) {
    throw failure(
      `docker login to ${registry} failed.`,
      "Check that the registry answers (the cloud's, or ALEKSEYLEARN_REGISTRY when set) and that you may push to it (ECR: ecr:GetAuthorizationToken; Artifact Registry: artifactregistry.repositories.uploadArtifacts).",
      result.tail.filter((line) => !line.includes(password)).slice(-3),
    );
  }
}

/** What a push did: the image's digest in the registry, and how many layers went up or were there already. */
export interface PushResult {
  digest: string;
  layersPushed: number;
  layersExisting: number;
  /** The layers sent, by the short ID `docker push` names them with: the first 12 hex digits of the layer's diff ID (its uncompressed digest). */
  pushedLayers: string[];
}

/** Where a push stands after one of its layers moved on: that layer's short ID and what happened to it, and how many of all the layers are done. */
export interface PushStep {
  layer: string;
  /** `pushed`, `already there` (or mounted from another repository of the registry). */
  status: string;
  done: number;
  total: number;
}

/** Push `tag`, failing clearly when the push does; returns the pushed manifest's digest. `onStep` hears of each layer as it is done. */
export async function pushImage(tag: string, env: Env, onStep?: (step: PushStep) => void): Promise<PushResult> {
  let layersExisting = 0;
  const pushedLayers: string[] = [];
  // Off a terminal `docker push` prints no progress bars, only each layer's changes of state ("Preparing", then "Pushed"): every
  // layer is named in a "Preparing" line before any is done, so their number is known when the first one ends.
  const layers = new Set<string>();
  let done = 0;
  let digest = "";
  const result = await docker(["push", tag], {
    env,
    onLine: (line) => {
      const state = /^([0-9a-f]{12}): (Preparing|Pushed|Layer already exists|Mounted from .*)$/.exec(line.trim());
      if (state) {
        const [, layer, said] = state as unknown as [string, string, string];
        layers.add(layer);
        if (said !== "Preparing") {
          if (said === "Pushed") pushedLayers.push(layer);
          else layersExisting++;
          onStep?.({ layer, status: said === "Pushed" ? "pushed" : "already there", done: ++done, total: layers.size });
        }
      }
      const found = /digest: (sha256:[0-9a-f]{64})/.exec(line);
      if (found) digest = found[1]!;
    },
  });
  if (result.code !== 0 || !digest) {
    throw failure(
      `docker push ${tag} failed${result.code === 0 ? " (no digest was reported)" : ""}.`,
      "Check the registry address and that your credentials may push to it.",
      result.tail.slice(-5),
    );
  }
  return { digest, layersPushed: pushedLayers.length, layersExisting, pushedLayers };
}

/** The folders of /opt/ml that SageMaker provides from outside the image (the code under /opt/ml/code comes with the image). */
export const ML_SUBFOLDERS = ["checkpoints", "input", "model", "output"] as const;

/** A host folder or file seen inside the container. */
export interface ContainerMount {
  host: string;
  inside: string;
  readOnly: boolean;
}

/** How a training container runs: SageMaker's way, with `train` as its command and /opt/ml from the host. */
export interface TrainingContainer {
  image: string;
  /** The container's name, so it can be stopped by name. */
  name: string;
  /** Host folder whose input, model, output and checkpoints folders are mounted under /opt/ml (the image's /opt/ml/code stays visible, as on SageMaker). */
  ml: string;
  /** Extra mounts (input channels, read-only). */
  mounts?: readonly ContainerMount[];
  /** Environment variables set in the container (SageMaker's `Environment`). */
  env?: Readonly<Record<string, string>>;
  /** Give the container every GPU. */
  gpus?: boolean;
  /** Arguments after `train` (the hyperparameters, for the job runtime). */
  args?: readonly string[];
  /** A network of its own instead of the host's, on which the container is `hostname` (as each host of a multi-instance job is algo-N). */
  network?: { name: string; hostname: string };
}

/** The arguments of `docker run` for a training container (pure). */
export function trainingRunArgs(container: TrainingContainer): string[] {
  // Host networking: the job reaches what this machine reaches, as it does on the local backend.
  const args = ["run", "--rm", "--name", container.name, "--network", container.network?.name ?? "host"];
  if (container.network) args.push("--network-alias", container.network.hostname, "--hostname", container.network.hostname);
  for (const sub of ML_SUBFOLDERS) args.push("--volume", `${container.ml}/${sub}:${ML_ROOT}/${sub}`);
  for (const mount of container.mounts ?? []) args.push("--volume", `${mount.host}:${mount.inside}${mount.readOnly ? ":ro" : ""}`);
  // Values go through the environment of `docker` itself (`--env NAME`), so none shows in a process list.
  for (const key of Object.keys(container.env ?? {}).sort()) args.push("--env", key);
  if (container.gpus) args.push("--gpus", "all");
  args.push(container.image, "train", ...(container.args ?? []));
  return args;
}
