/**
 * Following a cloud job (SageMaker, Vertex AI): its record refreshed from the
 * provider, a status line whenever the provider's status changes, and the
 * log's new lines, polled at `pollSeconds`, slowing to every 30 s while
 * nothing happens, until the job ends or the reader stops following.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { Context } from "../context.js";
import { isFinal, type JobRecord } from "../jobs/job.js";
import { storageFor } from "../storage/index.js";
import { joinLocation } from "../storage/location.js";

/** What a backend gives the follow loop. */
export interface CloudLog<J extends JobRecord> {
  /** Keep going until the job ends. */
  follow: boolean;
  signal?: AbortSignal;
  /** Seconds between polls while something changes (config.poll_interval). */
  pollSeconds: number;
  /** The job's record as the provider says it is now. */
  refresh(): Promise<J>;
  /** The status line for `record`, or undefined while there is none to show yet. */
  status(record: J): string | undefined;
  /** The log lines written since the last read. */
  read(record: J): Promise<string[]>;
  /**
   * Once the job has ended, whether its log has been read to the end, given
   * how many reads in a row (since the end was seen) came back empty; without
   * it, one more read after the end.
   */
  complete?(record: J, emptyReads: number): boolean;
  /** What to say once the job has ended, after the log's last lines. */
  ended?(record: J): string[];
}

/** The lines of a cloud job's log, with status lines when following. */
export async function* followCloudJob<J extends JobRecord>(log: CloudLog<J>): AsyncIterable<string> {
  const base = log.pollSeconds * 1000;
  let interval = base;
  let said = "";
  for (;;) {
    const record = await log.refresh();
    if (log.follow) {
      const line = log.status(record);
      if (line !== undefined && line !== said) {
        yield line;
        said = line;
        interval = base;
      }
    }
    let lines: string[];
    try {
      lines = await log.read(record);
    } catch (err) {
      if (log.signal?.aborted) return; // stopped following while the provider made us wait
      throw err;
    }
    yield* lines;
    if (lines.length) interval = base;
    if (!log.follow) return;
    if (isFinal(record.state)) {
      if (log.complete) {
        // Read on until the backend says the log is complete (lines may be listable a while after the job ended); at most 30 reads.
        let empty = lines.length ? 0 : 1;
        for (let reads = 0; reads < 30 && !log.complete(record, empty); reads++) {
          let more: string[];
          try {
            more = await log.read(record);
          } catch (err) {
            if (log.signal?.aborted) return;
            throw err;
          }
          yield* more;
          empty = more.length ? 0 : empty + 1;
        }
      } else yield* await log.read(record).catch(() => [] as string[]); // what the last instant wrote
      yield* log.ended?.(record) ?? [];
      return;
    }
    try {
      await sleep(interval, undefined, { signal: log.signal });
    } catch {
      return; // the reader stopped following; the job goes on
    }
    interval = Math.min(interval * 1.5, 30_000);
  }
}

/** OUTPUT_PATH/JOB/output/output.tar.gz of an ended cloud job, when it left one (it is written only when /opt/ml/output/data held something). */
export async function leftOutput(jobOutput: string, ctx: Context): Promise<string | undefined> {
  const output = joinLocation(jobOutput, "output/output.tar.gz");
  return (await (await storageFor(output, ctx)).stat(output)) ? output : undefined;
}
