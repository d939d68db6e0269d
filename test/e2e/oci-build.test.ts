/**
 * `alekseylearn build`, the daemonless builder, against the real Debian
 * docker-registry on loopback with no Docker daemon reachable by the CLI
 * (DOCKER_HOST points nowhere): what it pushes is read back with skopeo,
 * which nobody here wrote; the same inputs in another folder give the same
 * digests and upload nothing; a connection dropped mid-blob is retried and
 * nothing partial is referenced; an unchanged rebuild to the same tag makes one
 * HEAD at the target and uploads nothing; Basic auth (the registry's htpasswd) works
 * and a wrong password is a clear error.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { promisify } from "node:util";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { cliEnv, copyExample, runCli } from "../helpers/cli.js";
import { fileTimeLimit } from "../helpers/limit.js";
import { folderEntries, layerOf } from "../../src/package/oci/layer.js";
import { noDockerEnv, pushTestBase, startRegistry, startTokenServer, type TestRegistry } from "../helpers/registry.js";

fileTimeLimit(10, import.meta.url);

const execFileAsync = promisify(execFile);
const NO_DOCKER = noDockerEnv();
let registry: TestRegistry;
let base: string;

before(async () => {
  registry = await startRegistry(fs.mkdtempSync(path.join(os.tmpdir(), "oci-registry-")));
  base = await pushTestBase(registry.host);
});
after(async () => {
  await registry?.stop();
});

/**
 * skopeo, run without blocking: the fault-injecting proxy lives in this
 * process, so a synchronous child would wait on a proxy that cannot answer.
 */
async function skopeo(args: string[]): Promise<string> {
  const { stdout } = await execFileAsync("skopeo", ["--command-timeout", "60s", ...args], { encoding: "utf8", timeout: 90_000 });
  return stdout;
}

async function build(
  dir: string,
  to: string,
  extra: Record<string, string> = {},
  baseImage = base,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runCli(["build", "train.py", "--to", to, `--config.base_image=${baseImage}`, "--json"], { cwd: dir, env: cliEnv({ ...NO_DOCKER, ...extra }).env });
}

test(
  "build pushes examples/iris with no Docker; skopeo reads it back; the same files elsewhere give the same digest and upload nothing",
  { timeout: 180_000 },
  async () => {
    const first = await build(copyExample("iris"), `${registry.host}/iris:one`);
    assert.equal(first.code, 0, first.stderr);
    const pushed = JSON.parse(first.stdout) as { image: string; digest: string; layers: number; pushed_bytes: number };
    assert.equal(pushed.image, `${registry.host}/iris@${pushed.digest}`);
    assert.equal(pushed.layers, 4, "base, environment, runtime, code");
    const inspected = JSON.parse(await skopeo(["inspect", "--tls-verify=false", `docker://${pushed.image}`])) as {
      Architecture: string;
      Os: string;
      Env: string[];
      Layers: string[];
    };
    assert.equal(`${inspected.Os}/${inspected.Architecture}`, "linux/amd64");
    assert.ok(inspected.Env.includes("ALEKSEYLEARN_ENTRY=train.py"));
    const raw = JSON.parse(await skopeo(["inspect", "--raw", "--tls-verify=false", `docker://${pushed.image}`])) as { mediaType: string };
    assert.equal(raw.mediaType, "application/vnd.docker.distribution.manifest.v2+json");
    // skopeo copy checks every blob against its digest.
    const copy = fs.mkdtempSync(path.join(os.tmpdir(), "oci-copy-"));
    await skopeo(["copy", "--src-tls-verify=false", `docker://${pushed.image}`, `dir:${copy}`]);
    const code = execFileSync("tar", ["-xzOf", path.join(copy, inspected.Layers[3]!.slice(7)), "opt/ml/code/train.py"], { encoding: "utf8" });
    assert.equal(code, fs.readFileSync(path.join(copyExample("iris"), "train.py"), "utf8"));

    const again = await build(copyExample("iris"), `${registry.host}/iris:two`);
    assert.equal(again.code, 0, again.stderr);
    const second = JSON.parse(again.stdout) as { digest: string; pushed_bytes: number };
    assert.equal(second.digest, pushed.digest, "the same inputs in another folder give the same image");
    assert.equal(second.pushed_bytes, 0);
  },
);

