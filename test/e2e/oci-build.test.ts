/**
 * `alekseylearn build`, the daemonless builder, against the real Debian
 * docker-registry on loopback with no Docker daemon reachable by the CLI
 * (DOCKER_HOST points nowhere): what it pushes is read back with skopeo,
 * which nobody here wrote; the same inputs in another folder give the same
 * digests and upload nothing; a connection dropped mid-blob is retried and
 * nothing partial is referenced; Basic auth (the registry's htpasswd) works
 * and a wrong password is a clear error.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { cliEnv, copyExample, runCli } from "../helpers/cli.js";
import { fileTimeLimit } from "../helpers/limit.js";
import { pushTestBase, startRegistry, type TestRegistry } from "../helpers/registry.js";

fileTimeLimit(10, import.meta.url);

const NO_DOCKER = { DOCKER_HOST: "unix:///nonexistent/docker.sock" };
let registry: TestRegistry;
let base: string;

before(async () => {
  registry = await startRegistry(fs.mkdtempSync(path.join(os.tmpdir(), "oci-registry-")));
  base = await pushTestBase(registry.host);
});
after(async () => {
  await registry?.stop();
});

function skopeo(args: string[]): string {
  return execFileSync("skopeo", args, { encoding: "utf8" });
}

async function build(dir: string, to: string, extra: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runCli(["build", "train.py", "--to", to, `--config.base_image=${base}`, "--json"], { cwd: dir, env: cliEnv({ ...NO_DOCKER, ...extra }).env });
}

test("build pushes examples/iris with no Docker; skopeo reads it back; the same files elsewhere give the same digest and upload nothing", async () => {
  const first = await build(copyExample("iris"), `${registry.host}/iris:one`);
  assert.equal(first.code, 0, first.stderr);
  const pushed = JSON.parse(first.stdout) as { image: string; digest: string; layers: number; pushed_bytes: number };
  assert.equal(pushed.image, `${registry.host}/iris@${pushed.digest}`);
  assert.equal(pushed.layers, 4, "base, environment, runtime, code");
  const inspected = JSON.parse(skopeo(["inspect", "--tls-verify=false", `docker://${pushed.image}`])) as {
    Architecture: string;
    Os: string;
    Env: string[];
    Layers: string[];
  };
  assert.equal(`${inspected.Os}/${inspected.Architecture}`, "linux/amd64");
  assert.ok(inspected.Env.includes("ALEKSEYLEARN_ENTRY=train.py"));
  const raw = JSON.parse(skopeo(["inspect", "--raw", "--tls-verify=false", `docker://${pushed.image}`])) as { mediaType: string };
  assert.equal(raw.mediaType, "application/vnd.docker.distribution.manifest.v2+json");
  // skopeo copy checks every blob against its digest.
  const copy = fs.mkdtempSync(path.join(os.tmpdir(), "oci-copy-"));
  skopeo(["copy", "--src-tls-verify=false", `docker://${pushed.image}`, `dir:${copy}`]);
  const code = execFileSync("tar", ["-xzOf", path.join(copy, inspected.Layers[3]!.slice(7)), "opt/ml/code/train.py"], { encoding: "utf8" });
  assert.equal(code, fs.readFileSync(path.join(copyExample("iris"), "train.py"), "utf8"));

  const again = await build(copyExample("iris"), `${registry.host}/iris:two`);
  assert.equal(again.code, 0, again.stderr);
  const second = JSON.parse(again.stdout) as { digest: string; pushed_bytes: number };
  assert.equal(second.digest, pushed.digest, "the same inputs in another folder give the same image");
  assert.equal(second.pushed_bytes, 0);
});

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
    upstream.on("data", (chunk) => client.write(chunk));
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      a.on("error", () => b.destroy());
      a.on("close", () => b.destroy());
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { host: `127.0.0.1:${(server.address() as net.AddressInfo).port}`, dropped: () => dropped, close: () => server.close() };
}

test("a connection dropped mid-blob is retried, and the image reads back whole", async () => {
  const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "oci-drop-")), "drop");
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, "train.py"), "print('hello')\n");
  fs.writeFileSync(path.join(dir, "data.bin"), randomBytes(2 * 1024 * 1024));
  const proxy = await droppingProxy(registry.host, 1024 * 1024);
  try {
    const result = await build(dir, `${proxy.host}/drop:one`);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(proxy.dropped(), 1, "the proxy cut one upload");
    const { image } = JSON.parse(result.stdout) as { image: string };
    skopeo(["copy", "--src-tls-verify=false", `docker://${image}`, `dir:${fs.mkdtempSync(path.join(os.tmpdir(), "oci-copy-"))}`]);
  } finally {
    proxy.close();
  }
});

test("Basic auth from the registry's htpasswd: the right password pushes, a wrong one is a clear error", async () => {
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
