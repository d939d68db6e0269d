/**
 * Following a Vertex AI job: what a CustomJob's answer changes in the job's
 * record, and its log lines from Cloud Logging, each once, read no faster
 * than the read quota allows.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { isFinal } from "../../jobs/job.js";
import type { JobChanges } from "../types.js";
import { entryText, jobIdOf, LOG_POLL_SECONDS, logFilterFrom, unseen, type CustomJob, type LogCursor, type VertexApi } from "./api.js";
import { logFilter, stateOf } from "./plan.js";
import type { VertexJob, VertexProvider } from "./schema.js";

/** The record's changes for what `customJobs.get` answered (pure; a succeeded job's model is looked for by `foundModel`). */
export function changesFrom(answer: CustomJob, record: VertexJob): JobChanges<VertexProvider> {
  const state = stateOf(answer.state);
  const changes: JobChanges<VertexProvider> = {
    state,
    provider: { ...record.provider, resource: answer.name, status: answer.state, message: answer.error?.message ?? "" },
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
 * did not stop, whose run lasted its max_runtime, ran out of time.
 */
function cancelReason(answer: CustomJob, record: VertexJob): string {
  if (record.provider?.cancelRequested) return "stopped by request";
  const ran = answer.startTime && answer.endTime ? (Date.parse(answer.endTime) - Date.parse(answer.startTime)) / 1000 : 0;
  const limit = record.spec.settings.max_runtime;
  if (ran >= limit) return `stopped by Vertex AI: the job ran past config.max_runtime (${limit} s)`;
  return `cancelled outside alekseylearn (Vertex AI says ${answer.error?.message ?? "CANCELED"})`;
}

/** A status line for the log: Vertex's state and its error, when the job has one. */
export function statusLine(record: VertexJob): string {
  const { status, message } = record.provider ?? {};
  return `[vertex] ${status || record.state}${message ? `: ${message}` : ""}`;
}

/**
 * A job's log in Cloud Logging, read forward: each `read` returns the lines
 * written since the last, each once, oldest first. Reads are at least
 * `minIntervalMs` apart (the quota is 60 entries.list calls a minute per
 * project, shared with every other reader), waiting when asked sooner;
 * `signal` ends a wait.
 */
export class JobLog {
  private cursor: LogCursor | undefined;
  private lastRead = 0;

  constructor(
    private readonly api: VertexApi,
    private readonly project: string,
    private readonly resource: string,
    private readonly hosts: number,
    private readonly minIntervalMs = LOG_POLL_SECONDS * 1000,
    private readonly signal?: AbortSignal,
  ) {}

  /** The lines written since the last read; with several hosts each line names its replica (workerpool1-0). */
  async read(): Promise<string[]> {
    const wait = this.lastRead + this.minIntervalMs - Date.now();
    if (this.lastRead && wait > 0) await sleep(wait, undefined, { signal: this.signal });
    this.lastRead = Date.now();
    const filter = logFilterFrom(logFilter(jobIdOf(this.resource)), this.cursor);
    const lines: string[] = [];
    let pageToken: string | undefined;
    do {
      const page = await this.api.listLogEntries(this.project, filter, pageToken);
      const { fresh, cursor } = unseen(page.entries, this.cursor);
      this.cursor = cursor;
      for (const entry of fresh) {
        const text = entryText(entry);
        if (text === undefined) continue;
        const task = entry.resource?.labels?.task_name;
        lines.push(this.hosts > 1 && task ? `[${task}] ${text}` : text);
      }
      pageToken = page.nextPageToken;
    } while (pageToken);
    return lines;
  }
}