test("packages the base image already has (its *.dist-info) are not installed again in the environment layer", { timeout: 180_000 }, async () => {
  // joblib as iris's environment layer has it, put in a base image's dist-packages the way pip installs it there.
  const first = await build(copyExample("iris"), `${registry.host}/iris:dists`);
  assert.equal(first.code, 0, first.stderr);
  const inspected = JSON.parse(await skopeo(["inspect", "--tls-verify=false", `docker://${registry.host}/iris:dists`])) as { Layers: string[] };
  const unpacked = fs.mkdtempSync(path.join(os.tmpdir(), "oci-env-"));
  execFileSync("tar", ["-xzf", "-", "-C", unpacked], { input: await blob("iris", inspected.Layers[1]!) });
  const site = path.join(unpacked, "opt", "alekseylearn", "site-packages");
  const distInfo = fs.readdirSync(site).find((name) => /^joblib-.*\.dist-info$/.test(name));
  assert.ok(distInfo, "iris's environment has joblib");
  const dist = fs.mkdtempSync(path.join(os.tmpdir(), "oci-dist-"));
  for (const name of ["joblib", distInfo]) fs.cpSync(path.join(site, name), path.join(dist, name), { recursive: true });
  const withJoblib = await pushTestBase(registry.host, "library/python", "3.11-joblib", undefined, [
    layerOf(folderEntries(dist, "usr/local/lib/python3.11/dist-packages")),
  ]);

  const again = await build(copyExample("iris"), `${registry.host}/iris:on-joblib`, {}, withJoblib);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /Not installing again what the base image has: joblib \d/);
  const listed = JSON.parse(await skopeo(["inspect", "--tls-verify=false", `docker://${registry.host}/iris:on-joblib`])) as { Layers: string[] };
  const names = execFileSync("tar", ["-tzf", "-"], { input: await blob("iris", listed.Layers[2]!), encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  assert.match(names, /site-packages\/sklearn\//, "the rest of the environment is there");
  assert.doesNotMatch(names, /joblib/, "joblib, which the base has at the same version, is not");
});

/** A blob of the test registry, as it stores it. */
async function blob(repository: string, digest: string): Promise<Buffer> {
  const response = await fetch(`http://${registry.host}/v2/${repository}/blobs/${digest}`, { signal: AbortSignal.timeout(60_000) });
  assert.equal(response.status, 200);
  return Buffer.from(await response.arrayBuffer());
}

/** A TCP proxy to `target` that cuts the first connection carrying more than `after` bytes to the registry. */
async function droppingProxy(target: string, after: number): Promise<{ host: string; dropped: () => number; close(): void }> {
  const [host, port] = target.split(":");
  let dropped = 0;
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(port), host);
    let seen = 0;
    client.on("data", (chunk) => {
      seen += chunk.length;
      if (dropped === 0 && seen > after) {
        dropped++;
        client.destroy();
        upstream.destroy();
        return;
      }
      upstream.write(chunk);
    });
    // Registry → client as a pipe, so an answer is flushed before its connection is closed.
    upstream.pipe(client);
    client.on("end", () => upstream.end());
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { host: `127.0.0.1:${(server.address() as net.AddressInfo).port}`, dropped: () => dropped, close: () => server.close() };
}

/** An HTTP proxy to `target` that logs every request as "METHOD PATH" (the registry's own access log is off). */
async function loggingProxy(target: string): Promise<{ host: string; log: string[]; close(): void }> {
  const [host, port] = target.split(":");
  const log: string[] = [];
  const server = http.createServer((request, response) => {
    log.push(`${request.method} ${request.url}`);
    // The Host header goes through unchanged, so the registry's Location answers point at the proxy.
    const upstream = http.request({ host, port: Number(port), method: request.method, path: request.url, headers: request.headers }, (answer) => {
      response.writeHead(answer.statusCode!, answer.headers);
      answer.pipe(response);
    });
    upstream.on("error", () => response.destroy());
    request.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { host: `127.0.0.1:${(server.address() as net.AddressInfo).port}`, log, close: () => server.close() };
}

test(
  "an unchanged rebuild to the same tag reads the base's manifest and HEADs the tag, nothing else; a changed file is pushed",
  { timeout: 180_000 },
  async () => {
    const dir = copyExample("iris");
    const proxy = await loggingProxy(registry.host);
    try {
      const viaProxy = base.replace(registry.host, proxy.host);
      const first = await build(dir, `${proxy.host}/same:v1`, {}, viaProxy);
      assert.equal(first.code, 0, first.stderr);
      const pushed = JSON.parse(first.stdout) as { digest: string };

      proxy.log.length = 0;
      const again = await build(dir, `${proxy.host}/same:v1`, {}, viaProxy);
      assert.equal(again.code, 0, again.stderr);
      const second = JSON.parse(again.stdout) as { digest: string; pushed_bytes: number };
      assert.equal(second.digest, pushed.digest);
      assert.equal(second.pushed_bytes, 0);
      // The tag is read every time (it may have moved); the base's config comes from the cache by its digest.
      assert.deepEqual(proxy.log, [`GET /v2/library/python/manifests/3.11-slim`, `HEAD /v2/same/manifests/v1`]);

      fs.appendFileSync(path.join(dir, "train.py"), "# a one-line change\n");
      proxy.log.length = 0;
      const changed = await build(dir, `${proxy.host}/same:v1`, {}, viaProxy);
      assert.equal(changed.code, 0, changed.stderr);
      const third = JSON.parse(changed.stdout) as { digest: string; pushed_bytes: number };
      assert.notEqual(third.digest, pushed.digest);
      assert.ok(third.pushed_bytes > 0, "the new code layer and config are uploaded");
      assert.ok(proxy.log.includes("PUT /v2/same/manifests/v1"), `the tag moves: ${proxy.log.join(", ")}`);
      const tagged = JSON.parse(await skopeo(["inspect", "--tls-verify=false", `docker://${registry.host}/same:v1`])) as { Digest: string };
      assert.equal(tagged.Digest, third.digest);
    } finally {
      proxy.close();
    }
  },
);

test("a connection dropped mid-blob is retried, and the image reads back whole", { timeout: 180_000 }, async () => {
  const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "oci-drop-")), "drop");
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, "train.py"), "print('hello')\n");
  fs.writeFileSync(path.join(dir, "data.bin"), randomBytes(2 * 1024 * 1024));
  const proxy = await droppingProxy(registry.host, 1024 * 1024);
  try {
    // The base through the proxy too, so its layers are mounted and the cut falls in the code layer's upload.
    const result = await build(dir, `${proxy.host}/drop:one`, {}, base.replace(registry.host, proxy.host));
    assert.equal(result.code, 0, result.stderr);
    assert.equal(proxy.dropped(), 1, "the proxy cut one upload");
    const { digest } = JSON.parse(result.stdout) as { digest: string };
    // Read back from the registry itself: every blob the manifest names is there whole (skopeo checks each digest).
    await skopeo(["copy", "--src-tls-verify=false", `docker://${registry.host}/drop@${digest}`, `dir:${fs.mkdtempSync(path.join(os.tmpdir(), "oci-copy-"))}`]);
  } finally {
    proxy.close();
  }
});

