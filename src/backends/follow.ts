/**
 * Following a cloud job (SageMaker, Vertex AI): its record refreshed from the
 * provider, a status line whenever the provider's status changes, and the
 * log's new lines, polled at `pollSeconds`, slowing to every 30 s while
 * nothing happens, until the job ends or the reader stops following.
 */
import { StringDecoder } from "node:string_decoder";
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

/** The most characters of one line passed on at once: a longer line (a 100 MB dump with no newline) is passed on in pieces this long, so following holds a bounded amount whatever a job prints. */
export const MAX_LINE_PIECE = 64 * 1024;

/**
 * A job's output, as bytes arrive, cut into lines: at `\n`, `\r\n` and a lone `\r` (a progress bar redraws its line
 * with `\r`, as tqdm does, and each redraw is a line of its own here), and a line longer than `MAX_LINE_PIECE`
 * characters cut into pieces of that length. What it holds between calls is at most one piece.
 */
export class LineSplitter {
  private readonly decoder = new StringDecoder("utf8");
  private partial = "";
  /** A `\r` ended the last chunk: a `\n` first in the next one belongs to it. */
  private carriage = false;

  /** The lines `chunk` completes. */
  push(chunk: Buffer): string[] {
    return this.split(this.decoder.write(chunk));
  }

  /** What is left once the output has ended, as a last line (none when nothing is left). */
  end(): string[] {
    const rest = this.partial + this.decoder.end();
    this.partial = "";
    return rest ? [rest] : [];
  }

  private split(text: string): string[] {
    const lines: string[] = [];
    let start = this.carriage && text.startsWith("\n") ? 1 : 0;
    this.carriage = false;
    const breaks = /\r\n|\r|\n/g;
    breaks.lastIndex = start;
    for (let found = breaks.exec(text); found; found = breaks.exec(text)) {
      lines.push(...pieces(this.partial + text.slice(start, found.index)));
      this.partial = "";
      start = breaks.lastIndex;
      // A chunk may end between the \r and the \n of one line break.
      if (found[0] === "\r" && start === text.length) this.carriage = true;
    }
    const rest = pieces(this.partial + text.slice(start));
    this.partial = rest.pop() ?? "";
    lines.push(...rest);
    return lines;
  }
}

/** `line` in pieces of at most MAX_LINE_PIECE characters (one piece, maybe empty, when it is short). */
function pieces(line: string): string[] {
  if (line.length <= MAX_LINE_PIECE) return [line];
  const out: string[] = [];
  let at = 0;
  while (line.length - at > MAX_LINE_PIECE) {
    out.push(line.slice(at, at + MAX_LINE_PIECE));
    at += MAX_LINE_PIECE;
  }
  out.push(line.slice(at));
  return out;
}
