/**
 * A private docker-registry (Debian's, the real distribution server) on
 * loopback for the daemonless builder's tests, with its auth configured as
 * asked (none, htpasswd Basic, or token auth), and the test base image pushed
 * into it from the debootstrapped root the test services make — no Docker.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
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

/** A running token service. */
export interface TokenServer {
  /** The realm URL the registry names in its challenge. */
  realm: string;
  /** The auth section of the registry's configuration that trusts this service. */
  auth: string;
  /** Every token request: the scopes asked for and whether the login was accepted. */
  requests: Array<{ scopes: string[]; account: string | null; accepted: boolean }>;
  close(): Promise<void>;
}

/**
 * A token service as distribution's token auth describes it
 * (https://distribution.github.io/distribution/spec/auth/token/, with the JWT
 * of docs/spec/auth/jwt.md): the registry answers 401 with `WWW-Authenticate:
 * Bearer realm="…",service="…",scope="repository:NAME:ACTIONS"`; the client
 * GETs the realm with `service` and each `scope`, and its login as Basic
 * credentials; the answer is `{"token", "access_token", "expires_in",
 * "issued_at"}`, the token an RS256 JWT whose header carries the signing
 * certificate (x5c), which the registry checks against `rootcertbundle`. Its
 * claims: iss, sub, aud (the service), exp, nbf, iat, jti, and `access`, the
 * granted actions. A wrong login is 401, as the spec's example service does.
 */
export async function startTokenServer(dir: string, user: string, password: string): Promise<TokenServer> {
  const key = path.join(dir, "token.key");
  const cert = path.join(dir, "token.pem");
  execFileSync(
    "openssl",
    ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=alekseylearn test token service"],
    {
      stdio: "ignore",
    },
  );
  const der = new crypto.X509Certificate(fs.readFileSync(cert)).raw.toString("base64");
  const privateKey = crypto.createPrivateKey(fs.readFileSync(key));
  const service = "alekseylearn-test-registry";
  const issuer = "alekseylearn-test-token-service";
  const requests: TokenServer["requests"] = [];
  const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString("base64url");
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://token");
    const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? "")?.[1];
    const login = basic ? Buffer.from(basic, "base64").toString("utf8") : "";
    const scopes = url.searchParams.getAll("scope");
    const accepted = url.pathname === "/token" && url.searchParams.get("service") === service && login === `${user}:${password}`;
    requests.push({ scopes, account: url.searchParams.get("account"), accepted });
    if (!accepted) {
      res.writeHead(401, { "content-type": "application/json" });
      res.end(JSON.stringify({ errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] }));
      return;
    }
    const now = Math.floor(Date.now() / 1000);
    // scope.md: repository:NAME:ACTIONS, the actions comma-separated; each granted as asked.
    const access = scopes.map((scope) => {
      const [type, ...rest] = scope.split(":");
      const actions = rest.pop() ?? "";
      return { type, name: rest.join(":"), actions: actions.split(",").filter(Boolean) };
    });
    const unsigned = `${b64({ typ: "JWT", alg: "RS256", x5c: [der] })}.${b64({ iss: issuer, sub: user, aud: service, exp: now + 300, nbf: now - 10, iat: now, jti: crypto.randomUUID(), access })}`;
    const token = `${unsigned}.${crypto.sign("sha256", Buffer.from(unsigned), privateKey).toString("base64url")}`;
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ token, access_token: token, expires_in: 300, issued_at: new Date(now * 1000).toISOString() }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const realm = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/token`;
  return {
    realm,
    auth: `  token:\n    realm: ${realm}\n    service: ${service}\n    issuer: ${issuer}\n    rootcertbundle: ${cert}`,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