test("Basic auth from the registry's htpasswd: the right password pushes, a wrong one is a clear error", { timeout: 180_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "oci-basic-"));
  // bcrypt, as the registry's htpasswd auth requires (distribution docs/configuration.md, "htpasswd"); cost 4 keeps each request fast.
  const hash = execFileSync("python3", ["-c", "import crypt; print(crypt.crypt('s3cret', crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)))"], {
    encoding: "utf8",
  }).trim();
  fs.writeFileSync(path.join(dir, "htpasswd"), `trainer:${hash}\n`);
  const secured = await startRegistry(dir, `  htpasswd:\n    realm: test-registry\n    path: ${path.join(dir, "htpasswd")}`);
  try {
    const credentials = { user: "trainer", password: "s3cret" };
    const securedBase = await pushTestBase(secured.host, "library/python", "3.11-slim", credentials);
    const project = path.join(dir, "basic");
    fs.mkdirSync(project);
    fs.writeFileSync(path.join(project, "train.py"), "print('hello')\n");
    const ok = await runCli(["build", "train.py", "--to", `${secured.host}/basic`, `--config.base_image=${securedBase}`], {
      cwd: project,
      env: cliEnv({ ...NO_DOCKER, ALEKSEYLEARN_REGISTRY_USER: "trainer", ALEKSEYLEARN_REGISTRY_PASSWORD: "s3cret" }).env,
    });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, new RegExp(`^${secured.host}/basic@sha256:[0-9a-f]{64}\\n$`));
    const wrong = await runCli(["build", "train.py", "--to", `${secured.host}/basic`, `--config.base_image=${securedBase}`], {
      cwd: project,
      env: cliEnv({ ...NO_DOCKER, ALEKSEYLEARN_REGISTRY_USER: "trainer", ALEKSEYLEARN_REGISTRY_PASSWORD: "wrong-password" }).env,
    });
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.stderr, /refused the credentials of "trainer" \(HTTP 401\)/);
    assert.doesNotMatch(wrong.stderr + wrong.stdout, /wrong-password/);
  } finally {
    await secured.stop();
  }
});

