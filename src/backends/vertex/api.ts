/**
 * The REST calls of the Vertex backend, as Google's published descriptions
 * name them: aiplatform v1 `projects.locations.customJobs` (create, get,
 * cancel, list) and logging v2 `entries.list`. Each is one authorized fetch
 * against the API's endpoint (or its override variable); answers are read in
 * the documented shapes.
 */
import { endpointOf } from "./google.js";
import { apiError, type GoogleSession } from "./auth.js";
import { setTimeout as sleep } from "node:timers/promises";
import { failure, UserError } from "../../errors.js";
import { createRepositoryRequest, parentOf, type CustomJobBody } from "./plan.js";

type Env = Readonly<Record<string, string | undefined>>;

/** A CustomJob as the API answers it (GoogleCloudAiplatformV1CustomJob; the fields this backend reads). */
export interface CustomJob {
  /** projects/NUMBER/locations/REGION/customJobs/ID. */
  name: string;
  displayName: string;
  state: string;
  error?: { code?: number; message?: string };
  labels?: Record<string, string>;
  createTime?: string;
  startTime?: string;
  endTime?: string;
  jobSpec?: {
    baseOutputDirectory?: { outputUriPrefix?: string };
    workerPoolSpecs?: Array<{ machineSpec?: { machineType?: string; acceleratorType?: string }; replicaCount?: string }>;
    scheduling?: { strategy?: string };
  };
}

/** One entry of Cloud Logging (LogEntry; the fields a job's log line is made of). */
export interface LogEntry {
  insertId?: string;
  timestamp?: string;
  severity?: string;
  textPayload?: string;
  jsonPayload?: { message?: unknown; [key: string]: unknown };
  /** The monitored resource; for ml_job, labels.task_name names the replica (workerpool0-0). */
  resource?: { type?: string; labels?: Record<string, string> };
}

/** The numeric id of a custom job, the last part of its resource name (Cloud Logging's resource.labels.job_id). */
export function jobIdOf(resource: string): string {
  return resource.slice(resource.lastIndexOf("/") + 1);
}

/** The API calls of one session in one region. */
export class VertexApi {
  constructor(
    private readonly session: GoogleSession,
    private readonly region: string,
    private readonly env: Env,
  ) {}

