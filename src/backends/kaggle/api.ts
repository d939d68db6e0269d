/**
 * A typed client for the Kaggle API the official CLI uses (kagglesdk): every
 * call is `POST {endpoint}/v1/{service}/{method}` with a JSON body whose field
 * names are the camelCase names of kagglesdk's FieldMetadata. Only the calls
 * and fields alekseylearn needs are declared.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { failure, UserError } from "../../errors.js";
import { authorization, CREATE_TOKEN_HINT, type KaggleCredentials } from "./credentials.js";

/** The production endpoint; KAGGLE_API_ENDPOINT overrides it (tests point it at a local server). */
export const DEFAULT_ENDPOINT = "https://api.kaggle.com";

/** kernels.KernelsApiService/SaveKernel request (ApiSaveKernelRequest). */
export interface SaveKernelRequest {
  slug: string;
  newTitle: string;
  text: string;
  language: "python";
  kernelType: "script" | "notebook";
  isPrivate: boolean;
  enableGpu: boolean;
  enableTpu: boolean;
  enableInternet: boolean;
  datasetDataSources: string[];
  competitionDataSources: string[];
  kernelDataSources: string[];
  modelDataSources: string[];
  categoryIds: string[];
  dockerImagePinningType?: "original" | "latest";
  machineShape?: string;
  sessionTimeoutSeconds?: number;
}

/** ApiSaveKernelResponse. */
export interface SaveKernelResponse {
  ref?: string;
  url?: string;
  versionNumber?: number;
  error?: string;
  invalidTags?: string[];
  invalidDatasetSources?: string[];
  invalidCompetitionSources?: string[];
  invalidKernelSources?: string[];
  invalidModelSources?: string[];
  kernelId?: number;
}

/** KernelWorkerStatus, as the API spells it now (upper case); older servers answer in lower case. */
export type KernelWorkerStatus = "QUEUED" | "RUNNING" | "COMPLETE" | "ERROR" | "CANCEL_REQUESTED" | "CANCEL_ACKNOWLEDGED" | "NEW_SCRIPT";

/** ApiGetKernelSessionStatusResponse. */
export interface SessionStatus {
  status?: string;
  failureMessage?: string;
}

/** One output file of a kernel session (ApiKernelSessionOutputFile). */
export interface OutputFile {
  url?: string;
  fileName?: string;
}

/** ApiListKernelSessionOutputResponse. */
export interface SessionOutputPage {
  files?: OutputFile[];
  log?: string;
  nextPageToken?: string;
}

/** ApiStartBlobUploadResponse. */
export interface BlobUpload {
  token?: string;
  createUrl?: string;
}

/** ApiCreateDatasetResponse. */
export interface CreateDatasetResponse {
  ref?: string;
  url?: string;
  status?: string;
  error?: string;
}

/** Every KernelWorkerStatus (kagglesdk kernels_enums.py). */
const STATUSES: KernelWorkerStatus[] = ["QUEUED", "RUNNING", "COMPLETE", "ERROR", "CANCEL_REQUESTED", "CANCEL_ACKNOWLEDGED", "NEW_SCRIPT"];

/**
 * Normalise a status however the API spells it: "COMPLETE", "complete",
 * "KernelWorkerStatus.COMPLETE", "KERNEL_WORKER_STATUS_COMPLETE" or camelCase
 * "cancelAcknowledged". kagglesdk's EnumSerializer accepts all of these (it
 * compares names ignoring case, and converts camelCase to snake_case), so the
 * server may send any; only letters decide here.
 */
export function parseStatus(status: string | undefined): KernelWorkerStatus | undefined {
  const letters = (text: string): string => text.toLowerCase().replace(/[^a-z]/g, "");
  const name = letters((status ?? "").split(".").pop()!).replace(/^kernelworkerstatus/, "");
  return STATUSES.find((value) => letters(value) === name);
}

/** One event of a kernel session's log: a chunk of its output ({stream_name, time, data}). */
export interface LogEvent {
  stream_name?: string;
  time?: number;
  data?: string;
}

/** The marker the log stream sends when a session's log has ended (kaggle-cli, `_LOG_STREAM_END_SENTINEL`). */
export const END_OF_LOG = "END_OF_LOG";

/** The events of a log the API sent whole: a JSON array of events, or plain text from older servers. */
export function logEvents(text: string): LogEvent[] {
  try {
    const parsed = JSON.parse(text) as unknown;
    const list = Array.isArray(parsed) ? parsed : [parsed];
    return list.filter((item): item is LogEvent => typeof item === "object" && item !== null);
  } catch {
    return text ? [{ data: text }] : [];
  }
}