test(
  "token auth (distribution's Bearer realm, service and scope) with the registry checking the signed token: the right login pushes, a wrong password is a clear error",
  { timeout: 180_000 },
  async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "oci-token-"));
    const tokens = await startTokenServer(dir, "trainer", "t0ken-pass");
    const secured = await startRegistry(dir, tokens.auth);
    try {
      const securedBase = await pushTestBase(secured.host, "library/python", "3.11-slim", { user: "trainer", password: "t0ken-pass" });
      const project = path.join(dir, "token");
      fs.mkdirSync(project);
      fs.writeFileSync(path.join(project, "train.py"), "print('hello')\n");
      const args = ["build", "train.py", "--to", `${secured.host}/token`, `--config.base_image=${securedBase}`];
      const ok = await runCli(args, {
        cwd: project,
        env: cliEnv({ ...NO_DOCKER, ALEKSEYLEARN_REGISTRY_USER: "trainer", ALEKSEYLEARN_REGISTRY_PASSWORD: "t0ken-pass" }).env,
      });
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, new RegExp(`^${secured.host}/token@sha256:[0-9a-f]{64}\\n$`));
      assert.ok(
        tokens.requests.some((request) => request.accepted && request.account === "trainer" && request.scopes.includes("repository:token:pull,push")),
        `a token was asked for the target's scope: ${JSON.stringify(tokens.requests)}`,
      );
      const wrong = await runCli(args, {
        cwd: project,
        env: cliEnv({ ...NO_DOCKER, ALEKSEYLEARN_REGISTRY_USER: "trainer", ALEKSEYLEARN_REGISTRY_PASSWORD: "not-the-pass" }).env,
      });
      assert.equal(wrong.code, 1, wrong.stderr);
      assert.match(wrong.stderr, /refused the credentials of "trainer" \(HTTP 401\)/);
      assert.doesNotMatch(wrong.stderr + wrong.stdout, /not-the-pass/);
    } finally {
      await secured.stop();
      await tokens.close();
    }
  },
);
