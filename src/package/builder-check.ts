/** The `doctor` check of the image builder, shared by the local backend (runner=docker) and the image backends. */
import { spawn } from "node:child_process";
import type { Context } from "../context.js";
import { which } from "./which.js";

/** Run a program briefly; its output and exit code, or the error that kept it from starting. */
export function probe(command: string, args: readonly string[], ctx: Context, timeoutMs = 15_000): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: ctx.cwd, env: ctx.env as NodeJS.ProcessEnv, stdio: ["ignore", "pipe", "pipe"], timeout: timeoutMs });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk));
    child.on("error", (err) => resolve({ code: null, output: err.message }));
    child.on("close", (code) => resolve({ code, output: output.trim() }));
  });
}

/** The image builder through Docker's daemon (config.builder=docker, and auto for an artifact that needs Docker). The result is a `DoctorCheck` (backends/types.ts). */
export async function imageBuilderCheck(ctx: Context): Promise<{ check: string; status: "ok" | "fail"; detail: string; fix?: string }> {
  const docker = which("docker", ctx.env.PATH);
  if (!docker)
    return {
      check: "image builder",
      status: "fail",
      detail: "docker is not on PATH",
      fix: "Install Docker (https://docs.docker.com/engine/install/) and start its daemon.",
    };
  const { code, output } = await probe(docker, ["version", "--format", "{{.Server.Version}}"], ctx);
  if (code !== 0)
    return {
      check: "image builder",
      status: "fail",
      detail: `Docker's daemon does not answer${ctx.env.DOCKER_HOST ? ` at ${ctx.env.DOCKER_HOST}` : ""}: ${output.split("\n").pop()}`,
      fix: "Start it (sudo systemctl start docker), or point DOCKER_HOST at a running one; your user must be allowed to use it (the docker group).",
    };
  return { check: "image builder", status: "ok", detail: `Docker ${output.split("\n").pop()}${ctx.env.DOCKER_HOST ? ` at ${ctx.env.DOCKER_HOST}` : ""}` };
}

/**
 * The daemonless builder (src/package/oci, config.builder=oci and auto): it
 * needs no Docker, only python3 with pip, which installs the environment's
 * linux/amd64 wheels with `pip install --target`.
 */
export async function daemonlessBuilderCheck(ctx: Context): Promise<{ check: string; status: "ok" | "fail"; detail: string; fix?: string }> {
  const python = which("python3", ctx.env.PATH);
  const fix = "Install Python 3 with pip (Debian/Ubuntu: apt-get install python3-pip), or build with Docker (config.builder=docker).";
  if (!python) return { check: "daemonless builder", status: "fail", detail: "python3 is not on PATH (pip installs the environment's wheels)", fix };
  const { code, output } = await probe(python, ["-m", "pip", "--version"], ctx);
  if (code !== 0) return { check: "daemonless builder", status: "fail", detail: `${python} -m pip does not run: ${output.split("\n").pop()}`, fix };
  const version = /^pip (\S+)/.exec(output)?.[1] ?? "?";
  return {
    check: "daemonless builder",
    status: "ok",
    detail: `available with no Docker (config.builder=oci, and auto): pip ${version} for the environment's linux/amd64 wheels`,
  };
}

/**
 * An image backend's builder checks for `builder` (config.builder): the
 * Docker daemon and the daemonless builder. With auto or oci and the
 * daemonless builder ready, a missing Docker is only a skip: it is needed
 * only by config.builder=docker or an artifact that needs Docker.
 */
export async function imageBuilderChecks(
  ctx: Context,
  builder: string,
): Promise<Array<{ check: string; status: "ok" | "fail" | "skip"; detail: string; fix?: string }>> {
  const [docker, daemonless] = await Promise.all([imageBuilderCheck(ctx), daemonlessBuilderCheck(ctx)]);
  if (builder === "docker") return [docker, { check: daemonless.check, status: "skip", detail: "config.builder=docker" }];
  const dockerLine =
    docker.status === "fail" && daemonless.status === "ok"
      ? {
          check: docker.check,
          status: "skip" as const,
          detail: `${docker.detail}; needed only with config.builder=docker or an artifact that needs Docker (environment.yml, apt.txt, its own Dockerfile)`,
        }
      : docker;
  return [
    dockerLine,
    builder === "oci" ? daemonless : daemonless.status === "fail" && docker.status === "ok" ? { ...daemonless, status: "skip" as const } : daemonless,
  ];
}
