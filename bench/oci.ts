/**
 * The daemonless builder (`alekseylearn build`, config.builder=oci) against Docker, printed as
 * ratios measured side by side in one run, on examples/iris:
 *   - cold (build and push from nothing: an empty pip cache, an empty registry): `alekseylearn
 *     build` with no Docker reachable against `docker build --no-cache && docker push`, and
 *     against `skopeo copy` of the built image from a local folder to an empty registry (the
 *     transfer alone; target ≤ 0.5 × Docker's);
 *   - unchanged resubmission: `alekseylearn build` again against the cached `docker build &&
 *     docker push` (target ≤ 1 ×, 0 bytes pushed);
 *   - a one-line code change: the same comparison (target ≤ 1 ×), and the bytes pushed.
 * Both builders start from the same base image, read from the test registry (Docker pulls it
 * before anything is timed), and push everything to a fresh docker-registry of their own, so
 * neither mounts what the other pushed. Needs the Docker test services (`npm run bench` starts
 * them) and skopeo; nothing here asserts.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { buildSpec } from "../src/jobs/spec.js";
import { contextRuntimeFiles, dockerfileFor } from "../src/package/image.js";
import { pushTestBase, startRegistry, type TestRegistry } from "../test/helpers/registry.js";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const cli = path.join(repo, "dist", "src", "cli", "main.js");
const source = process.env.ALEKSEYLEARN_TEST_REGISTRY;
const pipIndex = process.env.ALEKSEYLEARN_TEST_PIP_INDEX;
if (!process.env.DOCKER_HOST || !source || !pipIndex) {
  console.error("bench/oci: the Docker test services are not running; `npm run bench` starts them (scripts/test-services.sh start DIR).");
  process.exit(1);
}

/** Run a command to its end without blocking (the registries' helpers live in this process): wall seconds and stdout. */
function run(command: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv }): Promise<{ seconds: number; stdout: string }> {
  const start = process.hrtime.bigint();
  const child = spawn(command, args, { ...options, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) =>
    child.on("close", (code) => {
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      if (code !== 0) reject(new Error(`${command} ${args.join(" ")} failed:\n${stderr.slice(-3000)}`));
      else resolve({ seconds, stdout });
    }),
  );
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), "alekseylearn-bench-oci-"));
const registries: TestRegistry[] = [];
const freshRegistry = async (): Promise<TestRegistry> => {
  const made = await startRegistry(fs.mkdtempSync(path.join(work, "registry-")));
  registries.push(made);
  return made;
};
try {
  const base = await pushTestBase(source, "bench/base", "3.11-slim");
  const dockerEnv: NodeJS.ProcessEnv = { ...process.env, PIP_INDEX_URL: pipIndex, DOCKER_BUILDKIT: "0" };
  await run("docker", ["pull", base], { cwd: work, env: dockerEnv });

  // The same project twice: as the daemonless builder reads it, and as a Docker build context with the generated Dockerfile.
  const ociDir = path.join(work, "oci");
  const dockerDir = path.join(work, "docker");
  for (const dir of [ociDir, dockerDir]) fs.cpSync(path.join(repo, "examples", "iris"), dir, { recursive: true });
  fs.writeFileSync(path.join(dockerDir, "Dockerfile"), dockerfileFor(await buildSpec({ artifact: "train.py", backend: "local" }, dockerDir), base));
  for (const [name, text] of Object.entries(contextRuntimeFiles())) {
    fs.mkdirSync(path.dirname(path.join(dockerDir, name)), { recursive: true });
    fs.writeFileSync(path.join(dockerDir, name), text);
  }

  const cache = path.join(work, "cache");
  const ociEnv: NodeJS.ProcessEnv = {
    ...process.env,
    DOCKER_HOST: "unix:///nonexistent/docker.sock",
    PIP_INDEX_URL: pipIndex,
    // No pip cache either: Docker's build installs with --no-cache-dir.
    PIP_NO_CACHE_DIR: "1",
    XDG_CACHE_HOME: cache,
    XDG_STATE_HOME: path.join(work, "state"),
  };
  const ociTarget = await freshRegistry();
  const ociBuild = async (): Promise<{ seconds: number; pushed: number; image: string }> => {
    const { seconds, stdout } = await run(
      process.execPath,
      [cli, "build", "train.py", "--to", `${ociTarget.host}/iris`, `--config.base_image=${base}`, "--json"],
      {
        cwd: ociDir,
        env: ociEnv,
      },
    );
    const result = JSON.parse(stdout) as { pushed_bytes: number; image: string };
    return { seconds, pushed: result.pushed_bytes, image: result.image };
  };
  const dockerTarget = await freshRegistry();
  const dockerBuildPush = async (noCache: boolean): Promise<number> => {
    const tag = `${dockerTarget.host}/iris:latest`;
    const built = await run("docker", ["build", ...(noCache ? ["--no-cache"] : []), "--network", "host", "--build-arg", "PIP_INDEX_URL", "-t", tag, "."], {
      cwd: dockerDir,
      env: dockerEnv,
    });
    return built.seconds + (await run("docker", ["push", tag], { cwd: dockerDir, env: dockerEnv })).seconds;
  };

  const coldOci = await ociBuild();
  const coldDocker = await dockerBuildPush(true);
  const layout = path.join(work, "layout");
  await run("skopeo", ["copy", "--src-tls-verify=false", `docker://${coldOci.image}`, `dir:${layout}`], { cwd: work, env: process.env });
  const skopeoTarget = await freshRegistry();
  const coldSkopeo = (
    await run("skopeo", ["copy", "--dest-tls-verify=false", `dir:${layout}`, `docker://${skopeoTarget.host}/iris:latest`], { cwd: work, env: process.env })
  ).seconds;

  const sameOci = await ociBuild();
  const sameDocker = await dockerBuildPush(false);

  for (const dir of [ociDir, dockerDir]) fs.appendFileSync(path.join(dir, "train.py"), "# a one-line change\n");
  const changedOci = await ociBuild();
  const changedDocker = await dockerBuildPush(false);

  const mib = (bytes: number): string => (bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${(bytes / 1024 / 1024).toFixed(1)} MiB`);
  const ratio = (a: number, b: number): string => `${(a / b).toFixed(2)} ×`;
  console.log(`Daemonless build and push (alekseylearn build, no Docker) against Docker, examples/iris, one run each, ${os.cpus().length} cores:`);
  console.log("");
  console.log("what                                   alekseylearn build        compared with                               ratio    target");
  console.log(
    `cold (empty cache, empty registry)     ${`${coldOci.seconds.toFixed(2)} s, ${mib(coldOci.pushed)}`.padEnd(26)}${`docker build --no-cache && push ${coldDocker.toFixed(2)} s`.padEnd(44)}${ratio(coldOci.seconds, coldDocker).padEnd(9)}≤ 0.5 ×`,
  );
  console.log(`${"".padEnd(65)}${`skopeo copy of the image ${coldSkopeo.toFixed(2)} s`.padEnd(44)}${ratio(coldOci.seconds, coldSkopeo)}`);
  console.log(
    `unchanged resubmission                 ${`${sameOci.seconds.toFixed(2)} s, ${sameOci.pushed} bytes`.padEnd(26)}${`cached docker build && push ${sameDocker.toFixed(2)} s`.padEnd(44)}${ratio(sameOci.seconds, sameDocker).padEnd(9)}≤ 1 ×, 0 bytes`,
  );
  console.log(
    `one-line code change                   ${`${changedOci.seconds.toFixed(2)} s, ${mib(changedOci.pushed)}`.padEnd(26)}${`cached docker build && push ${changedDocker.toFixed(2)} s`.padEnd(44)}${ratio(changedOci.seconds, changedDocker).padEnd(9)}≤ 1 ×`,
  );
} finally {
  for (const made of registries) await made.stop();
  fs.rmSync(work, { recursive: true, force: true });
}
