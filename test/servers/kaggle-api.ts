/**
 * A Kaggle API test server (there is no Kaggle emulator). It accepts exactly
 * the request fields of the official API definitions (kagglesdk's
 * FieldMetadata: names and JSON types), rejects unknown or mistyped fields and
 * bad credentials, keeps kernels, sessions, blobs and datasets, and really
 * runs a pushed kernel: in bubblewrap, with /kaggle/working and /kaggle/input
 * mapped, on a "Kaggle image" Python environment built for the tests.
 *
 * Where it answers as Kaggle does today, and the source of each behaviour:
 * - the log stream the official CLI's `kernels logs --follow` reads
 *   (kaggle-cli `kernels_logs_stream`: GET /v1/kernels/logs/stream/OWNER/SLUG,
 *   server-sent events of {stream_name, time, data} ending with END_OF_LOG while
 *   the session runs, the whole log as a JSON array once it has ended, and the
 *   log replayed from its start on every connection);
 * - OAuth: GenerateAccessToken trades the refresh token `kaggle auth login`
 *   saved for an access token that lasts `expiresIn` seconds (kagglesdk
 *   `KaggleCredentials.refresh_access_token`); IntrospectToken calls an expired
 *   or unknown token inactive (kaggle-cli `_introspect_token`);
 * - statuses in the spellings kagglesdk's EnumSerializer accepts: upper case,
 *   lower case (older servers) and camelCase ("cancelAcknowledged");
 * - attached datasets mounted at /kaggle/input/SLUG, at /kaggle/input/OWNER/SLUG
 *   when two attached datasets share a slug, or at the owner-qualified
 *   /kaggle/input/datasets/OWNER/SLUG users report since 2026;
 * - a new dataset version that Kaggle takes a while to process: GetDatasetStatus
 *   may say READY about the previous version meanwhile, GetDataset's
 *   currentVersionNumber moves on only once the new one is ready, and a kernel
 *   started before then gets the previous version's files.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import type { AddressInfo } from "node:net";
import { RUNTIME_DIR } from "../../src/package/runtime.js";
import { hostOptEntries } from "../../src/backends/local/sandbox.js";

type Type = "str" | "int" | "bool" | "enum" | "str[]" | Shape | [Shape];
interface Shape {
  [field: string]: Type;
}

const NEW_FILE: Shape = { token: "str", description: "str", columns: [{ order: "int", name: "str", type: "str", originalType: "str", description: "str" }] };
const DIRECTORY: Shape = { name: "str", directories: "str[]", files: [NEW_FILE] };

/** Request shapes, from kagglesdk's *_api_service.py FieldMetadata (JSON names and types). */
export const SHAPES: Record<string, Shape> = {
  "kernels.KernelsApiService/SaveKernel": {
    id: "int",
    slug: "str",
    newTitle: "str",
    text: "str",
    language: "str",
    kernelType: "str",
    datasetDataSources: "str[]",
    kernelDataSources: "str[]",
    competitionDataSources: "str[]",
    categoryIds: "str[]",
    isPrivate: "bool",
    enableGpu: "bool",
    enableInternet: "bool",
    dockerImagePinningType: "str",
    modelDataSources: "str[]",
    enableTpu: "bool",
    sessionTimeoutSeconds: "int",
    priority: "int",
    dockerImage: "str",
    kernelExecutionType: "enum",
    machineShape: "str",
  },
  "kernels.KernelsApiService/GetKernelSessionStatus": { userName: "str", kernelSlug: "str" },
  "kernels.KernelsApiService/ListKernelSessionOutput": { userName: "str", kernelSlug: "str", pageSize: "int", pageToken: "str" },
  "kernels.KernelsApiService/CancelKernelSession": { kernelSessionId: "int" },
  "kernels.KernelsApiService/GetKernel": { userName: "str", kernelSlug: "str" },
  "security.OAuthService/IntrospectToken": { token: "str" },
  "users.AccountService/GenerateAccessToken": {
    refreshToken: "str",
    apiVersion: "enum",
    expirationDuration: "str",
    authorizationContext: { kernelSessionId: "int" },
    authorizationScopes: [{ resourceId: "int" }],
  },
  "blobs.BlobApiService/StartBlobUpload": { type: "enum", name: "str", contentType: "str", contentLength: "int", lastModifiedEpochSeconds: "int" },
  "datasets.DatasetApiService/CreateDataset": {
    id: "int",
    ownerSlug: "str",
    slug: "str",
    title: "str",
    licenseName: "str",
    isPrivate: "bool",
    files: [NEW_FILE],
    subtitle: "str",
    description: "str",
    categoryIds: "str[]",
    directories: [DIRECTORY],
  },
  "datasets.DatasetApiService/CreateDatasetVersion": {
    ownerSlug: "str",
    datasetSlug: "str",
    body: {
      versionNotes: "str",
      deleteOldVersions: "bool",
      files: [NEW_FILE],
      subtitle: "str",
      description: "str",
      categoryIds: "str[]",
      directories: [DIRECTORY],
    },
  },
  "datasets.DatasetApiService/GetDatasetStatus": { ownerSlug: "str", datasetSlug: "str" },
  "datasets.DatasetApiService/GetDataset": { ownerSlug: "str", datasetSlug: "str" },
};

