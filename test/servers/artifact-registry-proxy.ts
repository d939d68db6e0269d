/**
 * Artifact Registry's Docker API as it authenticates, in front of the test
 * docker-registry (which has no authentication of its own): a loopback proxy
 * that lets a request through to the registry only with the credentials
 * Artifact Registry documents, and answers every other one 401.
 *
 * - Reads and writes of `/v2/` carry `Authorization: Bearer TOKEN`, where TOKEN
 *   is an OAuth access token the Google test server issued
 *   (cloud.google.com/artifact-registry/docs/reference/docker-api: `curl -H
 *   "Authorization: Bearer $(gcloud auth print-access-token)"`), or a registry
 *   token this proxy handed out.
 * - Docker's token flow (distribution's docs/spec/auth/token.md, the "Docker
 *   Registry v2 authentication via central service" spec): a request without
 *   an accepted Bearer token is answered `401` with `WWW-Authenticate: Bearer
 *   realm="…/v2/token",service="…"` (and the scope when it names a
 *   repository); the realm takes the login as Basic credentials and answers
 *   `{"token": …, "access_token": …, "expires_in": …, "issued_at": …}`. The
 *   login is `oauth2accesstoken` with an access token as its password, the
 *   login `docker login -u oauth2accesstoken` makes
 *   (cloud.google.com/artifact-registry/docs/docker/authentication#token).
 * - A `Basic` header sent straight to `/v2/` (not to the realm) is refused
 *   like no header at all: no Google source says Artifact Registry accepts
 *   one there, so the stricter reading.
 *
 * Accepted requests go to the registry unchanged but for their Authorization
 * (the Host header is kept, so the upload locations the registry answers point
 * back at this proxy).
 */
import crypto from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";

/** A running proxy. */
export interface ArtifactRegistryProxy {
  /** host:port to push to and read from (ALEKSEYLEARN_REGISTRY). */
  host: string;
  /** Every `/v2/` request: method, path, and the scheme of its Authorization (`Bearer`, `Basic`, or none), and whether it was let through. */
  requests: Array<{ method: string; path: string; scheme: string; accepted: boolean }>;
  /** Registry tokens handed out by the realm. */
  issued: Set<string>;
  close(): Promise<void>;
}

/** The error body distribution's API answers (docs/spec/api.md, "Errors"). */
function unauthorized(res: http.ServerResponse, challenge: string | undefined, message: string): void {
  res.writeHead(401, { "content-type": "application/json", ...(challenge ? { "www-authenticate": challenge } : {}) });
  res.end(JSON.stringify({ errors: [{ code: "UNAUTHORIZED", message, detail: null }] }));
}

/**
 * Start the proxy in front of `upstream` (host:port of the plain registry); `accessTokens` are the Google test
 * server's issued OAuth access tokens (its live set: a token it issues later counts too).
 */
export async function startArtifactRegistryProxy(upstream: string, accessTokens: ReadonlySet<string>): Promise<ArtifactRegistryProxy> {
  const issued = new Set<string>();
  const requests: ArtifactRegistryProxy["requests"] = [];
  let host = "";

  const realm = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? "")?.[1];
    const [user, ...rest] = basic ? Buffer.from(basic, "base64").toString("utf8").split(":") : [];
    const password = rest.join(":");
    if (user !== "oauth2accesstoken" || !accessTokens.has(password))
      return unauthorized(res, undefined, "Unauthenticated request. Unauthenticated requests do not have permission");
    const token = `ar-${crypto.randomBytes(16).toString("hex")}`;
    issued.add(token);
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ token, access_token: token, expires_in: 3600, issued_at: new Date().toISOString() }));
  };

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://proxy");
    if (url.pathname === "/v2/token") {
      req.resume();
      return realm(req, res);
    }
    const authorization = req.headers.authorization ?? "";
    const scheme = /^(\w+) /.exec(authorization)?.[1] ?? "none";
    const bearer = /^Bearer (.+)$/.exec(authorization)?.[1];
    const accepted = bearer !== undefined && (issued.has(bearer) || accessTokens.has(bearer));
    requests.push({ method: req.method ?? "GET", path: url.pathname, scheme, accepted });
    if (!accepted) {
      req.resume();
      const repository = /^\/v2\/(.+?)\/(manifests|blobs|tags)\//.exec(url.pathname)?.[1];
      const action = req.method === "GET" || req.method === "HEAD" ? "pull" : "push,pull";
      const challenge = `Bearer realm="http://${host}/v2/token",service="${host}"${repository ? `,scope="repository:${repository}:${action}"` : ""}`;
      return unauthorized(res, challenge, "authentication required");
    }
    const headers = { ...req.headers };
    delete headers.authorization;
    const [upstreamHost, upstreamPort] = upstream.split(":");
    const forward = http.request({ host: upstreamHost, port: Number(upstreamPort), method: req.method, path: req.url, headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    forward.on("error", (err) => {
      if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" });
      res.end(`proxy: ${err.message}`);
    });
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    host,
    requests,
    issued,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
