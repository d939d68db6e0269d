/**
 * Resubmitting a SageMaker job, printed as comparisons measured side by side in one run:
 *   - code and environment unchanged: layers built and bytes pushed (target: 0 and 0), and the
 *     wall time of `fit --detach` (build, push, CreateTrainingJob) against the cached
 *     `docker build && docker push` of the same image (target ≤ 1 ×); config.builder=auto falls
 *     back to Docker there, since python:3.11-slim is in no registry here (only in the test
 *     dockerd), so the same is measured again with config.builder=oci on the test base pushed to
 *     the test registry (the daemonless path issue 22 is about);
 *   - after a one-line code change: bytes pushed against the size of the code layer (target
 *     ≤ 1.1 ×), and the same time comparison.
 * Bytes pushed are measured where they land: the growth of the registry's blob store.
 * Needs the Docker test services (`scripts/test-services.sh start DIR`, which `npm run bench`
 * starts) and moto; nothing here asserts.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { registryBytes } from "../test/helpers/docker.js";
import { pushTestBase } from "../test/helpers/registry.js";
import { startMoto } from "../test/helpers/servers.js";
import { RUNTIME_IN_CONTEXT, runtimeFiles } from "../src/package/runtime.js";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const cli = path.join(repo, "dist", "src", "cli", "main.js");
const registry = process.env.ALEKSEYLEARN_TEST_REGISTRY;
const registryData = process.env.ALEKSEYLEARN_TEST_REGISTRY_DATA;
const pipIndex = process.env.ALEKSEYLEARN_TEST_PIP_INDEX;
if (!process.env.DOCKER_HOST || !registry || !registryData || !pipIndex) {
  console.error("bench/resubmit: the Docker test services are not running; `npm run bench` starts them (scripts/test-services.sh start DIR).");
  process.exit(1);
}

function run(command: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv }): { seconds: number; stdout: string } {
  const start = process.hrtime.bigint();
  const result = spawnSync(command, args, { ...options, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (result.status !== 0) throw new Error(`${command} ${args.join(" ")} failed:\n${result.stderr}`);
  return { seconds, stdout: result.stdout };
}

const moto = await startMoto();
// The benchmark's folders (projects, and a home with its own state and cache), removed at its end.
const made: string[] = [];
const tempDir = (prefix: string): string => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(dir);
  return dir;
};
try {
  const project = tempDir("alekseylearn-bench-resubmit-");
  fs.cpSync(path.join(repo, "examples", "iris"), project, { recursive: true });
  const home = tempDir("alekseylearn-bench-home-");
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    AWS_ACCESS_KEY_ID: "testing",
    AWS_SECRET_ACCESS_KEY: "testing",
    AWS_REGION: "us-east-1",
    AWS_ENDPOINT_URL: moto.url,
    AWS_EC2_METADATA_DISABLED: "true",
    ALEKSEYLEARN_REGISTRY: registry,
    PIP_INDEX_URL: pipIndex,
    XDG_STATE_HOME: path.join(home, "state"),
    XDG_CACHE_HOME: path.join(home, "cache"),
  };
  const output = "s3://bench/sagemaker/runs";
  run("aws", ["s3", "mb", "s3://bench", "--endpoint-url", moto.url], { cwd: project, env });
  // The role, and the Dockerfile that plain docker builds from (the same one fit uses).
  run(process.execPath, [cli, "init", "train.py", "--backend", "sagemaker", "--create-role", `--config.output_path=${output}`], { cwd: project, env });
  // That Dockerfile copies the job runtime from the build context, where fit puts it: plain docker gets the same files.
  for (const [name, text] of Object.entries(runtimeFiles())) {
    fs.mkdirSync(path.dirname(path.join(project, RUNTIME_IN_CONTEXT, name)), { recursive: true });
    fs.writeFileSync(path.join(project, RUNTIME_IN_CONTEXT, name), text);
  }

  const fit = (): { seconds: number; bytes: number; steps: number; layers: number; image: string } => {
    const before = registryBytes();
    const { seconds, stdout } = run(process.execPath, [cli, "fit", "train.py", `--config.output_path=${output}`, "--detach", "--json"], { cwd: project, env });
    const record = JSON.parse(stdout) as { provider: Record<string, string> };
    return {
      seconds,
      bytes: registryBytes() - before,
      steps: Number(record.provider.stepsRun),
      layers: Number(record.provider.layersPushed),
      image: record.provider.image!,
    };
  };
  /** The image's manifest as the registry serves it: its own size, its config's, and its layers' (compressed, as pushed). */
  const manifest = async (image: string): Promise<{ bytes: number; config: number; layers: number[] }> => {
    const [name, digest] = image.slice(registry.length + 1).split("@");
    const response = await fetch(`http://${registry}/v2/${name}/manifests/${digest}`, {
      headers: { Accept: "application/vnd.docker.distribution.manifest.v2+json" },
    });
    const text = await response.text();
    const parsed = JSON.parse(text) as { config: { size: number }; layers: { size: number }[] };
    return { bytes: Buffer.byteLength(text), config: parsed.config.size, layers: parsed.layers.map((layer) => layer.size) };
  };
  const plainTag = `${registry}/bench/plain:latest`;
  const plain = (): number =>
    run("docker", ["build", "--network", "host", "--build-arg", "PIP_INDEX_URL", "-t", plainTag, "."], { cwd: project, env: { ...env, DOCKER_BUILDKIT: "0" } })
      .seconds + run("docker", ["push", plainTag], { cwd: project, env }).seconds;

  const first = fit();
  plain(); // warms plain docker's cache and puts its image in the registry
  const same = fit();
  const plainSame = plain();

  fs.appendFileSync(path.join(project, "train.py"), "# a one-line change\n");
  const plainChanged = plain();
  fs.appendFileSync(path.join(project, "train.py"), "# another one-line change\n");
  const changed = fit();
  // The code is the image's last layer (COPY . /opt/ml/code; what follows it makes no layer).
  const shape = await manifest(changed.image);
  const codeLayer = shape.layers[shape.layers.length - 1]!;
  const layerBytesMoved = changed.bytes - shape.bytes - shape.config;

  // The daemonless builder: the same project in another folder, its base read from the test registry.
  const ociBase = await pushTestBase(registry, "bench/base", "3.11-slim");
  const ociProject = tempDir("alekseylearn-bench-resubmit-oci-");
  fs.cpSync(path.join(repo, "examples", "iris"), ociProject, { recursive: true });
  const ociConfig = [`--config.output_path=${output}`, "--config.builder=oci", `--config.base_image=${ociBase}`];
  run(process.execPath, [cli, "init", "train.py", "--backend", "sagemaker", ...ociConfig], { cwd: ociProject, env });
  const fitOci = (): { seconds: number; bytes: number } => {
    const before = registryBytes();
    const { seconds } = run(process.execPath, [cli, "fit", "train.py", ...ociConfig, "--detach", "--json"], { cwd: ociProject, env });
    return { seconds, bytes: registryBytes() - before };
  };
  fitOci();
  const sameOci = fitOci();
  const plainSameAgain = plain();

  const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(2)} MiB`;
  console.log("Resubmission to SageMaker (moto + a local registry), one run each:");
  console.log(`  first submission:           ${first.seconds.toFixed(2)} s, ${first.steps} steps built, ${first.layers} layers and ${mib(first.bytes)} pushed`);
  console.log(
    `  unchanged:                  ${same.seconds.toFixed(2)} s, ${same.steps} steps built, ${same.layers} layers and ${same.bytes} bytes pushed (target: 0 and 0)`,
  );
  console.log(`    cached docker build && docker push: ${plainSame.toFixed(2)} s → ${(same.seconds / plainSame).toFixed(2)} × (target ≤ 1 ×)`);
  console.log(
    `  unchanged, config.builder=oci: ${sameOci.seconds.toFixed(2)} s, ${sameOci.bytes} bytes pushed; cached docker build && docker push ${plainSameAgain.toFixed(2)} s → ${(sameOci.seconds / plainSameAgain).toFixed(2)} × (target ≤ 1 ×)`,
  );
  console.log(
    `  one-line code change:       ${changed.seconds.toFixed(2)} s, ${changed.steps} steps built, ${changed.layers} layers and ${changed.bytes} bytes pushed`,
  );
  console.log(
    `    layer bytes that moved: ${layerBytesMoved} (all pushed bytes less the new manifest, ${shape.bytes}, and image config, ${shape.config}); the code layer: ${codeLayer} → ${(layerBytesMoved / codeLayer).toFixed(2)} × (target ≤ 1.1 ×)`,
  );
  console.log(
    `    docker build && docker push after the same change: ${plainChanged.toFixed(2)} s → ${(changed.seconds / plainChanged).toFixed(2)} × (target ≤ 1 ×)`,
  );
} finally {
  await moto.stop();
  for (const dir of made) fs.rmSync(dir, { recursive: true, force: true });
}
