/**
 * What `scripts/test-services.sh start` promises the SageMaker tests, checked
 * against the real servers it starts: a private dockerd at DOCKER_HOST with no
 * bridge network, the debootstrapped `python:3.11-slim` base image, the
 * machine's wheel index over http reachable from a `--network host` build, and
 * a docker-registry on loopback that takes a push over plain http.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { dockerCli, dockerTestEnv, registryBytes, registryHas } from "../helpers/docker.js";
import { writeTree } from "../helpers/tree.js";
import { fileTimeLimit } from "../helpers/limit.js";

fileTimeLimit(15, import.meta.url);

const services = dockerTestEnv();
const nonce = randomBytes(6).toString("hex");
const repository = "services-test/joblib";
const local = `alekseylearn-services-test:${nonce}`;
const remote = `${services.registry}/${repository}:${nonce}`;
const contexts: string[] = [];

after(async () => {
  await dockerCli(["rmi", "--force", local, remote]).catch(() => undefined); // the daemon's data root is cached between runs
  for (const dir of contexts) fs.rmSync(dir, { recursive: true, force: true });
});

test("the private dockerd answers at DOCKER_HOST and has no bridge network", async () => {
  assert.match(services.DOCKER_HOST, /^unix:\/\//);
  const socketPath = services.DOCKER_HOST.slice("unix://".length);
  const ping = await new Promise<string>((resolve, reject) => {
    http
      .get({ socketPath, path: "/_ping" }, (response) => {
        let body = "";
        response
          .setEncoding("utf8")
          .on("data", (chunk: string) => (body += chunk))
          .on("end", () => resolve(body));
      })
      .on("error", reject);
  });
  assert.equal(ping, "OK");
  const networks = (await dockerCli(["network", "ls", "--format", "{{.Name}}"])).split("\n").filter(Boolean);
  assert.ok(networks.includes("host"), networks.join(", "));
  assert.ok(!networks.includes("bridge"), `no bridge network (--bridge=none): ${networks.join(", ")}`);
});

test("python:3.11-slim (debootstrapped Debian 12) runs python3 with venv, and reaches the host's loopback with --network host", async () => {
  assert.equal(services.baseImage, "python:3.11-slim");
  const script = "import sys, urllib.request, venv; print(sys.version_info[0], urllib.request.urlopen(sys.argv[1] + '/joblib/').status)";
  const out = await dockerCli(["run", "--rm", "--network", "host", services.baseImage, "python3", "-c", script, services.pipIndex]);
  assert.equal(out.trim(), "3 200");
  assert.ok((await dockerCli(["image", "inspect", "alekseylearn-test/python:3.11"])).includes("sha256:"), "the second tag exists too");
});

test("a --network host build pip-installs joblib from the wheel index over http; the image pushes to the registry over http", async () => {
  const context = writeTree({
    // The nonce is part of the RUN line, so pip really runs (not a cached step) and the pushed layer is new.
    Dockerfile: [
      `FROM ${services.baseImage}`,
      "ARG PIP_INDEX_URL",
      `RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check --index-url "$PIP_INDEX_URL" joblib && echo ${nonce} > /opt/nonce`,
      'CMD ["/opt/venv/bin/python", "-c", "import joblib; print(joblib.__version__)"]',
      "",
    ].join("\n"),
  });
  contexts.push(context);
  await dockerCli(["build", "--network", "host", "--build-arg", `PIP_INDEX_URL=${services.pipIndex}`, "--tag", local, context]);
  assert.match((await dockerCli(["run", "--rm", "--network", "host", local])).trim(), /^\d+\.\d+/, "joblib imports in the built image");

  const before = registryBytes();
  await dockerCli(["tag", local, remote]);
  const pushed = await dockerCli(["push", remote]);
  const digest = /digest: (sha256:[0-9a-f]{64})/.exec(pushed)?.[1];
  assert.ok(digest, `docker push names the digest:\n${pushed}`);
  assert.ok(await registryHas(repository, digest), `the registry holds ${repository}@${digest}`);
  assert.equal(await registryHas(repository, `sha256:${"0".repeat(64)}`), false, "and not a digest never pushed");
  assert.ok(registryBytes() > before, `registryBytes grew (${before} -> ${registryBytes()})`);
  assert.ok(fs.existsSync(path.join(services.registryData, "docker", "registry", "v2", "repositories", repository)));
});
