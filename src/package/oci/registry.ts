/**
 * A registry client for the distribution protocol, with nothing but HTTP:
 * what a daemonless build needs to read a base image and push a training
 * image. Each behaviour cites the spec it follows:
 *   API: github.com/distribution/distribution docs/spec/api.md (OCI: opencontainers/distribution-spec spec.md)
 *   token auth: docs/spec/auth/token.md and docs/spec/auth/scope.md
 */
import { setTimeout as sleep } from "node:timers/promises";
import { UserError, failure } from "../../errors.js";
import { MANIFEST_TYPES, parseManifest, sha256, type ManifestDocument } from "./image.js";

/** A parsed image reference: registry host, repository, and a tag or digest. */
export interface ImageReference {
  host: string;
  repository: string;
  tag?: string;
  digest?: string;
}

/** Docker Hub's names: `python:3.11` is `docker.io/library/python:3.11`, served by registry-1.docker.io. */
const DOCKER_HUB = "registry-1.docker.io";

/** Parse `[HOST[:PORT]/]REPOSITORY[:TAG][@sha256:HEX]` as Docker reads it (a first part with a dot, a colon or `localhost` is a host). */
export function parseReference(reference: string): ImageReference {
  const match = /^(?:([^/]+)\/)?([a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*)(?::([\w][\w.-]{0,127}))?(?:@(sha256:[0-9a-f]{64}))?$/.exec(
    reference,
  );
  let host = match?.[1];
  let repository = match?.[2];
  if (!match || !repository) throw new UserError(`${JSON.stringify(reference)} is not an image reference (HOST/REPOSITORY[:TAG] or @sha256:…).`);
  if (host && !/[.:]/.test(host) && host !== "localhost") {
    repository = `${host}/${repository}`;
    host = undefined;
  }
  if (!host || host === "docker.io" || host === "index.docker.io") {
    host = DOCKER_HUB;
    if (!repository.includes("/")) repository = `library/${repository}`;
  }
  const parsed: ImageReference = { host, repository };
  if (match[3]) parsed.tag = match[3];
  if (match[4]) parsed.digest = match[4];
  if (!parsed.tag && !parsed.digest) parsed.tag = "latest";
  return parsed;
}

/** `reference` written back (`HOST/REPOSITORY:TAG` or `@DIGEST`). */
export function formatReference(reference: ImageReference): string {
  return `${reference.host}/${reference.repository}${reference.digest ? `@${reference.digest}` : `:${reference.tag ?? "latest"}`}`;
}

/** Plain HTTP for loopback (as Docker allows: localhost, 127.0.0.0/8, ::1) and for the hosts the user named insecure; HTTPS for every other. */
export function schemeFor(host: string, insecure: readonly string[] = []): "http" | "https" {
  const name = host.replace(/:\d+$/, "").replace(/^\[(.*)\]$/, "$1");
  if (name === "localhost" || name === "::1" || /^127\.\d+\.\d+\.\d+$/.test(name)) return "http";
  return insecure.includes(host) || insecure.includes(name) ? "http" : "https";
}

/** Credentials for a registry: a user and password (ECR's `AWS` and its token; Artifact Registry's `oauth2accesstoken` and an access token). */
export interface Credentials {
  user: string;
  password: string;
}

export interface RegistryOptions {
  credentials?: Credentials;
  /** Hosts reached over plain HTTP (the CLI reads them from ALEKSEYLEARN_INSECURE_REGISTRIES). */
  insecure?: readonly string[];
  /** How often a failed blob upload is tried again. */
  retries?: number;
  signal?: AbortSignal;
  /** How long one request without a body may take, in ms (default 60 s); blobs get this plus a second per MiB. */
  timeoutMs?: number;
}

/** A request's time limit: `base` ms plus one second per MiB it moves, so a slow link is not cut mid-blob but a silent registry is. */
export function requestTimeout(base: number, bytes = 0): number {
  return base + Math.ceil(bytes / (1024 * 1024)) * 1000;
}

/** A parsed WWW-Authenticate challenge (RFC 7235; the token spec's Bearer realm/service/scope). */
export function parseChallenge(header: string): { scheme: string; params: Record<string, string> } {
  const space = header.indexOf(" ");
  const scheme = (space < 0 ? header : header.slice(0, space)).toLowerCase();
  const params: Record<string, string> = {};
  for (const found of header.slice(space + 1).matchAll(/(\w+)=(?:"([^"]*)"|([^,\s]*))/g)) params[found[1]!.toLowerCase()] = found[2] ?? found[3] ?? "";
  return { scheme, params };
}

/** What a push moved: bytes uploaded and blobs uploaded, mounted or already there. */
export interface PushStats {
  uploadedBytes: number;
  uploaded: number;
  mounted: number;
  existing: number;
}

/** A registry on `host`, with the auth handshake done once per scope and kept. */
export class Registry {
  readonly base: string;
  private authorization: string | undefined;
  private readonly scopes = new Set<string>();

  constructor(
    readonly host: string,
    private readonly options: RegistryOptions = {},
  ) {
    this.base = `${schemeFor(host, options.insecure)}://${host}`;
  }

  /**
   * One request, with the auth handshake: a 401 names what it wants in
   * WWW-Authenticate (api.md "Authentication"); Basic gets the credentials,
   * Bearer a token from the realm for the challenge's scope and every scope
   * used before (token.md "Requesting a Token"), then the request is sent again.
   */
  async request(
    method: string,
    url: string,
    init: { headers?: Record<string, string>; body?: Buffer; redirect?: "follow" | "manual"; expectBytes?: number } = {},
  ): Promise<Response> {
    const limit = requestTimeout(this.options.timeoutMs ?? 60_000, init.body?.length ?? init.expectBytes ?? 0);
    const send = (): Promise<Response> =>
      fetch(url.startsWith("http") ? url : `${this.base}${url}`, {
        method,
        headers: { ...(init.headers ?? {}), ...(this.authorization ? { Authorization: this.authorization } : {}) },
        ...(init.body ? { body: init.body } : {}),
        redirect: init.redirect ?? "follow",
        signal: this.signalFor(limit),
      });
    let response: Response;
    try {
      response = await send();
    } catch (err) {
      throw this.unreachable(err);
    }
    if (response.status !== 401) return response;
    const challenge = response.headers.get("www-authenticate");
    await response.arrayBuffer().catch(() => undefined);
    if (!challenge) throw failure(`The registry ${this.host} refused the request (HTTP 401) and named no way to log in.`);
    const before = this.authorization;
    await this.authenticate(parseChallenge(challenge));
    if (this.authorization === before) throw this.refused();
    response = await send().catch((err: unknown) => {
      throw this.unreachable(err);
    });
    if (response.status === 401) throw this.refused();
    return response;
  }

  /** The signal of one request: the caller's (Ctrl-C) or the request's own time limit, whichever comes first. */
  private signalFor(limit: number): AbortSignal {
    const timeout = AbortSignal.timeout(limit);
    return this.options.signal ? AbortSignal.any([this.options.signal, timeout]) : timeout;
  }

  private unreachable(err: unknown): Error {
    if ((err as Error).name === "AbortError") return err as Error;
    if ((err as Error).name === "TimeoutError")
      return failure(`The registry ${this.host} did not answer in time (${this.base}).`, "Check the registry and the network, and try again.");
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return failure(
      `The registry ${this.host} could not be reached at ${this.base} (${cause?.code ?? cause?.message ?? (err as Error).message}).`,
      schemeFor(this.host, this.options.insecure) === "https"
        ? "Check the address; a registry served over plain http must be named in ALEKSEYLEARN_INSECURE_REGISTRIES."
        : "Check that the registry runs at that address.",
    );
  }

  private refused(): Error {
    return Object.assign(
      failure(
        `The registry ${this.host} refused ${this.options.credentials ? `the credentials of ${JSON.stringify(this.options.credentials.user)}` : "an anonymous request"} (HTTP 401).`,
        this.options.credentials ? "Check the user name and password (or token) for this registry." : "Give credentials for this registry.",
      ),
      { final: true },
    );
  }

  private async authenticate(challenge: { scheme: string; params: Record<string, string> }): Promise<void> {
    const credentials = this.options.credentials;
    if (challenge.scheme === "basic") {
      if (!credentials) throw this.refused();
      this.authorization = `Basic ${Buffer.from(`${credentials.user}:${credentials.password}`).toString("base64")}`;
      return;
    }
    if (challenge.scheme !== "bearer" || !challenge.params.realm)
      throw failure(`The registry ${this.host} asks for an authentication scheme this client does not speak (${challenge.scheme}).`);
    if (challenge.params.scope) for (const scope of challenge.params.scope.split(" ")) this.scopes.add(scope);
    const realm = new URL(challenge.params.realm);
    if (challenge.params.service) realm.searchParams.set("service", challenge.params.service);
    // token.md: scope may be given more than once; each names one resource and its actions.
    for (const scope of [...this.scopes].sort()) realm.searchParams.append("scope", scope);
    const headers: Record<string, string> = {};
    if (credentials) {
      headers.Authorization = `Basic ${Buffer.from(`${credentials.user}:${credentials.password}`).toString("base64")}`;
      realm.searchParams.set("account", credentials.user);
    }
    let answer: Response;
    try {
      answer = await fetch(realm, { headers, signal: this.signalFor(this.options.timeoutMs ?? 60_000) });
    } catch (err) {
      throw failure(`The token service of ${this.host} (${realm.origin}) could not be reached (${(err as Error).message}).`);
    }
    if (answer.status === 401 || answer.status === 403) throw this.refused();
    if (!answer.ok) throw failure(`The token service of ${this.host} answered HTTP ${answer.status}.`);
    // token.md "Token Response Fields": `token`, or `access_token` (OAuth 2.0 compatibility).
    const body = (await answer.json()) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (!token) throw failure(`The token service of ${this.host} gave no token.`);
    this.authorization = `Bearer ${token}`;
  }

  /** Ask for `actions` on `repository` up front, so the first token covers them (scope.md: repository:NAME:ACTIONS). */
  want(repository: string, actions: string): void {
    this.scopes.add(`repository:${repository}:${actions}`);
  }

  /** A manifest or index by tag or digest; its digest is checked against what was asked or what the registry says (api.md "Pulling an Image Manifest", "Content Digests"). */
  async manifest(repository: string, reference: string): Promise<{ doc: ManifestDocument & { mediaType: string }; bytes: Buffer; digest: string }> {
    const response = await this.request("GET", `/v2/${repository}/manifests/${reference}`, { headers: { Accept: MANIFEST_TYPES.join(", ") } });
    if (response.status === 404)
      throw new UserError(
        `The image ${this.host}/${repository}:${reference} is not in the registry (HTTP 404).`,
        "Check the image name (config.base_image) and that it was pushed there.",
      );
    if (!response.ok) throw failure(`Reading the manifest of ${this.host}/${repository}:${reference} failed (HTTP ${response.status}).`);
    const bytes = Buffer.from(await response.arrayBuffer());
    const digest = sha256(bytes);
    const expected = reference.startsWith("sha256:") ? reference : response.headers.get("docker-content-digest");
    if (expected && expected !== digest)
      throw failure(`The manifest of ${this.host}/${repository}:${reference} does not match its digest (${expected}, got ${digest}).`);
    return { doc: parseManifest(bytes, response.headers.get("content-type")), bytes, digest };
  }

  /** A blob's bytes, checked against its digest (api.md "Pulling a Layer": the client must verify). */
  async blob(repository: string, digest: string, size?: number): Promise<Buffer> {
    const response = await this.request("GET", `/v2/${repository}/blobs/${digest}`, size === undefined ? {} : { expectBytes: size });
    if (!response.ok) throw failure(`Reading the blob ${digest} of ${this.host}/${repository} failed (HTTP ${response.status}).`);
    const bytes = Buffer.from(
      await response.arrayBuffer().catch((err: unknown) => {
        throw this.unreachable(err);
      }),
    );
    if (sha256(bytes) !== digest) throw failure(`The blob ${digest} of ${this.host}/${repository} does not match its digest.`);
    return bytes;
  }

  /** Does the repository have the blob? (api.md "Existing Layers": HEAD /v2/NAME/blobs/DIGEST, 200 when it does.) */
  async hasBlob(repository: string, digest: string): Promise<boolean> {
    const response = await this.request("HEAD", `/v2/${repository}/blobs/${digest}`);
    return response.ok;
  }

  /**
   * The digest `reference` (a tag) points at now, from a HEAD of the manifest's
   * Docker-Content-Digest (api.md "Existing Manifests"); `undefined` when the
   * registry has no such tag or does not say its digest.
   */
  async tagDigest(repository: string, reference: string): Promise<string | undefined> {
    const response = await this.request("HEAD", `/v2/${repository}/manifests/${reference}`, { headers: { Accept: MANIFEST_TYPES.join(", ") } });
    const digest = response.ok ? response.headers.get("docker-content-digest") : null;
    return digest && /^sha256:[0-9a-f]{64}$/.test(digest) ? digest : undefined;
  }

  /** Does the repository have the manifest? (HEAD of the manifest.) */
  async hasManifest(repository: string, digest: string): Promise<boolean> {
    const response = await this.request("HEAD", `/v2/${repository}/manifests/${digest}`, { headers: { Accept: MANIFEST_TYPES.join(", ") } });
    return response.ok;
  }

  /**
   * Put a blob in `repository` unless it is there: HEAD first; a mount from
   * `from` in the same registry when given (api.md "Cross Repository Blob
   * Mount": 201 mounted, 202 an upload session instead, which is then used);
   * else a monolithic upload, POST then PUT ?digest= (api.md "Monolithic
   * Upload"). A failed upload (a dropped connection, a 5xx) starts over with a
   * fresh session: the registry keeps no blob whose digest did not match, so
   * nothing partial can be referenced.
   */
  async putBlob(repository: string, blob: { digest: string; size: number; bytes: () => Promise<Buffer> }, stats: PushStats, from?: string): Promise<void> {
    if (await this.hasBlob(repository, blob.digest)) {
      stats.existing++;
      return;
    }
    const attempts = (this.options.retries ?? 3) + 1;
    let lastError: unknown;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      try {
        const query = from && from !== repository && attempt === 1 ? `?mount=${encodeURIComponent(blob.digest)}&from=${encodeURIComponent(from)}` : "";
        const started = await this.request("POST", `/v2/${repository}/blobs/uploads/${query}`, { headers: { "Content-Length": "0" } });
        if (started.status === 201 && query) {
          stats.mounted++;
          return;
        }
        if (started.status !== 202) throw failure(`The registry ${this.host} refused to start an upload to ${repository} (HTTP ${started.status}).`);
        const location = started.headers.get("location");
        if (!location) throw failure(`The registry ${this.host} started an upload but gave no Location.`);
        const target = new URL(location, this.base);
        target.searchParams.set("digest", blob.digest);
        const bytes = await blob.bytes();
        const put = await this.request("PUT", target.toString(), {
          headers: { "Content-Type": "application/octet-stream", "Content-Length": String(bytes.length) },
          body: bytes,
        });
        if (put.status !== 201) throw failure(`The registry ${this.host} refused the blob ${blob.digest} (HTTP ${put.status}).`);
        stats.uploaded++;
        stats.uploadedBytes += bytes.length;
        return;
      } catch (err) {
        // A refusal of the credentials would only be refused again; a dropped connection or a 5xx is tried anew.
        if ((err as { final?: boolean }).final || (err as Error).name === "AbortError") throw err;
        lastError = err;
        if (attempt < attempts) await sleep(200 * attempt, undefined, this.options.signal ? { signal: this.options.signal } : {});
      }
    }
    throw failure(`Uploading the blob ${blob.digest} to ${this.host}/${repository} failed ${attempts} times; the last error: ${(lastError as Error).message}`);
  }

  /** PUT a manifest under `reference` (api.md "Pushing an Image Manifest"); returns its digest. */
  async putManifest(repository: string, reference: string, bytes: Buffer, mediaType: string): Promise<string> {
    const response = await this.request("PUT", `/v2/${repository}/manifests/${reference}`, { headers: { "Content-Type": mediaType }, body: bytes });
    if (response.status !== 201) {
      const text = await response.text().catch(() => "");
      throw failure(
        `The registry ${this.host} refused the manifest of ${repository}:${reference} (HTTP ${response.status}).`,
        undefined,
        text ? [text.slice(0, 500)] : [],
      );
    }
    return sha256(bytes);
  }
}