  private async call<T>(
    what: string,
    api: "aiplatform" | "logging" | "artifactregistry",
    method: "GET" | "POST",
    path: string,
    body?: unknown,
  ): Promise<T | undefined> {
    const url = `${endpointOf(api, this.region, this.env)}/${path}`;
    const response = await fetch(url, {
      method,
      headers: { ...(await this.session.headers(url)), ...(body === undefined ? {} : { "content-type": "application/json" }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : {};
    } catch {
      parsed = undefined;
    }
    if (response.status === 404 && method === "GET") return undefined;
    // The status rides along, so that a reader may tell a quota's 429 or a 5xx (worth another try) from a refusal.
    if (!response.ok) throw Object.assign(apiError(what, response.status, parsed), { httpStatus: response.status });
    return parsed as T;
  }

  /** `projects.locations.customJobs.create`: the job as created (state JOB_STATE_QUEUED or PENDING). */
  async createCustomJob(parent: string, body: CustomJobBody): Promise<CustomJob> {
    return (await this.call<CustomJob>("Creating the Vertex AI custom job", "aiplatform", "POST", `v1/${parent}/customJobs`, body))!;
  }

  /** `projects.locations.customJobs.get`; undefined when there is no such job. */
  async getCustomJob(resource: string): Promise<CustomJob | undefined> {
    return this.call<CustomJob>(`Reading the Vertex AI job ${resource}`, "aiplatform", "GET", `v1/${resource}`);
  }

  /** `projects.locations.customJobs.cancel`: asks the job to stop (it passes through JOB_STATE_CANCELLING). */
  async cancelCustomJob(resource: string): Promise<void> {
    await this.call(`Cancelling the Vertex AI job ${resource}`, "aiplatform", "POST", `v1/${resource}:cancel`, {});
  }

  /** `projects.locations.customJobs.list` with a filter: the newest job called `displayName` in `parent`, if any. */
  async findCustomJob(parent: string, displayName: string): Promise<CustomJob | undefined> {
    const filter = encodeURIComponent(`display_name="${displayName.replace(/["\\]/g, "\\$&")}"`);
    let pageToken = "";
    const found: CustomJob[] = [];
    do {
      const page = await this.call<{ customJobs?: CustomJob[]; nextPageToken?: string }>(
        `Looking for the Vertex AI job ${displayName}`,
        "aiplatform",
        "GET",
        `v1/${parent}/customJobs?filter=${filter}${pageToken ? `&pageToken=${encodeURIComponent(pageToken)}` : ""}`,
      );
      found.push(...(page?.customJobs ?? []).filter((job) => job.displayName === displayName));
      pageToken = page?.nextPageToken ?? "";
    } while (pageToken);
    return found.sort((a, b) => (b.createTime ?? "").localeCompare(a.createTime ?? ""))[0];
  }

  /** artifactregistry v1 `projects.locations.repositories.get`: whether the Docker repository `repository` exists in `project`'s `region`. */
  async repositoryExists(project: string, region: string, repository: string): Promise<boolean> {
    const name = `projects/${project}/locations/${region}/repositories/${repository}`;
    return (await this.call(`Reading the Artifact Registry repository ${name}`, "artifactregistry", "GET", `v1/${name}`)) !== undefined;
  }

  /**
   * artifactregistry v1 `projects.locations.repositories.create`: makes the
   * Docker repository, waiting for its long-running operation; a repository
   * made meanwhile by someone else (409 ALREADY_EXISTS) is as good.
   */
  async createRepository(project: string, region: string, repository: string): Promise<void> {
    const what = `Creating the Artifact Registry repository ${repository} in ${project} (${region})`;
    const parent = parentOf(project, region);
    let operation: { name?: string; done?: boolean; error?: { message?: string } } | undefined;
    try {
      operation = await this.call(
        what,
        "artifactregistry",
        "POST",
        `v1/${parent}/repositories?repositoryId=${encodeURIComponent(repository)}`,
        createRepositoryRequest(),
      );
    } catch (err) {
      if (err instanceof UserError && /ALREADY_EXISTS/.test(err.message)) return;
      throw err;
    }
    for (let waited = 0; operation && !operation.done && operation.name; waited++) {
      if (waited > 60) throw failure(`${what} did not finish within a minute.`, "Run the command again; the repository may exist by then.");
      await sleep(1000);
      operation = await this.call(what, "artifactregistry", "GET", `v1/${operation.name}`);
    }
    if (operation?.error) throw failure(`${what} failed: ${operation.error.message ?? "the operation failed"}.`);
  }

  /** logging v2 `entries.list`: one page of entries matching `filter` in `project`, oldest first. */
  async listLogEntries(project: string, filter: string, pageToken?: string): Promise<{ entries: LogEntry[]; nextPageToken?: string }> {
    const page = await this.call<{ entries?: LogEntry[]; nextPageToken?: string }>(
      "Reading the job's log from Cloud Logging",
      "logging",
      "POST",
      "v2/entries:list",
      {
        resourceNames: [`projects/${project}`],
        filter,
        orderBy: "timestamp asc",
        pageSize: 1000,
        ...(pageToken ? { pageToken } : {}),
      },
    );
    return { entries: page?.entries ?? [], ...(page?.nextPageToken ? { nextPageToken: page.nextPageToken } : {}) };
  }
}

/**
 * Cloud Logging's read quota is 60 entries.list requests a minute per
 * project, shared by everyone reading it ("Number of entries.list requests:
 * 60 per minute, per Google Cloud project", cloud.google.com/logging/quotas;
 * a 429 names it: `limit 'ReadRequestsPerMinutePerProject'`, `quota_limit_value
 * 60`, github:snarfed/bridgy-fed#620); following a job asks once every this
 * many seconds at most, leaving room for others.
 */
export const LOG_POLL_SECONDS = 5;

/**
 * How far behind now a read stops: entries of the newest seconds may not be
 * listable yet, or not in timestamp order, so no read asks for them, as
 * gcloud's log streamer does (`GetFilterUpperBound`: `timestamp<"now − 5 s"`,
 * lib/googlecloudsdk/command_lib/logs/stream.py, which `gcloud ai
 * custom-jobs stream-logs` uses through command_lib/ai/log_util.py).
 */
export const LOG_LAG_MS = 5_000;

/**
 * How much of what was read before each read reads again: gcloud drops an
 * entry listed later than 5 s after its timestamp ("we also decided to skip
 * logs that are returned too late", stream.py); here an entry listable up to
 * this long after its time is still shown once (its insertId tells a repeat).
 */
export const LOG_OVERLAP_MS = 60_000;

/**
 * Where a log reader is: every entry older than `lower` has been looked for
 * for LOG_OVERLAP_MS past its time; `seen` holds the entries at or after
 * `lower` already shown (insertId → time key), so that a read that lists them
 * again shows none twice.
 */
export interface LogWindow {
  lower: string;
  seen: Map<string, string>;
}

/** An RFC 3339 UTC time, as the filter and entries name times (milliseconds are enough for a bound). */
export function rfc3339(ms: number): string {
  return new Date(ms).toISOString();
}

/**
 * The filter of one read: the job's entries from `lower` (inclusive: the
 * job's createTime on the first read, logging v2's ListLogEntriesRequest.filter
 * asks for a time range "to make queries faster") up to `upper` (exclusive:
 * now − LOG_LAG_MS while following; none for a one-off read).
 */
export function logWindowFilter(base: string, lower: string, upper?: string): string {
  return `${base} AND timestamp>="${lower}"${upper === undefined ? "" : ` AND timestamp<"${upper}"`}`;
}

/** The text of an entry: its textPayload, or its jsonPayload's message (as gcloud's log_util._EntryToDict reads it), else the jsonPayload itself. */
export function entryText(entry: LogEntry): string | undefined {
  if (typeof entry.textPayload === "string") return entry.textPayload.replace(/\n$/, "");
  if (!entry.jsonPayload) return undefined;
  const message = entry.jsonPayload.message;
  return typeof message === "string" ? message.replace(/\n$/, "") : JSON.stringify(entry.jsonPayload);
}

/** An RFC 3339 UTC time as text that sorts in time order: the fraction padded to nanoseconds (Cloud Logging trims trailing zeros, and "00Z" sorts after "00.5Z" as text). */
export function timeKey(timestamp: string): string {
  const match = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$/.exec(timestamp);
  return match ? `${match[1]}.${(match[2] ?? "").padEnd(9, "0")}Z` : timestamp;
}

/** What identifies an entry within the window: its insertId (unique per log, LogEntry.insertId), else its time and text. */
function entryKey(entry: LogEntry): string {
  return entry.insertId ?? `${timeKey(entry.timestamp ?? "")}:${entryText(entry) ?? ""}`;
}

/**
 * The entries of a read not shown before (each once, in the order listed:
 * oldest first), and the window after it: `next` is the next read's lower
 * bound (this read's upper bound − LOG_OVERLAP_MS, never earlier than this
 * read's own lower bound), and entries older than it are forgotten, as no
 * later read lists them.
 */
export function freshEntries(entries: readonly LogEntry[], window: LogWindow, next: string): { fresh: LogEntry[]; window: LogWindow } {
  const lower = timeKey(next) > timeKey(window.lower) ? next : window.lower;
  const seen = new Map(window.seen);
  const fresh: LogEntry[] = [];
  for (const entry of entries) {
    const key = entryKey(entry);
    if (seen.has(key)) continue;
    seen.set(key, timeKey(entry.timestamp ?? ""));
    fresh.push(entry);
  }
  const bound = timeKey(lower);
  for (const [key, at] of seen) if (at < bound) seen.delete(key);
  return { fresh, window: { lower, seen } };
}

/** Whether an error from a Google API call is worth another try: a 429 (quota), a 5xx, or no answer at all (the connection failed). */
export function retryable(err: unknown): boolean {
  const status = (err as { httpStatus?: unknown } | undefined)?.httpStatus;
  if (typeof status === "number") return status === 429 || status >= 500;
  return !(err instanceof UserError) && (err as Error | undefined)?.name !== "AbortError";
}
