/**
 * Following a Vertex AI job: what a CustomJob's answer changes in the job's
 * record, and its log lines from Cloud Logging, each once, read no faster
 * than the read quota allows.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { isFinal } from "../../jobs/job.js";
import type { JobChanges } from "../types.js";
import {
  entryText,
  freshEntries,
  jobIdOf,
  LOG_LAG_MS,
  LOG_OVERLAP_MS,
  LOG_POLL_SECONDS,
  logWindowFilter,
  retryable,
  rfc3339,
  timeKey,
  type CustomJob,
  type LogEntry,
  type LogWindow,
  type VertexApi,
} from "./api.js";
import { logFilter, stateOf } from "./plan.js";
import type { VertexJob, VertexProvider } from "./schema.js";

/** The record's changes for what `customJobs.get` answered (pure; a succeeded job's model is looked for by `foundModel`). */
export function changesFrom(answer: CustomJob, record: VertexJob): JobChanges<VertexProvider> {
  const state = stateOf(answer.state);
  const changes: JobChanges<VertexProvider> = {
    state,
    provider: {
      ...record.provider,
      resource: answer.name,
      status: answer.state,
      message: answer.error?.message ?? "",
      ...(answer.createTime ? { createTime: answer.createTime } : {}),
      ...(answer.endTime ? { endTime: answer.endTime } : {}),
    },
  };
  if (answer.startTime) changes.startedAt = new Date(answer.startTime).toISOString();
  if (isFinal(state)) changes.endedAt = new Date(answer.endTime ?? Date.now()).toISOString();
  if (state === "stopped") changes.reason = cancelReason(answer, record);
  else if (answer.error?.message) changes.reason = answer.error.message;
  else if (answer.state === "JOB_STATE_EXPIRED") changes.reason = "the job expired before it could run";
  return changes;
}

/**
 * Why a cancelled job was cancelled: Vertex cancels a job that runs past its
 * scheduling.timeout with the same CANCELED a stop gets, so a job this tool
 * did not stop that ended at or after its max_runtime ran out of time. Its
 * run is measured from createTime, not startTime: workers run before the job
 * is RUNNING ("Vertex AI starts running your code on each worker as soon as it
 * becomes available. When all the workers are available, Vertex AI sets the
 * job state to JOB_STATE_RUNNING", understanding-training-service), so the
 * time out may come less than max_runtime after startTime; a little slack
 * (1 %, at most a minute) allows for the clocks that stamp the two times.
 */
function cancelReason(answer: CustomJob, record: VertexJob): string {
  if (record.provider?.cancelRequested) return "stopped by request";
  const from = answer.createTime ?? answer.startTime;
  const ran = from && answer.endTime ? (Date.parse(answer.endTime) - Date.parse(from)) / 1000 : 0;
  const limit = record.spec.settings.max_runtime;
  if (ran > 0 && ran >= limit - Math.min(60, limit / 100)) return `stopped by Vertex AI: the job ran past config.max_runtime (${limit} s)`;
  return `cancelled outside alekseylearn (Vertex AI says ${answer.error?.message ?? "CANCELED"})`;
}

/** A status line for the log: Vertex's state and its error, when the job has one. */
export function statusLine(record: VertexJob): string {
  const { status, message } = record.provider ?? {};
  return `[vertex] ${status || record.state}${message ? `: ${message}` : ""}`;
}

/** What a JobLog is given besides its job. */
export interface JobLogOptions {
  /** The first read's lower bound: the job's createTime (no entry of the job is older). */
  from: string;
  /** Told a line for the user when a read waits long on Cloud Logging (a 429 or a 5xx answered). */
  onWait?: (line: string) => void;
  /** Waits at least this long are told (10 s by default). */
  tellWaitsFromMs?: number;
  /** How far behind now a read stops, and how much of the last window the next read reads again (LOG_LAG_MS, LOG_OVERLAP_MS by default; tests shorten them). */
  lagMs?: number;
  overlapMs?: number;
}

