/**
 * A training job's CloudWatch log: every stream of the job (one per instance,
 * `<job>/algo-N-<epoch>` in /aws/sagemaker/TrainingJobs), read from the head
 * and then from where the last read stopped, each read going on through empty
 * pages until the forward token stops changing, slowing down when CloudWatch
 * says it is asked too often.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { Context } from "../../context.js";
import { awsError, awsFor, errorName } from "./aws.js";
import { isTransient } from "../../storage/s3-ranges.js";

/** The log group SageMaker writes training jobs' logs to. */
export const LOG_GROUP = "/aws/sagemaker/TrainingJobs";

/** Pages read from one stream in one read: the end of a stream is usually a few pages away; past this the next read goes on from where this one stopped. */
const MAX_PAGES_PER_READ = 200;

/** CloudWatch's answer when it is asked too often. */
function isThrottle(err: unknown): boolean {
  return ["ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded", "LimitExceededException"].includes(errorName(err));
}

/** How many lost connections in a row a read gets past before it says so. */
const NETWORK_RETRIES = 3;

/** Reads the new lines of every stream of one job, each call after the last. */
export class TrainingLog {
  /** Stream name → the token to read on from. */
  private readonly streams = new Map<string, string | undefined>();
  /** Extra wait after CloudWatch throttled us, doubled each time, reset on success. */
  private backoffMs = 0;

  /** `signal` (the reader's, not the command's) ends a wait for CloudWatch's throttling; `instances` > 1 prefixes every line with its instance. */
  constructor(
    private readonly jobName: string,
    private readonly ctx: Context,
    private readonly signal?: AbortSignal,
    private readonly instances = 1,
  ) {}

  /** Call `request`, waiting and retrying while CloudWatch throttles, and a few times over a lost connection (a busy machine, a proxy). */
  private async call<T>(request: () => Promise<T>): Promise<T> {
    let blips = 0;
    for (;;) {
      try {
        const result = await request();
        this.backoffMs = 0;
        return result;
      } catch (err) {
        if (!isThrottle(err) && !(isTransient(err) && ++blips <= NETWORK_RETRIES)) throw err;
        this.backoffMs = Math.min(Math.max(this.backoffMs * 2, 500), 30_000);
        await sleep(this.backoffMs, undefined, { signal: this.signal });
      }
    }
  }

  /** Find streams of the job not seen before (once per read: far below DescribeLogStreams' few calls a second, as reads are seconds apart). */
  private async discover(): Promise<void> {
    const { client, sdk } = await (await awsFor(this.ctx)).logs();
    let nextToken: string | undefined;
    do {
      const page = await this.call(() =>
        client.send(new sdk.DescribeLogStreamsCommand({ logGroupName: LOG_GROUP, logStreamNamePrefix: `${this.jobName}/`, nextToken })),
      );
      for (const stream of page.logStreams ?? [])
        if (stream.logStreamName && !this.streams.has(stream.logStreamName)) this.streams.set(stream.logStreamName, undefined);
      nextToken = page.nextToken;
    } while (nextToken);
  }

  /** The lines written since the last call, stream by stream; each prefixed with its instance when there are several. */
  async read(): Promise<string[]> {
    const { client, sdk } = await (await awsFor(this.ctx)).logs();
    try {
      await this.discover();
    } catch (err) {
      if (errorName(err) === "ResourceNotFoundException") return []; // no log group yet: the job has not started writing
      throw awsError(err, `reading the log of ${this.jobName}`);
    }
    const lines: string[] = [];
    const several = this.instances > 1 || this.streams.size > 1;
    for (const [stream, token] of [...this.streams].sort(([a], [b]) => a.localeCompare(b))) {
      const host = stream.split("/")[1]?.replace(/-\d+$/, "") ?? stream;
      let next = token;
      // CloudWatch may answer empty pages before the end: the end is where the forward token comes back as the one passed
      // (GetLogEvents: "as long as nextForwardToken is not equal to the token you passed, there might be more").
      for (let pages = 0; pages < MAX_PAGES_PER_READ; pages++) {
        let page;
        try {
          page = await this.call(() =>
            client.send(
              new sdk.GetLogEventsCommand({ logGroupName: LOG_GROUP, logStreamName: stream, startFromHead: true, ...(next ? { nextToken: next } : {}) }),
            ),
          );
        } catch (err) {
          throw awsError(err, `reading the log of ${this.jobName}`);
        }
        for (const event of page.events ?? []) {
          for (const line of (event.message ?? "").replace(/\n$/, "").split("\n")) lines.push(several ? `[${host}] ${line}` : line);
        }
        if (!page.nextForwardToken || page.nextForwardToken === next) break;
        next = page.nextForwardToken;
      }
      this.streams.set(stream, next);
    }
    return lines;
  }
}
