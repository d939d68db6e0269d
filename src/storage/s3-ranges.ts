/**
 * The ranges of a download and fetching one of them: ranges follow the
 * upload's parts when a per-part check needs them, and a range whose body is
 * cut off (a reset, an early close, a stall) is asked for again from the
 * first byte not yet written, so what was received is never fetched twice.
 */
import fs from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import path from "node:path";
import { failure, isErrnoError, UserError } from "../errors.js";
import { eachLimited } from "../exec.js";
import { formatBytes } from "../text.js";
import type { Writable } from "node:stream";
import { Worker } from "node:worker_threads";
import type { Digest, DigestAlgorithm } from "./s3-verify.js";

/** A worker on another core that digests `file` range by range, in order, as the ranges are whole on disk (digest-worker.ts). */
export interface PrefixDigest {
  /** Digest these bytes next (the next range in order). */
  add(file: string, start: number, end: number): void;
  /** The digests of everything added, in the order of the algorithms; the worker then ends. */
  digests(): Promise<Buffer[]>;
  /** End the worker without digests. */
  terminate(): Promise<unknown>;
}

const MiB = 1024 * 1024;

/** Wait until `stream` takes more, or is gone. */
export function drained(stream: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off("drain", done);
      stream.off("close", done);
      resolve();
    };
    stream.once("drain", done);
    stream.once("close", done);
  });
}

/** The finished prefix of a download in progress, handed on as it grows (`followPrefix`). */
export interface PrefixFollower {
  /** Hand on every range now whole on disk whose ranges before it are whole too; call after each range lands. */
  advance(): void;
  /** Settles when everything handed to the reader so far is written to it. */
  streamed(): Promise<void>;
}

/**
 * Follow the finished prefix of `partial` while later ranges still come down: each range, once it and every range
 * before it are in `done`, goes to the whole-object digest (a worker on another core), and, in order, to `inOrder`,
 * whoever reads along (extraction, which places nothing before the download has passed its checks).
 */
export function followPrefix(
  ranges: readonly Range[],
  done: ReadonlySet<number>,
  partial: string,
  digest: PrefixDigest | undefined,
  inOrder: Writable | undefined,
): PrefixFollower {
  let digested = 0;
  let streamedTo = 0;
  let streaming: Promise<void> = Promise.resolve();
  const follower: PrefixFollower = {
    advance: () => {
      while (digest && digested < ranges.length && done.has(ranges[digested]!.index)) {
        const range = ranges[digested++]!;
        digest.add(partial, range.start, range.end);
      }
      if (!inOrder) return;
      streaming = streaming.then(async () => {
        while (streamedTo < ranges.length && done.has(ranges[streamedTo]!.index) && !inOrder.destroyed) {
          const range = ranges[streamedTo++]!;
          for await (const chunk of fs.createReadStream(partial, { start: range.start, end: range.end, highWaterMark: MiB })) {
            if (inOrder.destroyed) return;
            if (!inOrder.write(chunk)) await drained(inOrder);
          }
        }
      });
    },
    streamed: () => streaming,
  };
  follower.advance();
  return follower;
}

/** Start a `PrefixDigest` for `algorithms`. */
export function prefixDigest(algorithms: readonly DigestAlgorithm[]): PrefixDigest {
  const worker = new Worker(new URL("./digest-worker.js", import.meta.url), { workerData: { algorithms } });
  return {
    add: (file, start, end) => worker.postMessage({ file, start, end }),
    digests: () =>
      new Promise<Buffer[]>((resolve, reject) => {
        worker.once("message", (answer: Uint8Array[] | { error: string }) =>
          "error" in answer ? reject(new Error(`digesting the download failed: ${answer.error}`)) : resolve(answer.map((digest) => Buffer.from(digest))),
        );
        worker.once("error", reject);
        worker.postMessage({ digest: true });
      }).finally(() => worker.terminate()),
    terminate: () => worker.terminate(),
  };
}

/** Bytes free to this user on the disk that holds `folder` (statfs). */
export function freeSpace(folder: string): number {
  const { bavail, bsize } = fs.statfsSync(folder);
  return bavail * bsize;
}

const FULL_DISK_HINT = "Free some space there, or fetch --to a folder on another disk.";

/**
 * Refuse a download of `needed` more bytes into `file` before it starts, when
 * the disk does not have them free: the size is known from the object's
 * metadata, so a full disk is found before anything is written.
 */
export function checkSpace(file: string, needed: number, what: string): void {
  const folder = path.dirname(file);
  const free = freeSpace(folder);
  if (needed > free)
    throw failure(
      `Not enough space to download ${what}: it needs ${formatBytes(needed)}, and the disk of ${folder} has ${formatBytes(free)} free.`,
      FULL_DISK_HINT,
    );
}