/**
 * A job's log in Cloud Logging, read forward as gcloud follows a custom job
 * (lib/googlecloudsdk/command_lib/logs/stream.py, LogFetcher): each read asks
 * for the entries from the job's createTime (the first read) or the last
 * read's window (later ones) up to now − LOG_LAG_MS, oldest first, and returns
 * the lines not shown before, each once: a read lists again the last
 * LOG_OVERLAP_MS of what was read before, so an entry listable late is shown
 * rather than skipped, and its insertId keeps it from being shown twice.
 * Reads are at least `minIntervalMs` apart (the quota is 60 entries.list calls
 * a minute per project, shared with every other reader), waiting when asked
 * sooner; a 429 or 5xx answer is asked again after a wait that doubles from
 * `minIntervalMs` up to a minute (told through `onWait` when long), while
 * following for as long as it takes; `signal` ends a wait.
 */
export class JobLog {
  private window: LogWindow | undefined;
  private lastRead = 0;
  /** The upper bound of the last read while following (ms since the epoch): every entry older is shown. */
  covered = 0;

  constructor(
    private readonly api: VertexApi,
    private readonly project: string,
    private readonly resource: string,
    private readonly hosts: number,
    private readonly minIntervalMs = LOG_POLL_SECONDS * 1000,
    private readonly signal?: AbortSignal,
    private readonly options: JobLogOptions = { from: "1970-01-01T00:00:00Z" },
  ) {}

  /**
   * The lines written since the last read; with several hosts each line names
   * its replica (workerpool1-0). `once` reads what there is now, newest
   * included, and moves nothing (`logs` without --follow).
   */
  async read(once = false): Promise<string[]> {
    const wait = this.lastRead + this.minIntervalMs - Date.now();
    if (this.lastRead && wait > 0) await sleep(wait, undefined, { signal: this.signal });
    this.lastRead = Date.now();
    const base = logFilter(jobIdOf(this.resource));
    const window = this.window ?? { lower: this.options.from, seen: new Map<string, string>() };
    const upper = once ? undefined : this.lastRead - (this.options.lagMs ?? LOG_LAG_MS);
    // Just created: nothing can be old enough to read yet.
    if (upper !== undefined && timeKey(rfc3339(upper)) <= timeKey(window.lower)) return [];
    const filter = logWindowFilter(base, window.lower, upper === undefined ? undefined : rfc3339(upper));
    const entries: LogEntry[] = [];
    let pageToken: string | undefined;
    do {
      const page = await this.listPage(filter, pageToken, once ? 3 : Infinity);
      entries.push(...page.entries);
      pageToken = page.nextPageToken;
    } while (pageToken);
    const { fresh, window: after } = freshEntries(
      entries,
      window,
      upper === undefined ? window.lower : rfc3339(upper - (this.options.overlapMs ?? LOG_OVERLAP_MS)),
    );
    if (!once) {
      this.window = after;
      this.covered = upper!;
    }
    const lines: string[] = [];
    for (const entry of fresh) {
      const text = entryText(entry);
      if (text === undefined) continue;
      const task = entry.resource?.labels?.task_name;
      lines.push(this.hosts > 1 && task ? `[${task}] ${text}` : text);
    }
    return lines;
  }

  /**
   * Whether an ended job's log is read to its end: as gcloud's custom-jobs
   * follower stops (CustomJobsClient.CheckJobComplete in
   * lib/googlecloudsdk/api_lib/ai/custom_jobs/client.py: go on while at most
   * one poll came back empty, then only while the job has no endTime), after
   * two empty reads in a row, the last of which reached past the job's end.
   */
  complete(endTime: string | undefined, emptyReads: number): boolean {
    const end = endTime ? Date.parse(endTime) : 0;
    return emptyReads >= 2 && this.covered > end;
  }

  /** One page of entries.list, asked again after a 429, a 5xx or a dropped connection, up to `tries` times. */
  private async listPage(filter: string, pageToken: string | undefined, tries: number): Promise<{ entries: LogEntry[]; nextPageToken?: string }> {
    let wait = Math.max(this.minIntervalMs, 1);
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.api.listLogEntries(this.project, filter, pageToken);
      } catch (err) {
        if (!retryable(err) || attempt >= tries || this.signal?.aborted) throw err;
        if (wait >= (this.options.tellWaitsFromMs ?? 10_000)) {
          const status = (err as { httpStatus?: number }).httpStatus;
          const why = status === 429 ? "is over its read quota (429)" : status ? `answered ${status}` : "did not answer";
          this.options.onWait?.(`Cloud Logging ${why}; reading the job's log again in ${Math.round(wait / 1000)} s.`);
        }
        await sleep(wait, undefined, { signal: this.signal });
        wait = Math.min(wait * 2, 60_000);
      }
    }
  }
}
