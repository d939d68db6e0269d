/**
 * S3 storage: list, stat, upload and a fast download. The download fetches
 * ranges in parallel straight into the target file (memory stays flat however
 * large the object), resumes from where an interrupted one stopped, and checks
 * the result against the object's ETag (the MD5 of a single-part upload, or the
 * MD5 of part MD5s of a multipart one). AWS settings come from the context's
 * environment as the AWS CLI reads them: credentials, AWS_PROFILE, region,
 * AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_S3.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createHash, type Hash } from "node:crypto";
import { Readable, Transform, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { Worker } from "node:worker_threads";
import type { Context } from "../context.js";
import { failure, UserError } from "../errors.js";
import { awsClientConfig, credentialError } from "../aws.js";
import { eachLimited } from "../exec.js";
import type { ObjectInfo, ProgressListener, Storage } from "./types.js";

type S3Module = typeof import("@aws-sdk/client-s3");
type S3Client = import("@aws-sdk/client-s3").S3Client;

const MiB = 1024 * 1024;
/** Range size when the ETag does not tell the upload's part size. */
const DEFAULT_PART = 32 * MiB;
/** Ranges in flight at once: enough streams to fill a link, not so many that they fight over the cores (measured with bench/fetch-s3). */
const PARALLEL = Math.min(16, Math.max(4, 2 * os.availableParallelism()));
/** Above this, uploads go in parts. */
const MULTIPART_THRESHOLD = 64 * MiB;

/** Bucket and key of an s3:// location. */
export function parseS3(location: string): { bucket: string; key: string } {
  const match = /^s3:\/\/([^/]+)\/?(.*)$/.exec(location);
  if (!match) throw new UserError(`${location} is not an s3:// location.`, "Write it as s3://BUCKET/KEY.");
  return { bucket: match[1]!, key: match[2]! };
}

/** Part sizes uploaders use (the AWS CLI and SDKs: 8 MiB, then powers of two), tried first when guessing. */
const COMMON_PARTS = [8, 16, 32, 64, 128, 256, 512, 1024, 5, 10, 15, 25, 50, 100].map((mib) => mib * MiB);

/** A likely part size for a multipart ETag ("md5-N") on an object of `size` bytes: a common one that gives N parts, else the smallest whole MiB that does. */
export function guessPartSize(size: number, parts: number): number | undefined {
  const fits = (partSize: number): boolean => Math.ceil(size / partSize) === parts;
  const common = COMMON_PARTS.find(fits);
  if (common) return common;
  for (let mib = Math.max(1, Math.ceil(size / parts / MiB)); mib <= 5 * 1024; mib++) if (fits(mib * MiB)) return mib * MiB;
  return undefined;
}

/** Turn an SDK error into the user's terms; credentials never appear in it. */
function explain(err: unknown, what: string): Error {
  const name = (err as { name?: string }).name ?? "";
  const message = (err as Error).message ?? String(err);
  const credentials = credentialError(err, what);
  if (credentials) return credentials;
  if (name === "AccessDenied" || name === "Forbidden") return failure(`Access denied while ${what}.`, "The identity in use needs s3:GetObject and s3:ListBucket on it.");
  if (name === "NoSuchBucket") return failure(`No such bucket while ${what}.`);
  if (name === "NoSuchKey" || name === "NotFound") return failure(`Nothing there while ${what}.`);
  if (name === "AbortError") return new UserError(`Stopped while ${what}; what was downloaded is kept, and fetching again resumes.`, undefined, 130);
  return err instanceof Error ? err : new Error(message);
}

/** An S3 client for this environment's AWS setup; a custom endpoint (moto, s3rver, MinIO) is addressed path-style. */
export async function s3Client(env: Context["env"]): Promise<{ client: S3Client; sdk: S3Module }> {
  const sdk: S3Module = await import("@aws-sdk/client-s3");
  const config = await awsClientConfig(env, "S3");
  return { client: new sdk.S3Client({ ...config, ...(config.endpoint ? { forcePathStyle: true } : {}) }), sdk };
}

/** One range of the download, and the part it is of the upload when the ETag says so. */
interface Range {
  index: number;
  start: number;
  end: number; // inclusive
}

