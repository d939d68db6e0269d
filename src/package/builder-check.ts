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

/**
 * The image builder: Docker's daemon today. The daemonless builder (src/package/oci/, being added) is
 * checked here too when it lands: an image backend can build with either. The result is a `DoctorCheck` (backends/types.ts).
 */
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