/** POST `body` to `service/method` at `endpoint`, signed with `authorization` when given: the status and the parsed answer (undefined when not JSON). */
export async function postKaggle(
  endpoint: string,
  service: string,
  method: string,
  body: object,
  authorization?: string,
): Promise<{ status: number; answer: unknown; text: string; retryAfter: number }> {
  const response = await fetch(`${endpoint.replace(/\/+$/, "")}/v1/${service}/${method}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "User-Agent": "alekseylearn", ...(authorization ? { Authorization: authorization } : {}) },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  let answer: unknown;
  try {
    answer = text ? JSON.parse(text) : {};
  } catch {
    answer = undefined;
  }
  return { status: response.status, answer, text, retryAfter: Number(response.headers.get("retry-after")) };
}

/** Calls to the Kaggle API with one set of credentials. Retries rate limits and server errors with backoff. */
export class KaggleApi {
  constructor(
    readonly credentials: KaggleCredentials,
    readonly endpoint: string = DEFAULT_ENDPOINT,
    private readonly retries = 4,
  ) {}

  /** Call `service/method` with `body`; a Kaggle error becomes a UserError that names the call, never the credentials. */
  async call<T>(service: string, method: string, body: object): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      let reply: Awaited<ReturnType<typeof postKaggle>>;
      try {
        reply = await postKaggle(this.endpoint, service, method, body, authorization(this.credentials));
      } catch (err) {
        if (attempt < this.retries) {
          await sleep(500 * 2 ** attempt);
          continue;
        }
        throw failure(
          `Cannot reach the Kaggle API at ${this.endpoint}: ${(err as Error).cause ?? (err as Error).message}.`,
          "Check the network connection; nothing was changed on Kaggle.",
        );
      }
      const { status, answer: parsed, text, retryAfter } = reply;
      const message = (parsed as { message?: string } | undefined)?.message ?? text.slice(0, 200);
      if (status >= 200 && status < 300 && parsed !== undefined && !((parsed as { code?: number }).code! >= 400)) return parsed as T;
      if ((status === 429 || status >= 500) && attempt < this.retries) {
        await sleep(Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : 1000 * 2 ** attempt);
        continue;
      }
      if (status === 401 || status === 403) {
        throw new UserError(`Kaggle refused the credentials from ${this.credentials.source} (${status} on ${method}): ${message}`, CREATE_TOKEN_HINT, 1);
      }
      if (status === 429) throw failure(`Kaggle is rate-limiting ${method} (429): ${message}`, "Wait a minute and try again.");
      throw failure(`Kaggle's ${method} failed (${status}): ${message}`);
    }
  }

  /**
   * A kernel session's log, live, from the endpoint the official CLI's `kernels
   * logs --follow` reads (GET /v1/kernels/logs/stream/OWNER/SLUG): server-sent
   * events while the session runs, ending with END_OF_LOG, and the whole log as
   * a JSON array once it has ended. Undefined when the endpoint is not there
   * (an older API); a dropped connection ends the iteration early.
   */
  async logStream(owner: string, slug: string, signal?: AbortSignal): Promise<AsyncIterable<LogEvent> | Iterable<LogEvent> | undefined> {
    const url = `${this.endpoint.replace(/\/+$/, "")}/v1/kernels/logs/stream/${encodeURIComponent(owner)}/${encodeURIComponent(slug)}`;
    let response: Response;
    try {
      response = await fetch(url, {
        headers: { Accept: "text/event-stream, */*", Authorization: authorization(this.credentials), "User-Agent": "alekseylearn" },
        ...(signal ? { signal } : {}),
      });
    } catch (err) {
      if (signal?.aborted) return (async function* () {})();
      throw failure(`Cannot reach the Kaggle API at ${this.endpoint}: ${(err as Error).cause ?? (err as Error).message}.`, "Check the network connection.");
    }
    if (response.status === 404) {
      await response.body?.cancel();
      return undefined;
    }
    if (response.status === 401 || response.status === 403) {
      await response.body?.cancel();
      throw new UserError(
        `Kaggle refused to show the log of ${owner}/${slug} to the credentials from ${this.credentials.source} (${response.status}).`,
        CREATE_TOKEN_HINT,
        1,
      );
    }
    if (!response.ok || !response.body) throw failure(`Kaggle's log stream of ${owner}/${slug} failed (${response.status}).`);
    if (!(response.headers.get("content-type") ?? "").toLowerCase().startsWith("text/event-stream")) return logEvents(await response.text());
    return serverSentEvents(response.body, signal);
  }

  /** The user the credentials belong to: the key's username, the one found when the token was checked, or the token's owner (security.OAuthService/IntrospectToken). */
  async username(): Promise<string> {
    if (this.credentials.username) return this.credentials.username;
    if (this.credentials.kind !== "token") throw new UserError(`The Kaggle credentials from ${this.credentials.source} name no user.`, CREATE_TOKEN_HINT, 1);
    const answer = await this.call<{ active?: boolean; username?: string }>("security.OAuthService", "IntrospectToken", { token: this.credentials.token });
    if (!answer.active || !answer.username)
      throw new UserError(`The Kaggle token from ${this.credentials.source} is not active (expired or revoked).`, CREATE_TOKEN_HINT, 1);
    return answer.username;
  }

  saveKernel(request: SaveKernelRequest): Promise<SaveKernelResponse> {
    return this.call("kernels.KernelsApiService", "SaveKernel", request);
  }

  sessionStatus(userName: string, kernelSlug: string): Promise<SessionStatus> {
    return this.call("kernels.KernelsApiService", "GetKernelSessionStatus", { userName, kernelSlug });
  }

  sessionOutput(userName: string, kernelSlug: string, pageToken?: string, pageSize?: number): Promise<SessionOutputPage> {
    return this.call("kernels.KernelsApiService", "ListKernelSessionOutput", {
      userName,
      kernelSlug,
      ...(pageSize ? { pageSize } : {}),
      ...(pageToken ? { pageToken } : {}),
    });
  }

  /** Every output file of a session, following pagination to the end, and the log (from the first page). */
  async allSessionOutput(userName: string, kernelSlug: string): Promise<{ files: Required<OutputFile>[]; log?: string }> {
    const files: Required<OutputFile>[] = [];
    let log: string | undefined;
    let token: string | undefined;
    do {
      const page = await this.sessionOutput(userName, kernelSlug, token, 500);
      log ??= page.log;
      for (const file of page.files ?? []) if (file.url && file.fileName) files.push({ url: file.url, fileName: file.fileName });
      token = page.nextPageToken || undefined;
    } while (token);
    return { files, ...(log ? { log } : {}) };
  }

  cancelSession(kernelSessionId: number): Promise<{ errorMessage?: string }> {
    return this.call("kernels.KernelsApiService", "CancelKernelSession", { kernelSessionId });
  }

  startBlobUpload(name: string, contentLength: number, lastModifiedEpochSeconds: number): Promise<BlobUpload> {
    return this.call("blobs.BlobApiService", "StartBlobUpload", { type: "DATASET", name, contentLength, lastModifiedEpochSeconds });
  }

  createDataset(request: {
    ownerSlug: string;
    slug: string;
    title: string;
    isPrivate: boolean;
    licenseName: string;
    files: Array<{ token: string }>;
  }): Promise<CreateDatasetResponse> {
    return this.call("datasets.DatasetApiService", "CreateDataset", request);
  }

  createDatasetVersion(ownerSlug: string, datasetSlug: string, fileToken: string, versionNotes: string): Promise<CreateDatasetResponse> {
    return this.call("datasets.DatasetApiService", "CreateDatasetVersion", {
      ownerSlug,
      datasetSlug,
      body: { versionNotes, deleteOldVersions: false, files: [{ token: fileToken }] },
    });
  }

  datasetStatus(ownerSlug: string, datasetSlug: string): Promise<{ status?: string }> {
    return this.call("datasets.DatasetApiService", "GetDatasetStatus", { ownerSlug, datasetSlug });
  }

  /** The dataset (ApiDataset); its currentVersionNumber is the version a kernel attaching it gets. */
  dataset(ownerSlug: string, datasetSlug: string): Promise<{ ref?: string; currentVersionNumber?: number }> {
    return this.call("datasets.DatasetApiService", "GetDataset", { ownerSlug, datasetSlug });
  }
}

/** The `data:` payloads of a server-sent-event stream as log events, until END_OF_LOG; a payload that is not JSON is taken as plain output (as the official CLI does). */
async function* serverSentEvents(body: ReadableStream<Uint8Array>, signal?: AbortSignal): AsyncIterable<LogEvent> {
  const decoder = new TextDecoder();
  let buffered = "";
  const reader = body.getReader();
  try {
    for (;;) {
      let chunk: Awaited<ReturnType<typeof reader.read>>;
      try {
        chunk = await reader.read();
      } catch {
        return; // the connection dropped (or the reader stopped): the caller decides whether to reconnect
      }
      if (chunk.done) return;
      buffered += decoder.decode(chunk.value, { stream: true });
      const lines = buffered.split(/\r?\n/);
      buffered = lines.pop()!;
      for (const line of lines) {
        if (!line.startsWith("data:")) continue;
        const payload = line.slice(5).trimStart();
        if (payload === END_OF_LOG) return;
        try {
          yield JSON.parse(payload) as LogEvent;
        } catch {
          yield { data: payload };
        }
      }
      if (signal?.aborted) return;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}