/** Every problem with `value` against `shape`, as "field: why". */
export function checkShape(value: unknown, shape: Shape, where = ""): string[] {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return [`${where || "body"}: expected an object`];
  const problems: string[] = [];
  const scalar: Record<string, [(item: unknown) => boolean, string]> = {
    str: [(item) => typeof item === "string", "a string"],
    enum: [(item) => typeof item === "string", "an enum name"],
    int: [(item) => Number.isInteger(item), "an integer"],
    bool: [(item) => typeof item === "boolean", "a boolean"],
    "str[]": [(item) => Array.isArray(item) && item.every((x) => typeof x === "string"), "a list of strings"],
  };
  for (const [field, item] of Object.entries(value)) {
    const type = shape[field];
    const name = where ? `${where}.${field}` : field;
    if (!type) {
      problems.push(`${name}: unknown field`);
    } else if (typeof type === "string") {
      const [accepts, expected] = scalar[type]!;
      if (!accepts(item)) problems.push(`${name}: expected ${expected}`);
    } else if (Array.isArray(type)) {
      if (!Array.isArray(item)) problems.push(`${name}: expected a list`);
      else item.forEach((x, i) => problems.push(...checkShape(x, type[0]!, `${name}[${i}]`)));
    } else {
      problems.push(...checkShape(item, type, name));
    }
  }
  return problems;
}

interface Session {
  id: number;
  owner: string;
  slug: string;
  status: string;
  failureMessage?: string;
  work: string;
  log: Array<{ stream_name: string; time: number; data: string }>;
  /** Called when the log grows or the session ends (open log streams listen). */
  listeners: Set<() => void>;
  process?: ChildProcess;
  request: Record<string, unknown>;
}

/** What a test can see and steer. */
export interface KaggleTestServer {
  url: string;
  /** Every accepted request, in order: method name and body. */
  requests: Array<{ method: string; body: Record<string, unknown> }>;
  /** The latest session of OWNER/SLUG. */
  session(ref: string): Session | undefined;
  /** Cancel a session as the kernel page's "Stop session" does. */
  cancel(ref: string): void;
  /** Answer the next SaveKernel with this error (a quota problem, say). */
  failNextSave?: string;
  /** How statuses are spelled: as today's API (upper case), the older one (lower case), or camelCase, all of which kagglesdk decodes. */
  statusSpelling: "upper" | "lower" | "camel";
  /** Datasets the server knows (OWNER/SLUG → the folder of their current version). */
  datasets: Map<string, string>;
  /** Where attached datasets are mounted: by slug (owner-qualified on a clash), or always at /kaggle/input/datasets/OWNER/SLUG. */
  mountStyle: "slug" | "datasets";
  /** How long a new dataset version takes to become current; meanwhile GetDatasetStatus still says READY about the previous one. */
  datasetVersionLagMs: number;
  /** Access tokens that have expired (IntrospectToken calls them inactive; requests signed with them are refused). */
  expiredTokens: Set<string>;
  /** Drop the next log stream connection after this many events, as a load balancer cuts an idle stream. */
  dropLogStreamAfter?: number;
  /** Log stream connections made. */
  logStreams: number;
  close(): Promise<void>;
}

/** Users the server accepts: a legacy key pair, an API token and an OAuth refresh token (`kaggle auth login`), all for `tester`. */
export const USER = { username: "tester", key: "key-0123456789abcdef", token: "KGAT_0123456789abcdef", refreshToken: "KGRT_refresh-0123456789" };

