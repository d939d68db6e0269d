/**
 * The local container runner with config.builder=oci, on the test dockerd:
 * the image is assembled without `docker build` (the base read from the test
 * registry, the real Debian docker-registry) and handed to Docker with
 * `docker load`; it is the very image `alekseylearn build` pushes for
 * SageMaker (same config digest, so the same image ID and layer diffIDs), the
 * job trains and its model comes back, and an unchanged resubmission loads
 * nothing.
 */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { cliEnv, copyExample, runCli } from "../helpers/cli.js";
import { dockerCli, dockerTestEnv } from "../helpers/docker.js";
import { fileTimeLimit } from "../helpers/limit.js";
import { pushTestBase } from "../helpers/registry.js";
import { listTree } from "../helpers/tree.js";

fileTimeLimit(5, import.meta.url);

const docker = dockerTestEnv();
let base: string;

before(async () => {
  base = await pushTestBase(docker.registry, "local-oci/python");
});

test("real dockerd + registry, runner=docker builder=oci: docker load runs the image `build` pushes (same ID); the model comes back; a resubmission loads nothing", async () => {
  const dir = copyExample("iris");
  // A file of this run's own in the code layer: the image is new to the daemon (its images outlive a run of the suite).
  fs.writeFileSync(path.join(dir, "run-id.txt"), randomBytes(8).toString("hex"));
  const { env } = cliEnv({ DOCKER_HOST: docker.DOCKER_HOST });
  const fit = ["fit", "train.py", "--config.runner=docker", "--config.builder=oci", `--config.base_image=${base}`, "--json"];

  const first = await runCli(fit, { cwd: dir, env });
  assert.equal(first.code, 0, first.stderr);
  const job = JSON.parse(first.stdout) as { name: string; state: string; provider: { builder: string; load: string; imageId: string } };
  assert.equal(job.state, "completed");
  assert.equal(job.provider.builder, "oci");
  assert.equal(job.provider.load, "loaded");
  assert.match(first.stderr, /training on 112 samples/);
  const to = fs.mkdtempSync(path.join(os.tmpdir(), "fetched-"));
  const fetched = await runCli(["fetch", job.name, "--to", to], { cwd: dir, env });
  assert.equal(fetched.code, 0, fetched.stderr);
  assert.deepEqual(listTree(to), ["metrics.json", "model.joblib"]);

  // `alekseylearn build` of the same folder: its config's digest is the ID of the image the job ran.
  const built = await runCli(["build", "train.py", "--to", `${docker.registry}/local-oci/iris`, `--config.base_image=${base}`, "--json"], { cwd: dir, env });
  assert.equal(built.code, 0, built.stderr);
  const { digest } = JSON.parse(built.stdout) as { digest: string };
  const manifest = (await (
    await fetch(`http://${docker.registry}/v2/local-oci/iris/manifests/${digest}`, {
      headers: { Accept: "application/vnd.docker.distribution.manifest.v2+json" },
    })
  ).json()) as { config: { digest: string } };
  assert.equal(job.provider.imageId, manifest.config.digest);
  const config = (await (await fetch(`http://${docker.registry}/v2/local-oci/iris/blobs/${manifest.config.digest}`)).json()) as {
    rootfs: { diff_ids: string[] };
  };
  const layers = JSON.parse(await dockerCli(["image", "inspect", "--format", "{{json .RootFS.Layers}}", job.provider.imageId])) as string[];
  assert.deepEqual(layers, config.rootfs.diff_ids);

  // Unchanged: the daemon has the image, so nothing is loaded.
  const again = await runCli(fit, { cwd: dir, env });
  assert.equal(again.code, 0, again.stderr);
  const second = JSON.parse(again.stdout) as { state: string; provider: { load: string; imageId: string } };
  assert.equal(second.state, "completed");
  assert.equal(second.provider.load, "present");
  assert.equal(second.provider.imageId, job.provider.imageId);
  assert.match(again.stderr, /nothing to load/);
  assert.doesNotMatch(again.stderr, /docker load/);
});

test("config.builder with runner=process is refused before anything runs, naming runner=docker", async () => {
  const dir = copyExample("iris");
  const { env } = cliEnv();
  const result = await runCli(["fit", "train.py", "--config.builder=oci"], { cwd: dir, env });
  assert.equal(result.code, 2, result.stderr);
  assert.match(result.stderr, /config\.builder=oci builds the job's image, but runner=process builds none; add --config\.runner=docker/);
});