/**
 * A disk that filled up during the download (another program took the space
 * after `checkSpace`), as the user's situation it is: the partial file is
 * removed, as the AWS CLI removes its temporary file when a download fails
 * (s3transfer's DownloadFilenameOutputManager registers that cleanup), since
 * resuming cannot help until space is freed. Undefined for any other error.
 */
export function diskFull(err: unknown, partial: string, size: number, what: string): UserError | undefined {
  if (!isErrnoError(err, "ENOSPC") && !isErrnoError(err, "EDQUOT")) return undefined;
  fs.rmSync(partial, { force: true });
  fs.rmSync(`${partial}.json`, { force: true });
  const folder = path.dirname(partial);
  return failure(
    `The disk of ${folder} filled up while downloading ${what}: it needs ${formatBytes(size)}, and has ${formatBytes(freeSpace(folder))} free now; the partial download was removed.`,
    FULL_DISK_HINT,
  );
}

/** One range of the download: its place in order, and its first and last byte (inclusive). */
export interface Range {
  index: number;
  start: number;
  end: number;
}

/** The ranges of an object of `size` bytes: one per part when `partSizes` is given, else `rangeSize` each. */
export function planRanges(size: number, partSizes: readonly number[] | undefined, rangeSize: number): Range[] {
  const sizes = partSizes ?? Array.from({ length: Math.ceil(size / rangeSize) }, (_, i) => Math.min(rangeSize, size - i * rangeSize));
  const ranges: Range[] = [];
  let start = 0;
  for (const [index, length] of sizes.entries()) {
    ranges.push({ index, start, end: start + length - 1 });
    start += length;
  }
  return ranges;
}

/** A range's bytes as the store sends them, and the object's ETag as that answer gives it. */
export interface RangeBody {
  body: AsyncIterable<Uint8Array>;
  etag?: string;
}

/** Where a range's bytes come from: a ranged GET of bytes `start`..`end` (inclusive). */
export type RangeSource = (start: number, end: number) => Promise<RangeBody>;

/** An error the network made (a reset, a closed or stalled connection, a server error after the SDK's own retries): worth asking again. */
export function isTransient(err: unknown): boolean {
  const e = err as { name?: string; code?: string; message?: string; $metadata?: { httpStatusCode?: number }; $retryable?: unknown };
  if (e?.name === "AbortError") return false;
  const status = e?.$metadata?.httpStatusCode;
  if (status !== undefined) return status >= 500 || status === 429 || e.name === "RequestTimeout" || e.$retryable !== undefined;
  if (e instanceof CutShort) return true;
  const codes = [
    "ECONNRESET",
    "ECONNREFUSED",
    "EPIPE",
    "ETIMEDOUT",
    "ECONNABORTED",
    "EAI_AGAIN",
    "ENOTFOUND",
    "ENETUNREACH",
    "EHOSTUNREACH",
    "ERR_STREAM_PREMATURE_CLOSE",
    "UND_ERR_SOCKET",
  ];
  if (e?.code && codes.includes(e.code)) return true;
  return ["TimeoutError", "RequestTimeout"].includes(e?.name ?? "") || /^(aborted|socket hang up|premature close)$/i.test(e?.message ?? "");
}

/** A body that ended before its range did. */
class CutShort extends Error {
  override readonly name = "CutShort";
}

/** How `fetchRange` behaves. */
export interface FetchRangeOptions {
  /** Fed every byte of the range, once, in order. */
  digest?: Digest;
  /** Hears each chunk's size as it lands on disk. */
  onBytes?: (bytes: number) => void;
  /** The ETag the object had when the download started; a range from another version of it is refused. */
  etag?: string;
  /** Stops the range; its bytes written so far stay. */
  signal?: AbortSignal;
  /** Attempts in a row that may bring no new byte before giving up (default 5). */
  attempts?: number;
  /** First wait between attempts, doubled each time (default 200 ms). */
  backoffMs?: number;
  /** The object, for messages. */
  what: string;
}

/**
 * Bytes gathered before one write to the file: few writes, flat memory. They
 * are written as they came (one writev), not copied into one buffer first:
 * the copy was a second gigabyte of buffers per gigabyte downloaded, and
 * buffers are what makes V8 collect garbage here (measured: 147 full
 * collections for a 1 GiB fetch with the copy, 119 without).
 */
const WRITE_BATCH = 1024 * 1024;

/**
 * Fetch `range` into `file` (open for writing) at its offset. A body cut off
 * is resumed from the first byte not yet written; only an attempt that brings
 * nothing new counts against `attempts`. Bytes reach the digest only once
 * they are on disk, so a resumed range is digested exactly once.
 */
