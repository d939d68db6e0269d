/**
 * A Vertex AI, Cloud Logging and OAuth token test server on loopback, built
 * from Google's published API descriptions (google-discovery.ts), for what no
 * emulator covers. It is strict where Google is:
 *
 * - the token endpoint takes a service account's signed JWT (grant type
 *   urn:ietf:params:oauth:grant-type:jwt-bearer), checks its RS256 signature
 *   with the account's public key and its iss, aud, scope and exp claims, and
 *   answers a short-lived bearer token, as
 *   developers.google.com/identity/protocols/oauth2/service-account#httprest
 *   describes; every API call without a token it issued is answered 401
 *   UNAUTHENTICATED;
 * - request bodies are checked field by field against the method's request
 *   schema (unknown fields, wrong types, int64 as strings, enums, output-only
 *   fields all refused with 400 INVALID_ARGUMENT), and paths against the
 *   method's parameter patterns;
 * - answers have the documented shapes: resource names with the project's
 *   number, google.rpc.Status errors, JOB_STATE_* states.
 *
 * Jobs do not run here: the test moves them through their states
 * (`setState`) and writes their log lines (`addLog`).
 */
import crypto from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { checkBody, findMethod, type DiscoveryDocument } from "./google-discovery.js";

/** The project number the server gives every project (Vertex names resources by number, whatever the caller used). */
export const PROJECT_NUMBER = "123456789012";

/** A job as the server keeps it. */
export interface FakeJob {
  [key: string]: unknown;
  name: string;
  displayName: string;
  state: string;
}

/** A running test server. */
export interface VertexFake {
  url: string;
  jobs: Map<string, FakeJob>;
  /** Artifact Registry repositories by resource name. */
  repositories: Map<string, object>;
  /** Every request: method, path, and body. */
  requests: Array<{ method: string; path: string; body: unknown }>;
  /** Tokens handed out. */
  tokens: Set<string>;
  setState(id: string, state: string, error?: string): void;
  addLog(id: string, text: string, timestamp: string, insertId?: string): void;
  close(): Promise<void>;
}

function status(res: http.ServerResponse, code: number, grpc: string, message: string): void {
  res.writeHead(code, { "content-type": "application/json; charset=UTF-8" });
  res.end(JSON.stringify({ error: { code, message, status: grpc } }));
}

function json(res: http.ServerResponse, body: unknown): void {
  res.writeHead(200, { "content-type": "application/json; charset=UTF-8" });
  res.end(JSON.stringify(body));
}

function base64url(text: string): Buffer {
  return Buffer.from(text.replace(/-/g, "+").replace(/_/g, "/"), "base64");
}