/** A status as the chosen spelling writes it. */
function spell(status: string, spelling: KaggleTestServer["statusSpelling"]): string {
  if (spelling === "lower") return status.toLowerCase();
  if (spelling === "camel") return status.toLowerCase().replace(/_([a-z])/g, (_all, letter: string) => letter.toUpperCase());
  return status;
}

function hostRootArgs(): string[] {
  const args = ["--tmpfs", "/"];
  for (const entry of fs.readdirSync("/")) {
    // Kaggle's machines have their own /kaggle and no /gcs, whatever this machine has.
    if (["proc", "dev", "tmp", "opt", "kaggle", "gcs"].includes(entry)) continue;
    const full = `/${entry}`;
    const stat = fs.lstatSync(full);
    if (stat.isSymbolicLink()) args.push("--symlink", fs.readlinkSync(full), full);
    else if (stat.isDirectory()) args.push("--dev-bind", full, full);
  }
  args.push("--dev-bind", "/dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--tmpfs", "/opt");
  // The host's /opt entries come back, but never its /opt/ml (Kaggle has none: the preamble makes the kernel's own), nor a link into it.
  for (const entry of hostOptEntries()) args.push("--dev-bind", `/opt/${entry}`, `/opt/${entry}`);
  return args;
}

/** Start the server on loopback; kernels run with `python` (an environment with Kaggle's usual packages). */
export async function startKaggleServer(python: string, options: { queueMs?: number } = {}): Promise<KaggleTestServer> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "kaggle-server-"));
  const sessions = new Map<string, Session>();
  const blobs = new Map<string, string>();
  const datasetStatus = new Map<string, string>();
  /** OWNER/SLUG → its current version's number. */
  const datasetVersions = new Map<string, number>();
  /** Access tokens handed out by GenerateAccessToken. */
  const oauthTokens = new Set<string>();
  let nextId = 1000;
  const state: KaggleTestServer = {
    url: "",
    requests: [],
    session: (ref) => sessions.get(ref),
    cancel: (ref) => {
      const session = sessions.get(ref);
      if (!session) return;
      session.status = "CANCEL_ACKNOWLEDGED";
      session.process?.kill("SIGKILL");
      for (const listener of session.listeners) listener();
    },
    statusSpelling: "upper",
    datasets: new Map(),
    mountStyle: "slug",
    datasetVersionLagMs: 0,
    expiredTokens: new Set(),
    logStreams: 0,
    close: async () => {
      for (const session of sessions.values()) session.process?.kill("SIGKILL");
      await new Promise((resolve) => server.close(resolve));
      fs.rmSync(root, { recursive: true, force: true });
    },
  };

  const run = (session: Session): void => {
    const kernelDir = fs.mkdtempSync(path.join(root, "kernel-"));
    const notebook = session.request.kernelType === "notebook";
    const file = path.join(kernelDir, notebook ? "kernel.ipynb" : "kernel.py");
    fs.writeFileSync(file, String(session.request.text));
    const input = fs.mkdtempSync(path.join(root, "input-"));
    const mounts: string[] = [];
    const versions = (session.request.__mounted ?? {}) as Record<string, string>;
    const attached = Object.keys(versions);
    for (const ref of attached) {
      const [owner, slug] = ref.split("/") as [string, string];
      const clash = attached.some((other) => other !== ref && other.split("/")[1] === slug);
      const at =
        state.mountStyle === "datasets" ? `/kaggle/input/datasets/${owner}/${slug}` : clash ? `/kaggle/input/${owner}/${slug}` : `/kaggle/input/${slug}`;
      mounts.push("--ro-bind", versions[ref]!, at);
    }
    // Inside, the kernel's own file is at /kaggle/src (the host's /tmp is not visible there).
    const inside = `/kaggle/src/${path.basename(file)}`;
    let command = [python, "-u", inside];
    if (notebook) {
      fs.copyFileSync(path.join(RUNTIME_DIR, "alekseylearn_runtime", "notebook.py"), path.join(kernelDir, "runner.py"));
      command = [python, "-u", "/kaggle/src/runner.py", inside, "/tmp/executed.ipynb"];
    }
    // The image's environment may live under /tmp (a checkout there), which the kernel otherwise sees as an empty tmpfs.
    const image = path.dirname(path.dirname(python));
    const args = [
      ...hostRootArgs(),
      "--bind",
      image,
      image,
      "--dir",
      "/kaggle",
      "--ro-bind",
      kernelDir,
      "/kaggle/src",
      "--bind",
      session.work,
      "/kaggle/working",
      "--bind",
      input,
      "/kaggle/input",
      ...mounts,
      ...(session.request.enableInternet === false ? ["--unshare-net"] : []),
      "--chdir",
      "/kaggle/working",
      "--die-with-parent",
      "--",
      ...command,
    ];
    session.status = "RUNNING";
    const child = spawn("bwrap", args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, KAGGLE_KERNEL_RUN_TYPE: "Batch", PYTHONUNBUFFERED: "1" } });
    session.process = child;
    const started = Date.now();
    const told = (): void => {
      for (const listener of session.listeners) listener();
    };
    for (const [stream, name] of [
      [child.stdout!, "stdout"],
      [child.stderr!, "stderr"],
    ] as const) {
      stream.on("data", (chunk: Buffer) => {
        session.log.push({ stream_name: name, time: (Date.now() - started) / 1000, data: chunk.toString() });
        told();
      });
    }
    child.on("close", (code) => {
      if (session.status !== "CANCEL_ACKNOWLEDGED") {
        session.status = code === 0 ? "COMPLETE" : "ERROR";
        if (code !== 0) session.failureMessage = `Your notebook tried to run but exited with code ${code}`;
      }
      told();
    });
  };

  const handle = (method: string, body: Record<string, unknown>, user: string): [number, unknown] => {
    switch (method) {
      case "security.OAuthService/IntrospectToken": {
        const token = String(body.token ?? "");
        const active = (token === USER.token || oauthTokens.has(token)) && !state.expiredTokens.has(token);
        return [200, active ? { active: true, username: USER.username, clientId: "kaggle-cli", scope: "resources.admin:*" } : { active: false }];
      }
      case "users.AccountService/GenerateAccessToken": {
        if (body.refreshToken !== USER.refreshToken) return [401, { code: 401, message: "Invalid refresh token" }];
        if (body.apiVersion !== "API_VERSION_V1") return [400, { code: 400, message: "Unsupported API version" }];
        const token = `KGAT_oauth_${nextId++}`;
        oauthTokens.add(token);
        return [200, { token, expiresIn: 43200, userName: USER.username, userId: 1 }];
      }
      case "kernels.KernelsApiService/SaveKernel": {
        const [owner, slug] = String(body.slug ?? "").split("/");
        if (owner !== user) return [403, { code: 403, message: `Permission denied on kernel ${body.slug}` }];
        if (String(body.newTitle ?? "").length < 5) return [400, { code: 400, message: "Title must be at least five characters" }];
        if (!["script", "notebook"].includes(String(body.kernelType)) || body.language !== "python")
          return [400, { code: 400, message: "Invalid kernel type or language" }];
        if (state.failNextSave) {
          const error = state.failNextSave;
          state.failNextSave = undefined;
          return [200, { error }];
        }
        const invalidDatasetSources = ((body.datasetDataSources as string[] | undefined) ?? []).filter((ref) => !state.datasets.has(ref));
        const ref = `${owner}/${slug}`;
        const previous = sessions.get(ref);
        previous?.process?.kill("SIGKILL");
        const work = fs.mkdtempSync(path.join(root, "working-"));
        const session: Session = { id: nextId++, owner: owner!, slug: slug!, status: "QUEUED", work, log: [], listeners: new Set(), request: body };
        // The datasets the kernel gets are the versions current when it is pushed.
        session.request.__mounted = Object.fromEntries(
          ((body.datasetDataSources as string[] | undefined) ?? []).filter((ref) => state.datasets.has(ref)).map((ref) => [ref, state.datasets.get(ref)]),
        );
        sessions.set(ref, session);
        setTimeout(() => session.status === "QUEUED" && run(session), options.queueMs ?? 200);
        const versionNumber = (previous ? (previous.request.__version as number) : 0) + 1;
        body.__version = versionNumber;
        return [200, { ref: `/code/${ref}`, url: `https://www.kaggle.com/code/${ref}`, versionNumber, kernelId: 77, invalidDatasetSources }];
      }
      case "kernels.KernelsApiService/GetKernelSessionStatus": {
        const session = sessions.get(`${body.userName}/${body.kernelSlug}`);
        if (!session) return [404, { code: 404, message: "Kernel not found" }];
        const status = spell(session.status, state.statusSpelling);
        return [200, { status, ...(session.failureMessage ? { failureMessage: session.failureMessage } : {}) }];
      }
      case "kernels.KernelsApiService/ListKernelSessionOutput": {
        const session = sessions.get(`${body.userName}/${body.kernelSlug}`);
        if (!session) return [404, { code: 404, message: "Kernel not found" }];
        const files = (fs.readdirSync(session.work, { recursive: true }) as string[]).filter((f) => fs.statSync(path.join(session.work, f)).isFile()).sort();
        const size = Math.min(Number(body.pageSize ?? 20), 500); // the real service caps a page
        const start = Number(body.pageToken ?? 0);
        const page = files
          .slice(start, start + size)
          .map((fileName) => ({ fileName, url: `${state.url}/outputs/${session.id}/${fileName.split("/").map(encodeURIComponent).join("/")}` }));
        const next = start + size < files.length ? String(start + size) : undefined;
        return [200, { files: page, log: JSON.stringify(session.log), ...(next ? { nextPageToken: next } : {}) }];
      }
      case "kernels.KernelsApiService/CancelKernelSession": {
        const session = [...sessions.values()].find((s) => s.id === body.kernelSessionId);
        if (!session) return [404, { code: 404, message: "Session not found" }];
        state.cancel(`${session.owner}/${session.slug}`);
        return [200, {}];
      }
      case "blobs.BlobApiService/StartBlobUpload": {
        if (body.type !== "DATASET") return [400, { code: 400, message: "Unsupported blob type" }];
        const token = `blob-${nextId++}`;
        blobs.set(token, path.join(root, token));
        return [200, { token, createUrl: `${state.url}/upload/${token}` }];
      }
      case "datasets.DatasetApiService/CreateDataset":
      case "datasets.DatasetApiService/CreateDatasetVersion": {
        const owner = String(body.ownerSlug);
        const slug = String(body.slug ?? body.datasetSlug);
        if (owner !== user) return [403, { code: 403, message: "Permission denied" }];
        const exists = state.datasets.has(`${owner}/${slug}`);
        if (method.endsWith("CreateDataset") && exists) return [200, { error: "A dataset with this slug already exists" }];
        if (method.endsWith("Version") && !exists) return [404, { code: 404, message: "Dataset not found" }];
        const files =
          (method.endsWith("Version") ? (body.body as { files?: Array<{ token?: string }> }).files : (body.files as Array<{ token?: string }>)) ?? [];
        const dir = fs.mkdtempSync(path.join(root, "dataset-"));
        for (const file of files) {
          const blob = blobs.get(file.token ?? "");
          if (!blob || !fs.existsSync(blob)) return [400, { code: 400, message: `Unknown blob token ${file.token}` }];
          fs.copyFileSync(blob, path.join(dir, "code.tar.gz"));
        }
        const ref = `${owner}/${slug}`;
        const version = (datasetVersions.get(ref) ?? 0) + 1;
        const publish = (): void => {
          state.datasets.set(ref, dir);
          datasetVersions.set(ref, version);
          datasetStatus.set(ref, "READY");
        };
        if (!exists) {
          state.datasets.set(ref, dir);
          datasetStatus.set(ref, "BLOBS_RECEIVED");
          setTimeout(publish, 300);
        } else {
          // The previous version stays current (and its status READY) until the new one is processed.
          setTimeout(publish, Math.max(300, state.datasetVersionLagMs));
        }
        return [200, { ref, url: `https://www.kaggle.com/datasets/${ref}`, status: "ok" }];
      }
      case "datasets.DatasetApiService/GetDatasetStatus": {
        const status = datasetStatus.get(`${body.ownerSlug}/${body.datasetSlug}`);
        return status ? [200, { status }] : [404, { code: 404, message: "Dataset not found" }];
      }
      case "datasets.DatasetApiService/GetDataset": {
        const ref = `${body.ownerSlug}/${body.datasetSlug}`;
        if (!state.datasets.has(ref)) return [404, { code: 404, message: "Dataset not found" }];
        return [
          200,
          {
            id: 1,
            ref,
            url: `https://www.kaggle.com/datasets/${ref}`,
            isPrivate: true,
            ...(datasetVersions.has(ref) ? { currentVersionNumber: datasetVersions.get(ref) } : {}),
          },
        ];
      }
      default:
        return [404, { code: 404, message: `No method ${method}` }];
    }
  };

  const authenticate = (header: string | undefined): string | undefined => {
    const bearer = /^Bearer (.+)$/.exec(header ?? "")?.[1];
    if (bearer && state.expiredTokens.has(bearer)) return undefined;
    if (bearer === USER.token || (bearer && oauthTokens.has(bearer))) return USER.username;
    if (header === `Basic ${Buffer.from(`${USER.username}:${USER.key}`).toString("base64")}`) return USER.username;
    return undefined;
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const reply = (status: number, body: unknown): void => {
        res.writeHead(status, { "Content-Type": "application/json" });
        res.end(JSON.stringify(body));
      };
      const url = new URL(req.url ?? "/", "http://localhost");
      if (req.method === "PUT" && url.pathname.startsWith("/upload/")) {
        const blob = blobs.get(url.pathname.slice("/upload/".length));
        if (!blob) return reply(404, { message: "no such upload" });
        if (req.headers.authorization) return reply(400, { message: "credentials must not be sent to the upload address" });
        fs.writeFileSync(blob, Buffer.concat(chunks));
        return reply(200, {});
      }
      if (req.method === "GET" && url.pathname.startsWith("/outputs/")) {
        if (req.headers.authorization) return reply(400, { message: "credentials must not be sent to the download address" });
        const [, , id, ...rest] = url.pathname.split("/");
        const session = [...sessions.values()].find((s) => String(s.id) === id);
        const file = session && path.join(session.work, ...rest.map(decodeURIComponent));
        if (!file || !file.startsWith(session.work + path.sep) || !fs.existsSync(file)) return reply(404, { message: "not found" });
        res.writeHead(200, { "Content-Type": "application/octet-stream", "Content-Length": fs.statSync(file).size });
        return void fs.createReadStream(file).pipe(res);
      }
      const logs = /^\/v1\/kernels\/logs\/stream\/([^/]+)\/([^/]+)$/.exec(url.pathname);
      if (req.method === "GET" && logs) {
        if (!authenticate(req.headers.authorization)) return reply(401, { code: 401, message: "Unauthenticated" });
        const session = sessions.get(`${decodeURIComponent(logs[1]!)}/${decodeURIComponent(logs[2]!)}`);
        if (!session) return reply(404, { code: 404, message: "Kernel not found" });
        state.logStreams++;
        const ended = !["QUEUED", "RUNNING"].includes(session.status);
        if (ended) return reply(200, session.log);
        // Live: the log from its start, then each new chunk, then END_OF_LOG when the session ends.
        res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" });
        let sent = 0;
        const drop = state.dropLogStreamAfter;
        state.dropLogStreamAfter = undefined;
        const pump = (): void => {
          while (sent < session.log.length) {
            if (drop !== undefined && sent >= drop) {
              session.listeners.delete(pump);
              return void res.socket?.destroy();
            }
            res.write(`data: ${JSON.stringify(session.log[sent++])}\n\n`);
          }
          if (!["QUEUED", "RUNNING"].includes(session.status)) {
            session.listeners.delete(pump);
            res.end("data: END_OF_LOG\n\n");
          }
        };
        session.listeners.add(pump);
        res.on("close", () => session.listeners.delete(pump));
        return pump();
      }
      const match = /^\/v1\/([\w.]+\/\w+)$/.exec(url.pathname);
      if (req.method !== "POST" || !match) return reply(404, { code: 404, message: "Not found" });
      const method = match[1]!;
      const shape = SHAPES[method];
      if (!shape) return reply(404, { code: 404, message: `Unknown method ${method}` });
      const user = authenticate(req.headers.authorization);
      // Token checks and refreshes come before a client has a credential to sign with.
      if (!user && method !== "security.OAuthService/IntrospectToken" && method !== "users.AccountService/GenerateAccessToken")
        return reply(401, { code: 401, message: "Unauthenticated" });
      if (!String(req.headers["content-type"]).startsWith("application/json"))
        return reply(400, { code: 400, message: "Content-Type must be application/json" });
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString() || "{}");
      } catch {
        return reply(400, { code: 400, message: "Body is not JSON" });
      }
      const problems = checkShape(body, shape);
      if (problems.length) return reply(400, { code: 400, message: `Invalid ${method}: ${problems.join("; ")}` });
      state.requests.push({ method: method.split("/")[1]!, body: structuredClone(body) });
      const [status, answer] = handle(method, body, user ?? "");
      reply(status, answer);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return state;
}
