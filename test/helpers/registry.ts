/**
 * A private docker-registry (Debian's, the real distribution server) on
 * loopback for the daemonless builder's tests, with its auth configured as
 * asked (none, htpasswd Basic, or token auth), and the test base image pushed
 * into it from the debootstrapped root the test services make — no Docker.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { gzipFixed } from "../../src/package/oci/layer.js";
import { MEDIA, sha256 } from "../../src/package/oci/image.js";
import { Registry, type Credentials } from "../../src/package/oci/registry.js";

/**
 * The environment of a CLI with no Docker reachable: DOCKER_HOST names a
 * socket that is not there, and PATH holds only python3 (pip makes the
 * environment layer), so no `docker` client can be found either.
 */
export function noDockerEnv(): { DOCKER_HOST: string; PATH: string } {
  const bin = fs.mkdtempSync(path.join(os.tmpdir(), "no-docker-bin-"));
  const python = execFileSync("python3", ["-c", "import sys; print(sys.executable)"], { encoding: "utf8" }).trim();
  fs.symlinkSync(python, path.join(bin, "python3"));
  return { DOCKER_HOST: "unix:///nonexistent/docker.sock", PATH: bin };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

export interface TestRegistry {
  host: string;
  data: string;
  stop(): Promise<void>;
}

/** Start docker-registry in `dir`; `auth` is its `auth:` section (docs/configuration.md of distribution), YAML text indented by two. */
export async function startRegistry(dir: string, auth = ""): Promise<TestRegistry> {
  const port = await freePort();
  const data = path.join(dir, "data");
  fs.mkdirSync(data, { recursive: true });
  const config = path.join(dir, "registry.yml");
  fs.writeFileSync(
    config,
    `version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${data}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n${auth ? `auth:\n${auth}\n` : ""}`,
  );
  const log = fs.openSync(path.join(dir, "registry.log"), "a");
  const child: ChildProcess = spawn("docker-registry", ["serve", config], { stdio: ["ignore", log, log] });
  fs.closeSync(log);
  const host = `127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    const answered = await fetch(`http://${host}/v2/`).then(
      (response) => response.status === 200 || response.status === 401,
      () => false,
    );
    if (answered) break;
    if (child.exitCode !== null || i > 300)
      throw new Error(`docker-registry did not start: ${fs.readFileSync(path.join(dir, "registry.log"), "utf8").slice(-2000)}`);
    await sleep(100);
  }
  return {
    host,
    data,
    stop: async () => {
      if (child.exitCode === null) {
        child.kill();
        await new Promise((resolve) => child.once("exit", resolve));
      }
    },
  };
}

/** The debootstrapped Debian root the test services keep (scripts/test-services.sh start makes it once per cache). */
export function baseRootfs(): string {
  const dir = path.join(process.env.ALEKSEYLEARN_TEST_CACHE ?? path.resolve(".cache/test"), "base-image");
  const found = fs.existsSync(dir) ? fs.readdirSync(dir).filter((name) => /^bookworm-[0-9a-f]+\.tar$/.test(name)) : [];
  if (!found.length)
    throw new Error(`No base image root in ${dir}: run \`bash scripts/test-services.sh start DIR\` once (npm test does), which makes it with debootstrap.`);
  return path.join(dir, found.sort()[0]!);
}

/** The base root as one gzip layer, compressed once and kept beside it. */
function baseLayer(): { file: string; digest: string; diffId: string; size: number } {
  const tar = baseRootfs();
  const meta = `${tar}.layer.json`;
  if (fs.existsSync(meta) && fs.existsSync(`${tar}.gz`))
    return { file: `${tar}.gz`, ...(JSON.parse(fs.readFileSync(meta, "utf8")) as { digest: string; diffId: string; size: number }) };
  const bytes = fs.readFileSync(tar);
  const gz = gzipFixed(bytes);
  fs.writeFileSync(`${tar}.gz.tmp`, gz);
  fs.renameSync(`${tar}.gz.tmp`, `${tar}.gz`);
  const saved = { digest: sha256(gz), diffId: sha256(bytes), size: gz.length };
  fs.writeFileSync(meta, JSON.stringify(saved));
  return { file: `${tar}.gz`, ...saved };
}

/**
 * Push the test base image to `host`/`repository`:`tag`: Debian 12's Python
 * as python:3.11-slim stands for it, with the PYTHON_VERSION the official
 * python images set (the daemonless builder reads it).
 */
export async function pushTestBase(
  host: string,
  repository = "library/python",
  tag = "3.11-slim",
  credentials?: Credentials,
  extra: ReadonlyArray<{ digest: string; diffId: string; size: number; bytes: Buffer }> = [],
): Promise<string> {
  const layer = baseLayer();
  const config = Buffer.from(
    JSON.stringify({
      architecture: "amd64",
      os: "linux",
      created: "1970-01-01T00:00:00Z",
      config: { Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "PYTHON_VERSION=3.11.2"], Cmd: ["python3"] },
      rootfs: { type: "layers", diff_ids: [layer.diffId, ...extra.map((more) => more.diffId)] },
      history: [{ created: "1970-01-01T00:00:00Z", created_by: "debootstrap bookworm (test base)" }],
    }),
  );
  const registry = new Registry(host, credentials ? { credentials } : {});
  registry.want(repository, "pull,push");
  const stats = { uploadedBytes: 0, uploaded: 0, mounted: 0, existing: 0 };
  await registry.putBlob(repository, { digest: layer.digest, size: layer.size, bytes: () => fs.promises.readFile(layer.file) }, stats);
  for (const more of extra) await registry.putBlob(repository, { digest: more.digest, size: more.size, bytes: () => Promise.resolve(more.bytes) }, stats);
  await registry.putBlob(repository, { digest: sha256(config), size: config.length, bytes: () => Promise.resolve(config) }, stats);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA.dockerManifest,
      config: { mediaType: MEDIA.dockerConfig, size: config.length, digest: sha256(config) },
      layers: [layer, ...extra].map((one) => ({ mediaType: MEDIA.dockerLayer, size: one.size, digest: one.digest })),
    }),
  );
  await registry.putManifest(repository, tag, manifest, MEDIA.dockerManifest);
  return `${host}/${repository}:${tag}`;
}