/** Start the server; `accounts` maps each service account's email to its public key (PEM). */
export async function startVertexFake(
  docs: { aiplatform: DiscoveryDocument; logging: DiscoveryDocument; artifactregistry?: DiscoveryDocument },
  accounts: Record<string, string>,
): Promise<VertexFake> {
  const jobs = new Map<string, FakeJob>();
  const logs: Array<{
    jobId: string;
    entry: { insertId: string; timestamp: string; textPayload: string; severity: string; resource: unknown; logName: string };
  }> = [];
  const requests: VertexFake["requests"] = [];
  const tokens = new Set<string>();
  const repositories = new Map<string, object>();
  let next = 1000;
  const create = findMethod(docs.aiplatform, "aiplatform.projects.locations.customJobs.create")!;
  const listEntries = findMethod(docs.logging, "logging.entries.list")!;

  const token = (body: string, res: http.ServerResponse): void => {
    const form = new URLSearchParams(body);
    const fail = (why: string): void => {
      res.writeHead(400, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: "invalid_grant", error_description: why }));
    };
    if (form.get("grant_type") !== "urn:ietf:params:oauth:grant-type:jwt-bearer") return fail("Invalid grant_type");
    const [header, claims, signature] = (form.get("assertion") ?? "").split(".");
    if (!header || !claims || !signature) return fail("Invalid JWT");
    const parsed = JSON.parse(base64url(claims).toString("utf8")) as { iss?: string; aud?: string; scope?: string; exp?: number; iat?: number };
    const key = parsed.iss ? accounts[parsed.iss] : undefined;
    if (!key) return fail("Invalid JWT Signature.");
    if (JSON.parse(base64url(header).toString("utf8")).alg !== "RS256") return fail("Invalid JWT: alg");
    if (!crypto.verify("RSA-SHA256", Buffer.from(`${header}.${claims}`), key, base64url(signature))) return fail("Invalid JWT Signature.");
    if (parsed.aud !== "https://oauth2.googleapis.com/token") return fail("Invalid JWT: aud");
    if (!parsed.scope?.split(" ").includes("https://www.googleapis.com/auth/cloud-platform")) return fail("Invalid OAuth scope or ID token audience provided.");
    const now = Date.now() / 1000;
    if (!parsed.exp || parsed.exp < now || !parsed.iat || parsed.exp - parsed.iat > 3600)
      return fail("Invalid JWT: Token must be a short-lived token (60 minutes)");
    const issued = `ya29.test-${crypto.randomBytes(16).toString("hex")}`;
    tokens.add(issued);
    json(res, { access_token: issued, expires_in: 3599, token_type: "Bearer" });
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      const url = new URL(req.url ?? "/", "http://localhost");
      const method = req.method ?? "GET";
      if (method === "POST" && url.pathname === "/token") return token(text, res);
      let body: unknown;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        return status(res, 400, "INVALID_ARGUMENT", "Invalid JSON payload received.");
      }
      requests.push({ method, path: url.pathname + url.search, body });
      const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
      if (!bearer || !tokens.has(bearer))
        return status(
          res,
          401,
          "UNAUTHENTICATED",
          "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
        );
      const path = decodeURIComponent(url.pathname);
      let match: RegExpExecArray | null;
      if (method === "POST" && (match = /^\/v1\/(projects\/[^/]+\/locations\/[^/]+)\/customJobs$/.exec(path))) {
        if (!new RegExp(create.parameters.parent!.pattern!).test(match[1]!)) return status(res, 400, "INVALID_ARGUMENT", "Invalid parent.");
        const problems = checkBody(docs.aiplatform, create.request!.$ref, body);
        // Required by the CustomJob reference (cloud.google.com/vertex-ai/docs/reference/rest/v1/projects.locations.customJobs): displayName, jobSpec, jobSpec.workerPoolSpecs.
        const job = body as { displayName?: string; jobSpec?: { workerPoolSpecs?: unknown[] } } | undefined;
        if (!job?.displayName) problems.push("displayName: required");
        if (!job?.jobSpec?.workerPoolSpecs?.length) problems.push("jobSpec.workerPoolSpecs: required");
        if (problems.length) return status(res, 400, "INVALID_ARGUMENT", `Invalid JSON payload received. ${problems.join("; ")}`);
        const region = match[1]!.split("/")[3]!;
        const id = String(next++);
        const created: FakeJob = {
          ...(body as object),
          name: `projects/${PROJECT_NUMBER}/locations/${region}/customJobs/${id}`,
          displayName: job!.displayName!,
          state: "JOB_STATE_PENDING",
          createTime: new Date().toISOString(),
          updateTime: new Date().toISOString(),
        };
        jobs.set(id, created);
        return json(res, created);
      }
      if ((match = /^\/v1\/projects\/[^/]+\/locations\/[^/]+\/customJobs\/([^/:]+)(:cancel)?$/.exec(path))) {
        const job = jobs.get(match[1]!);
        if (!job) return status(res, 404, "NOT_FOUND", `The CustomJob does not exist.`);
        if (method === "GET" && !match[2]) return json(res, job);
        if (method === "POST" && match[2]) {
          if (["JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"].includes(job.state))
            return status(res, 400, "FAILED_PRECONDITION", `Cannot cancel ${job.name} in state ${job.state}.`);
          job.state = "JOB_STATE_CANCELLING";
          return json(res, {});
        }
      }
      if (method === "GET" && /^\/v1\/projects\/[^/]+\/locations\/[^/]+\/customJobs$/.test(path)) {
        const filter = url.searchParams.get("filter") ?? "";
        const wanted = /^display_name="((?:[^"\\]|\\.)*)"$/.exec(filter);
        if (filter && !wanted) return status(res, 400, "INVALID_ARGUMENT", `Unsupported filter ${filter}`);
        const found = [...jobs.values()].filter((job) => !wanted || job.displayName === wanted[1]!.replace(/\\(.)/g, "$1"));
        return json(res, found.length ? { customJobs: found } : {});
      }
      // Artifact Registry: repositories.get and .create, whose answer is a long-running Operation (done at once here).
      if (method === "GET" && (match = /^\/v1\/(projects\/[^/]+\/locations\/[^/]+\/repositories\/[^/]+)$/.exec(path))) {
        const repository = repositories.get(match[1]!);
        return repository ? json(res, repository) : status(res, 404, "NOT_FOUND", `Requested entity was not found.`);
      }
      if (method === "POST" && (match = /^\/v1\/(projects\/[^/]+\/locations\/[^/]+)\/repositories$/.exec(path)) && docs.artifactregistry) {
        const id = url.searchParams.get("repositoryId") ?? "";
        const problems = checkBody(docs.artifactregistry, "Repository", body);
        if (!/^[a-z]([a-z0-9-]*[a-z0-9])?$/.test(id)) problems.push(`repositoryId ${id} is not a valid repository id`);
        if ((body as { format?: string }).format !== "DOCKER") problems.push("format: this test server makes DOCKER repositories only");
        if (problems.length) return status(res, 400, "INVALID_ARGUMENT", problems.join("; "));
        const name = `${match[1]}/repositories/${id}`;
        if (repositories.has(name)) return status(res, 409, "ALREADY_EXISTS", `the repository already exists`);
        repositories.set(name, { ...(body as object), name });
        return json(res, {
          name: `${match[1]}/operations/${crypto.randomUUID()}`,
          done: true,
          response: { "@type": "type.googleapis.com/google.devtools.artifactregistry.v1.Repository", name },
        });
      }
      if (method === "POST" && path === "/v2/entries:list") {
        const problems = checkBody(docs.logging, listEntries.request!.$ref, body);
        if (problems.length) return status(res, 400, "INVALID_ARGUMENT", `Invalid JSON payload received. ${problems.join("; ")}`);
        const { filter = "" } = body as { filter?: string };
        const id = /resource\.labels\.job_id="(\d+)"/.exec(filter)?.[1];
        if (!/resource\.type="ml_job"/.test(filter) || !id)
          return status(res, 400, "INVALID_ARGUMENT", `This test server reads ml_job entries by job_id only: ${filter}`);
        const since = /timestamp>="([^"]+)"/.exec(filter)?.[1];
        const entries = logs
          .filter((log) => log.jobId === id && (!since || Date.parse(log.entry.timestamp) >= Date.parse(since)))
          .map((log) => log.entry)
          .sort((a, b) => Date.parse(a.timestamp) - Date.parse(b.timestamp));
        return json(res, entries.length ? { entries } : {});
      }
      status(res, 404, "NOT_FOUND", `No method ${method} ${path} on this test server.`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    jobs,
    repositories,
    requests,
    tokens,
    setState(id, state, error) {
      const job = jobs.get(id)!;
      job.state = state;
      if (error) job.error = { code: 3, message: error };
    },
    addLog(id, textPayload, timestamp, insertId = crypto.randomBytes(6).toString("hex")) {
      logs.push({
        jobId: id,
        entry: {
          insertId,
          timestamp,
          textPayload,
          severity: "INFO",
          resource: { type: "ml_job", labels: { job_id: id, task_name: "workerpool0-0", project_id: "my-proj" } },
          logName: "projects/my-proj/logs/workerpool0-0",
        },
      });
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