export async function fetchRange(source: RangeSource, range: Range, file: fs.promises.FileHandle, options: FetchRangeOptions): Promise<void> {
  const attempts = options.attempts ?? 5;
  let offset = range.start;
  let fruitless = 0;
  let lastError: unknown;
  for (;;) {
    if (options.signal?.aborted) throw Object.assign(new Error("aborted"), { name: "AbortError" });
    const before = offset;
    try {
      const { body, etag } = await source(offset, range.end);
      if (options.etag && etag && etag.replace(/"/g, "") !== options.etag) {
        throw failure(`${options.what} changed while it was downloading; the download was thrown away.`, "Fetch again.");
      }
      let batch: Buffer[] = [];
      let batched = 0;
      const flush = async (): Promise<void> => {
        if (!batched) return;
        const chunks = batch;
        const length = batched;
        batch = [];
        batched = 0;
        if (offset + length > range.end + 1) throw failure(`S3 sent more of ${options.what} than was asked for.`, "Fetch again.");
        await writeAll(file, chunks, length, offset);
        for (const chunk of chunks) options.digest?.update(chunk);
        offset += length;
        options.onBytes?.(length);
      };
      try {
        for await (const chunk of body) {
          if (options.signal?.aborted) throw Object.assign(new Error("aborted"), { name: "AbortError" });
          batch.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
          batched += chunk.byteLength;
          if (batched >= WRITE_BATCH) await flush();
        }
      } finally {
        // What arrived before a cut is good: keep it, so the next attempt starts after it.
        await flush();
      }
      if (offset === range.end + 1) return;
      throw new CutShort(`the body ended at byte ${offset} of ${range.start}-${range.end}`);
    } catch (err) {
      if (!isTransient(err) || options.signal?.aborted) throw err;
      lastError = err;
      fruitless = offset > before ? 0 : fruitless + 1;
      if (fruitless >= attempts) break;
      await sleep((options.backoffMs ?? 200) * 2 ** Math.max(0, fruitless - 1), undefined, options.signal ? { signal: options.signal } : undefined);
    }
  }
  const why = (lastError as { code?: string; message?: string })?.code ?? (lastError as Error)?.message ?? String(lastError);
  throw failure(
    `The connection to S3 kept failing while downloading ${options.what} (${why}, ${attempts} tries in a row with no progress).`,
    "Check the network and fetch again; what was downloaded is kept and the download resumes.",
  );
}

/** Write all of `chunks` (`length` bytes together) at `position`, in one writev when the system takes it all (a write may take only part). */
async function writeAll(file: fs.promises.FileHandle, chunks: Buffer[], length: number, position: number): Promise<void> {
  let written = 0;
  let rest = chunks.slice();
  while (written < length) {
    const { bytesWritten } = await file.writev(rest, position + written);
    written += bytesWritten;
    // Drop what was written: whole chunks, then the written head of the next.
    let skip = bytesWritten;
    while (rest.length && skip >= rest[0]!.length) skip -= rest.shift()!.length;
    if (skip) rest = [rest[0]!.subarray(skip), ...rest.slice(1)];
  }
}

/** How `fetchRanges` runs: `fetchRange`'s options for every range, and what is done around each. */
export interface FetchRangesOptions extends Omit<FetchRangeOptions, "digest" | "signal"> {
  /** Ranges in flight at once. */
  parallel: number;
  /** Aborted by the first range that fails, to stop the others; `signal` is it joined with the caller's own. */
  stop: AbortController;
  signal: AbortSignal;
  /** A fresh digest for each range, when the object's checksum is one per part. */
  digestFor?: () => Promise<Digest>;
  /** Told of each range once it is whole on disk, with its digest when there is one. */
  onRange: (range: Range, digest?: Buffer) => void;
}

/**
 * Fetch `ranges` into the existing file `file` at their offsets, `parallel`
 * at once, each retried and resumed on its own (`fetchRange`). The first
 * failure stops the others; it is thrown once none is writing any more, and
 * the file is closed only then. S3 and Cloud Storage download with it.
 */
export async function fetchRanges(source: RangeSource, ranges: readonly Range[], file: string, options: FetchRangesOptions): Promise<void> {
  const { parallel, stop, digestFor, onRange, ...each } = options;
  let failed: { err: unknown } | undefined;
  const handle = await fs.promises.open(file, "r+");
  try {
    await eachLimited(ranges, parallel, async (range) => {
      if (failed) return;
      try {
        const digest = digestFor ? await digestFor() : undefined;
        await fetchRange(source, range, handle, { ...each, ...(digest ? { digest } : {}) });
        onRange(range, digest ? await digest.digest() : undefined);
      } catch (err) {
        failed ??= { err };
        stop.abort();
      }
    });
  } finally {
    await handle.close();
  }
  if (failed) throw failed.err;
}
