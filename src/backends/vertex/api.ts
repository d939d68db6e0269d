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
  jsonPayload?: { message?: unknown };
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
    if (!response.ok) throw apiError(what, response.status, parsed);
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
 * project, shared by everyone reading it; following a job asks once every
 * this many seconds at most, leaving room for others.
 */
export const LOG_POLL_SECONDS = 5;

/** Where a log reader is: the newest timestamp it has shown, and the entries it has shown at exactly that time (entries of one instant may arrive apart). */
export interface LogCursor {
  timestamp: string;
  seen: string[];
}

/** The filter for a job's entries from `cursor` on (inclusive, so that late entries of the same instant are not lost; `unseen` drops the repeats). */
export function logFilterFrom(base: string, cursor: LogCursor | undefined): string {
  return cursor ? `${base} AND timestamp>="${cursor.timestamp}"` : base;
}

/** The text of an entry: its textPayload, or its jsonPayload's message. */
export function entryText(entry: LogEntry): string | undefined {
  if (typeof entry.textPayload === "string") return entry.textPayload.replace(/\n$/, "");
  const message = entry.jsonPayload?.message;
  return typeof message === "string" ? message.replace(/\n$/, "") : undefined;
}

/** An RFC 3339 UTC time as text that sorts in time order: the fraction padded to nanoseconds (Cloud Logging trims trailing zeros, and "00Z" sorts after "00.5Z" as text). */
export function timeKey(timestamp: string): string {
  const match = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$/.exec(timestamp);
  return match ? `${match[1]}.${(match[2] ?? "").padEnd(9, "0")}Z` : timestamp;
}

/** The entries of `entries` (oldest first) not shown before `cursor`, and the cursor after them; each entry once, even when pages overlap. */
export function unseen(entries: readonly LogEntry[], cursor: LogCursor | undefined): { fresh: LogEntry[]; cursor: LogCursor | undefined } {
  let next = cursor ? { timestamp: cursor.timestamp, seen: [...cursor.seen] } : undefined;
  const fresh: LogEntry[] = [];
  for (const entry of entries) {
    const timestamp = timeKey(entry.timestamp ?? "");
    const id = entry.insertId ?? `${timestamp}:${entryText(entry) ?? ""}`;
    if (next && timestamp < next.timestamp) continue;
    if (next && timestamp === next.timestamp && next.seen.includes(id)) continue;
    fresh.push(entry);
    if (!next || timestamp > next.timestamp) next = { timestamp, seen: [id] };
    else next.seen.push(id);
  }
  return { fresh, cursor: next };
}