/** Wait until `stream` takes more, or is gone. */
function drained(stream: Writable): Promise<void> {
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

/** What an interrupted download leaves beside its partial file, to resume. */
interface ResumeState {
  etag: string;
  size: number;
  partSize: number;
  done: number[];
  md5s: Record<number, string>;
}

/** Tuning of transfers: ranges in flight at once, and the range size when the ETag does not imply one. */
export interface TransferOptions {
  parallel?: number;
  partSize?: number;
}

/** An S3 Storage for the context's AWS settings. */
export async function s3Storage(ctx: Context, tuning: TransferOptions = {}): Promise<Storage> {
  const parallel = tuning.parallel ?? PARALLEL;
  const defaultPart = tuning.partSize ?? DEFAULT_PART;
  const { client, sdk } = await s3Client(ctx.env);

  const stat = async (location: string): Promise<ObjectInfo | undefined> => {
    const { bucket, key } = parseS3(location);
    try {
      const head = await client.send(new sdk.HeadObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: ctx.signal });
      return { location, size: head.ContentLength ?? 0, modified: head.LastModified ?? new Date(0), ...(head.ETag ? { etag: head.ETag.replace(/"/g, "") } : {}) };
    } catch (err) {
      const name = (err as { name?: string }).name;
      if (name === "NotFound" || name === "NoSuchKey") return undefined;
      throw explain(err, `looking at ${location}`);
    }
  };

  /** Stream one range into the partial file at its offset, hashing it on the way; memory stays at a few buffers. */
  const getRange = async (bucket: string, key: string, range: Range, partial: string, hash: Hash | undefined, onBytes: (n: number) => void): Promise<void> => {
    const response = await client.send(new sdk.GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=${range.start}-${range.end}` }), { abortSignal: ctx.signal });
    let received = 0;
    const count = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        if (ctx.signal?.aborted) return done(Object.assign(new Error("aborted"), { name: "AbortError" }));
        hash?.update(chunk);
        received += chunk.length;
        onBytes(chunk.length);
        done(null, chunk);
      },
    });
    await pipeline(response.Body as Readable, count, fs.createWriteStream(partial, { flags: "r+", start: range.start, highWaterMark: MiB }));
    if (received !== range.end - range.start + 1) throw failure(`The download of s3://${bucket}/${key} was cut short at byte ${range.start + received}.`, "Fetch again; it resumes.");
  };

  return {
    stat,

    async list(prefix) {
      const { bucket, key } = parseS3(prefix);
      const found: ObjectInfo[] = [];
      let token: string | undefined;
      try {
        do {
          const page = await client.send(new sdk.ListObjectsV2Command({ Bucket: bucket, Prefix: key ? `${key.replace(/\/+$/, "")}/` : undefined, ContinuationToken: token }), { abortSignal: ctx.signal });
          for (const object of page.Contents ?? []) found.push({ location: `s3://${bucket}/${object.Key}`, size: object.Size ?? 0, modified: object.LastModified ?? new Date(0) });
          token = page.IsTruncated ? page.NextContinuationToken : undefined;
        } while (token);
      } catch (err) {
        throw explain(err, `listing ${prefix}`);
      }
      return found;
    },

    async upload(file, location) {
      const { bucket, key } = parseS3(location);
      const size = fs.statSync(file).size;
      try {
        if (size <= MULTIPART_THRESHOLD) {
          await client.send(new sdk.PutObjectCommand({ Bucket: bucket, Key: key, Body: fs.createReadStream(file), ContentLength: size }), { abortSignal: ctx.signal });
          return;
        }
        const { UploadId } = await client.send(new sdk.CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
        try {
          const starts = Array.from({ length: Math.ceil(size / defaultPart) }, (_, i) => i * defaultPart);
          const parts: Array<{ ETag?: string; PartNumber: number }> = [];
          await eachLimited(starts, parallel, async (start, i) => {
            const body = fs.createReadStream(file, { start, end: Math.min(size, start + defaultPart) - 1 });
            const part = await client.send(new sdk.UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: i + 1, Body: body, ContentLength: Math.min(defaultPart, size - start) }), { abortSignal: ctx.signal });
            parts[i] = { ETag: part.ETag, PartNumber: i + 1 };
          });
          await client.send(new sdk.CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: parts } }));
        } catch (err) {
          await client.send(new sdk.AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId })).catch(() => undefined);
          throw err;
        }
      } catch (err) {
        throw explain(err, `uploading to ${location}`);
      }
    },

    async download(location, file, onProgress?: ProgressListener, inOrder?: Writable) {
      const { bucket, key } = parseS3(location);
      const head = await stat(location);
      if (!head) throw failure(`${location} does not exist.`);
      const etag = head.etag ?? "";
      const multipart = /^([0-9a-f]{32})-(\d+)$/.exec(etag);
      // Ranges that match the upload's parts let each range's MD5 check that part; S3 tells part 1's size.
      let partSize = defaultPart;
      let partSizeKnown = false;
      if (multipart) {
        try {
          const first = await client.send(new sdk.HeadObjectCommand({ Bucket: bucket, Key: key, PartNumber: 1 }), { abortSignal: ctx.signal });
          if (first.ContentLength && Math.ceil(head.size / first.ContentLength) === Number(multipart[2])) {
            partSize = first.ContentLength;
            partSizeKnown = true;
          }
        } catch {
          // a store without part lookups: guess below
        }
        if (!partSizeKnown) partSize = guessPartSize(head.size, Number(multipart[2])) ?? defaultPart;
      }
      if (head.size === 0) {
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, "");
        return;
      }
      const partial = `${file}.partial`;
      const stateFile = `${partial}.json`;

      let state: ResumeState = { etag, size: head.size, partSize, done: [], md5s: {} };
      try {
        const saved = JSON.parse(fs.readFileSync(stateFile, "utf8")) as ResumeState;
        // The same object resumes with the ranges it was started with, whatever the range size is now;
        // for a multipart ETag the size is the parts' own, so it cannot differ there.
        if (saved.etag === etag && saved.size === head.size && (!multipart || saved.partSize === partSize) && fs.existsSync(partial)) {
          state = saved;
          partSize = saved.partSize;
        }
      } catch {
        // nothing to resume
      }
      if (!state.done.length) {
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(partial, "");
        fs.truncateSync(partial, head.size);
      }
      const ranges: Range[] = [];
      for (let i = 0, start = 0; start < head.size; i++, start += partSize) ranges.push({ index: i, start, end: Math.min(head.size, start + partSize) - 1 });
      const done = new Set(state.done);
      if (multipart && done.size) {
        // What is on disk decides, not what was true when the range came down: rehash the resumed ranges.
        for (const range of ranges.filter((r) => done.has(r.index))) {
          const hash = createHash("md5");
          for await (const chunk of fs.createReadStream(partial, { start: range.start, end: range.end })) hash.update(chunk as Buffer);
          state.md5s[range.index] = hash.digest("hex");
        }
      }
      let moved = ranges.filter((r) => done.has(r.index)).reduce((sum, r) => sum + (r.end - r.start + 1), 0);
      onProgress?.(moved, head.size);
      const saveState = (): void => fs.writeFileSync(stateFile, JSON.stringify({ ...state, done: [...done] }));

      // A single-part ETag is the MD5 of the whole object: a worker on another core hashes the finished prefix of the file while later ranges still download.
      const whole = !multipart && /^[0-9a-f]{32}$/.test(etag) ? new Worker(new URL("./md5-worker.js", import.meta.url)) : undefined;
      let hashed = 0;
      const advanceHash = (): void => {
        while (whole && hashed < ranges.length && done.has(ranges[hashed]!.index)) {
          const range = ranges[hashed++]!;
          whole.postMessage({ file: partial, start: range.start, end: range.end });
        }
      };
      advanceHash();
      // The finished prefix, in order, to whoever reads along (extraction while later ranges still come down).
      let streamed = 0;
      let streaming: Promise<void> = Promise.resolve();
      const advanceStream = (): void => {
        if (!inOrder) return;
        streaming = streaming.then(async () => {
          while (streamed < ranges.length && done.has(ranges[streamed]!.index) && !inOrder.destroyed) {
            const range = ranges[streamed++]!;
            for await (const chunk of fs.createReadStream(partial, { start: range.start, end: range.end, highWaterMark: MiB })) {
              if (inOrder.destroyed) return;
              if (!inOrder.write(chunk)) await drained(inOrder);
            }
          }
        });
      };
      advanceStream();
      const fail = (err: Error): Error => {
        inOrder?.destroy(err);
        return err;
      };
      try {
        await eachLimited(ranges.filter((r) => !done.has(r.index)), parallel, async (range) => {
          if (ctx.signal?.aborted) throw Object.assign(new Error("aborted"), { name: "AbortError" });
          const hash = multipart ? createHash("md5") : undefined;
          await getRange(bucket, key, range, partial, hash, (n) => onProgress?.((moved += n), head.size));
          if (hash) state.md5s[range.index] = hash.digest("hex");
          done.add(range.index);
          saveState();
          advanceHash();
          advanceStream();
        });
      } catch (err) {
        await whole?.terminate();
        // However the abort surfaced (ours, the SDK's, or the socket's "aborted"), it is a stop, and the parts kept resume.
        throw fail(explain(ctx.signal?.aborted ? { name: "AbortError" } : err, `downloading ${location}`));
      }

      // The ETag is the check a plain GET would give: the MD5 of the bytes, or of the parts' MD5s.
      let actual: string | undefined;
      if (multipart && ranges.length === Number(multipart[2])) {
        const digests = ranges.map((r) => Buffer.from(state.md5s[r.index] ?? "", "hex"));
        actual = `${createHash("md5").update(Buffer.concat(digests)).digest("hex")}-${ranges.length}`;
        // With a guessed part size a mismatch proves nothing; say so rather than call good bytes damaged.
        if (actual !== etag && !partSizeKnown) {
          ctx.reporter.warn(`Could not check ${location} against its ETag (its part size is not known); its size matches.`);
          actual = undefined;
        }
      } else if (whole) {
        actual = await new Promise<string>((resolve, reject) => {
          whole.once("message", resolve);
          whole.once("error", reject);
          whole.postMessage({ digest: true });
        });
        await whole.terminate();
      }
      await streaming;
      if (fs.statSync(partial).size !== head.size || (actual !== undefined && actual !== etag)) {
        fs.rmSync(partial, { force: true });
        fs.rmSync(stateFile, { force: true });
        throw fail(failure(`${location} arrived damaged (its checksum does not match the object's ETag); the download was thrown away.`, "Fetch again."));
      }
      inOrder?.end();
      fs.renameSync(partial, file);
      fs.rmSync(stateFile, { force: true });
    },
  };
}
