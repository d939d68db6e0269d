/**
 * S3 storage: list, stat, upload and a fast download. The download is four
 * named steps: describe the object and decide its check (s3-verify.ts), plan
 * its ranges and fetch each in parallel straight into the target file with
 * retry and resume (s3-ranges.ts), verify, and assemble. Memory stays flat
 * however large the object; an interrupted download resumes where it stopped.
 * A bucket in another region is followed there, as the AWS CLI does. AWS
 * settings come from the context's environment as the AWS CLI reads them:
 * credentials, AWS_PROFILE, region, AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_S3.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Transform, type Readable, type Writable } from "node:stream";
import type { Context } from "../context.js";
import { failure, UserError } from "../errors.js";
import { awsClientConfig, credentialError } from "../aws.js";
import { eachLimited } from "../exec.js";
import { checkSpace, diskFull, fetchRanges, isTransient, followPrefix, planRanges, prefixDigest, type Range, type RangeSource } from "./s3-ranges.js";
import {
  CHECKSUM_ALGORITHMS,
  checkArchive,
  checkDigests,
  chooseVerification,
  guessPartSize,
  makeDigest,
  type ChecksumAlgorithm,
  type StoredObject,
  type Verification,
} from "./s3-verify.js";
import type { ObjectInfo, ProgressListener, Storage } from "./types.js";
import { loadSdk } from "../sdk.js";

export { guessPartSize } from "./s3-verify.js";

type S3Module = typeof import("@aws-sdk/client-s3");
type S3Client = import("@aws-sdk/client-s3").S3Client;

const MiB = 1024 * 1024;
/** Range size when no per-part check fixes the ranges. */
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

/** An SDK error's parts that matter here. */
interface SdkError {
  name?: string;
  message?: string;
  code?: string;
  Region?: string;
  $metadata?: { httpStatusCode?: number };
  $response?: { headers?: Record<string, string | undefined> };
}

/** Turn an SDK or network error into the user's terms (a UserError, exit 1); credentials never appear in it. Anything else stays a bug. */
function explain(err: unknown, what: string): Error {
  if (err instanceof UserError) return err;
  const e = err as SdkError;
  const name = e?.name ?? "";
  const credentials = credentialError(err, what);
  if (credentials) return credentials;
  if (name === "AbortError") return new UserError(`Stopped while ${what}; what was downloaded is kept, and fetching again resumes.`, undefined, 130);
  if (name === "AccessDenied" || name === "Forbidden")
    return failure(`Access denied while ${what}.`, "The identity in use needs s3:GetObject and s3:ListBucket on it.");
  if (name === "NoSuchBucket") return failure(`No such bucket while ${what}.`);
  if (name === "NoSuchKey" || name === "NotFound") return failure(`Nothing there while ${what}.`);
  const status = e?.$metadata?.httpStatusCode;
  if (status !== undefined)
    return failure(
      `S3 answered ${status}${name ? ` ${name}` : ""} while ${what}${e.message && e.message !== name && e.message !== "UnknownError" ? `: ${e.message}` : ""}.`,
      status >= 500 ? "S3 had a problem; try again in a minute." : undefined,
    );
  if (isTransient(err))
    return failure(
      `The connection to S3 failed while ${what} (${e.code ?? e.message ?? name}).`,
      "Check the network (and AWS_ENDPOINT_URL, if set) and try again.",
    );
  return err instanceof Error ? err : new Error(String(err));
}

/** The region a bucket lives in, when an S3 error says the request went to the wrong one (botocore's S3RegionRedirectorv2 reads the same signs). */
export function redirectRegion(err: unknown): string | undefined {
  const e = err as SdkError;
  const status = e?.$metadata?.httpStatusCode;
  const header = e?.$response?.headers?.["x-amz-bucket-region"];
  if (header && (status === 301 || status === 307 || status === 400)) return header;
  if (e?.name === "AuthorizationHeaderMalformed" && e.Region) return e.Region;
  if (e?.name === "PermanentRedirect" && e.Region) return e.Region;
  return undefined;
}

/**
 * An S3 client for this environment's AWS setup (in `region` when given); a
 * custom endpoint (moto, s3rver, MinIO) is addressed path-style; a bucket in
 * another region is followed there unless `followRedirects` is false (for a
 * caller that remembers bucket regions itself).
 */
export async function s3Client(
  env: Context["env"],
  options: { region?: string; followRedirects?: boolean } = {},
): Promise<{ client: S3Client; sdk: S3Module }> {
  const sdk = loadSdk<S3Module>("@aws-sdk/client-s3");
  const config = await awsClientConfig(env, "S3");
  return {
    client: new sdk.S3Client({
      ...config,
      ...(options.region ? { region: options.region } : {}),
      ...(config.endpoint ? { forcePathStyle: true } : {}),
      followRegionRedirects: options.followRedirects ?? true,
      // Downloads are checked against S3's own integrity data by s3-verify.ts, once: the SDK need not hash the bytes again.
      responseChecksumValidation: "WHEN_REQUIRED",
    }),
    sdk,
  };
}

/** What an interrupted download leaves beside its partial file, to resume: which object and ranges, and which ranges are done. */
interface ResumeState {
  identity: string;
  ranges: Array<[number, number]>;
  done: number[];
}

/**
 * Counts the bytes the SDK reads from an upload's bodies (the whole file, or each part by its number) for `onProgress`.
 * A body made anew for a retry counts from 0 again; what is reported never goes back. Without a listener, bodies pass as they are.
 */
function sentCounter(size: number, onProgress?: ProgressListener): (index: number, body: Readable) => Readable {
  if (!onProgress) return (_index, body) => body;
  const sent = new Map<number, number>();
  let shown = 0;
  return (index, body) => {
    sent.set(index, 0);
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        sent.set(index, (sent.get(index) ?? 0) + chunk.length);
        let total = 0;
        for (const bytes of sent.values()) total += bytes;
        // The last bytes are reported once S3 has taken them all (after the call), so done === total means done.
        if (total > shown && total < size) onProgress((shown = total), size);
        done(null, chunk);
      },
    });
    body.once("error", (err) => counter.destroy(err));
    return body.pipe(counter);
  };
}

/** Tuning of transfers: ranges in flight at once, the range size when no per-part check fixes it (and an upload's part size), attempts without progress per range, and the size above which an upload goes in parts. */
export interface TransferOptions {
  multipartThreshold?: number;
  parallel?: number;
  partSize?: number;
  attempts?: number;
}

/** The stored checksum in a HeadObject or GetObjectAttributes answer, if any. */
function storedChecksum(answer: Partial<Record<`Checksum${ChecksumAlgorithm}`, string>> & { ChecksumType?: string }): StoredObject["checksum"] {
  for (const algorithm of CHECKSUM_ALGORITHMS) {
    const value = answer[`Checksum${algorithm}`];
    if (value)
      return { algorithm, value, ...(answer.ChecksumType === "FULL_OBJECT" || answer.ChecksumType === "COMPOSITE" ? { type: answer.ChecksumType } : {}) };
  }
  return undefined;
}

/** An S3 Storage for the context's AWS settings. */
export async function s3Storage(ctx: Context, tuning: TransferOptions = {}): Promise<Storage> {
  const parallel = tuning.parallel ?? PARALLEL;
  const defaultPart = tuning.partSize ?? DEFAULT_PART;
  const { client: home, sdk } = await s3Client(ctx.env, { followRedirects: false });
  const homeRegion = await home.config.region();

  // One client per region; a bucket found to live elsewhere is asked there from then on (the SDK's own redirect would cost a wrong-region request on every call).
  const clients = new Map<string, Promise<S3Client>>([[homeRegion, Promise.resolve(home)]]);
  const bucketRegions = new Map<string, string>();
  const clientIn = (region: string): Promise<S3Client> => {
    let client = clients.get(region);
    if (!client) {
      client = s3Client(ctx.env, { region, followRedirects: false }).then((made) => made.client);
      clients.set(region, client);
    }
    return client;
  };

  /** The bucket's region as HeadBucket tells it (its x-amz-bucket-region header), when it differs from where we asked. */
  const probeRegion = async (bucket: string, asked: string): Promise<string | undefined> => {
    try {
      const answer = await (await clientIn(asked)).send(new sdk.HeadBucketCommand({ Bucket: bucket }), { abortSignal: ctx.signal });
      return answer.BucketRegion && answer.BucketRegion !== asked ? answer.BucketRegion : undefined;
    } catch (err) {
      const region = redirectRegion(err);
      return region && region !== asked ? region : undefined;
    }
  };

  const abortable = { abortSignal: ctx.signal };
  /** Make the call to the client of the bucket's region, following a region redirect once. */
  const send = async <T>(bucket: string, call: (client: S3Client) => Promise<T>): Promise<T> => {
    for (let redirected = false; ; redirected = true) {
      const region = bucketRegions.get(bucket) ?? homeRegion;
      try {
        return await call(await clientIn(region));
      } catch (err) {
        // A HEAD signed for the wrong region may come back a bare 400 (no body to name the region): HeadBucket tells it, as botocore asks.
        const bareHead = (err as SdkError).$metadata?.httpStatusCode === 400 && !(err as SdkError).$response?.headers?.["x-amz-bucket-region"];
        const moved = redirectRegion(err) ?? (bareHead && !redirected ? await probeRegion(bucket, region) : undefined);
        if (!redirected && moved && moved !== region) {
          bucketRegions.set(bucket, moved);
          continue;
        }
        throw err;
      }
    }
  };

  const stat = async (location: string): Promise<ObjectInfo | undefined> => {
    const { bucket, key } = parseS3(location);
    try {
      const head = await send(bucket, (client) => client.send(new sdk.HeadObjectCommand({ Bucket: bucket, Key: key }), abortable));
      return {
        location,
        size: head.ContentLength ?? 0,
        modified: head.LastModified ?? new Date(0),
        ...(head.ETag ? { etag: head.ETag.replace(/"/g, "") } : {}),
      };
    } catch (err) {
      const name = (err as SdkError).name;
      if (name === "NotFound" || name === "NoSuchKey") return undefined;
      throw explain(err, `looking at ${location}`);
    }
  };

  /** Step 1: what S3 says about the object, for choosing its check (undefined when there is no such object). */
  const describe = async (bucket: string, key: string, location: string): Promise<StoredObject | undefined> => {
    let head: import("@aws-sdk/client-s3").HeadObjectOutput;
    try {
      head = await send(bucket, (client) => client.send(new sdk.HeadObjectCommand({ Bucket: bucket, Key: key, ChecksumMode: "ENABLED" }), abortable));
    } catch (err) {
      const e = err as SdkError;
      if (e.name === "NotFound" || e.name === "NoSuchKey") return undefined;
      // S3 answers a HEAD of an SSE-C object without its key with a bare 400 Bad Request (S3 User Guide, "Using server-side encryption with customer-provided keys").
      if (e.$metadata?.httpStatusCode === 400) return { size: 0, etag: "", customerKey: true };
      throw explain(err, `looking at ${location}`);
    }
    const etag = (head.ETag ?? "").replace(/"/g, "");
    const checksum = storedChecksum(head);
    const object: StoredObject = {
      size: head.ContentLength ?? 0,
      etag,
      ...(head.ServerSideEncryption ? { encryption: head.ServerSideEncryption } : {}),
      ...(head.SSECustomerAlgorithm ? { customerKey: true } : {}),
      ...(checksum ? { checksum } : {}),
    };
    const parts = Number(/-(\d+)$/.exec(etag)?.[1] ?? /-(\d+)$/.exec(checksum?.value ?? "")?.[1] ?? 0);
    if (parts > 1) {
      object.partsCount = parts;
      // The parts' sizes and checksums, and the checksum's type, where the store gives them.
      try {
        const listed: NonNullable<StoredObject["parts"]> = [];
        let marker: string | undefined;
        for (let page = 0; page < 20; page++) {
          const answer = await send(bucket, (client) =>
            client.send(
              new sdk.GetObjectAttributesCommand({
                Bucket: bucket,
                Key: key,
                ObjectAttributes: ["Checksum", "ObjectParts", "ObjectSize"],
                MaxParts: 1000,
                ...(marker ? { PartNumberMarker: marker } : {}),
              }),
              abortable,
            ),
          );
          if (page === 0 && answer.Checksum && object.checksum) object.checksum = storedChecksum(answer.Checksum) ?? object.checksum;
          for (const part of answer.ObjectParts?.Parts ?? []) {
            const partSum = storedChecksum(part);
            listed.push({ size: part.Size ?? 0, ...(partSum ? { checksum: partSum.value } : {}) });
          }
          if (!answer.ObjectParts?.IsTruncated || !answer.ObjectParts.NextPartNumberMarker) break;
          marker = String(answer.ObjectParts.NextPartNumberMarker);
        }
        if (listed.length === parts) object.parts = listed;
      } catch {
        // a store without GetObjectAttributes: the first part's size below
      }
      if (!object.parts) {
        try {
          const first = await send(bucket, (client) => client.send(new sdk.HeadObjectCommand({ Bucket: bucket, Key: key, PartNumber: 1 }), abortable));
          if (first.ContentLength) object.firstPartSize = first.ContentLength;
        } catch {
          // a store without part lookups: guessed below
        }
        if (!object.firstPartSize) {
          const guess = guessPartSize(object.size, parts);
          if (guess) Object.assign(object, { firstPartSize: guess, partSizeGuessed: true });
        }
      }
    }
    return object;
  };

  return {
    stat,

    async list(prefix) {
      const { bucket, key } = parseS3(prefix);
      const found: ObjectInfo[] = [];
      let token: string | undefined;
      try {
        do {
          const page = await send(bucket, (client) =>
            client.send(
              new sdk.ListObjectsV2Command({ Bucket: bucket, Prefix: key ? `${key.replace(/\/+$/, "")}/` : undefined, ContinuationToken: token }),
              abortable,
            ),
          );
          for (const object of page.Contents ?? [])
            found.push({ location: `s3://${bucket}/${object.Key}`, size: object.Size ?? 0, modified: object.LastModified ?? new Date(0) });
          token = page.IsTruncated ? page.NextContinuationToken : undefined;
        } while (token);
      } catch (err) {
        throw explain(err, `listing ${prefix}`);
      }
      return found;
    },

    async upload(file, location, onProgress?: ProgressListener) {
      const { bucket, key } = parseS3(location);
      const size = fs.statSync(file).size;
      const counted = sentCounter(size, onProgress);
      try {
        if (size <= (tuning.multipartThreshold ?? MULTIPART_THRESHOLD)) {
          await send(bucket, (client) =>
            client.send(new sdk.PutObjectCommand({ Bucket: bucket, Key: key, Body: counted(0, fs.createReadStream(file)), ContentLength: size }), abortable),
          );
          onProgress?.(size, size);
          return;
        }
        const { UploadId } = await send(bucket, (client) => client.send(new sdk.CreateMultipartUploadCommand({ Bucket: bucket, Key: key }), abortable));
        try {
          const starts = Array.from({ length: Math.ceil(size / defaultPart) }, (_, i) => i * defaultPart);
          const parts: Array<{ ETag?: string; PartNumber: number }> = [];
          await eachLimited(starts, parallel, async (start, i) => {
            const body = (): Readable => counted(i, fs.createReadStream(file, { start, end: Math.min(size, start + defaultPart) - 1 }));
            const part = await send(bucket, (client) =>
              client.send(
                new sdk.UploadPartCommand({
                  Bucket: bucket,
                  Key: key,
                  UploadId,
                  PartNumber: i + 1,
                  Body: body(),
                  ContentLength: Math.min(defaultPart, size - start),
                }),
                abortable,
              ),
            );
            parts[i] = { ETag: part.ETag, PartNumber: i + 1 };
          });
          await send(bucket, (client) =>
            client.send(new sdk.CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: parts } }), abortable),
          );
          onProgress?.(size, size);
        } catch (err) {
          await send(bucket, (client) => client.send(new sdk.AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId }), abortable)).catch(
            () => undefined,
          );
          throw err;
        }
      } catch (err) {
        throw explain(err, `uploading to ${location}`);
      }
    },

    async download(location, file, onProgress?: ProgressListener, inOrder?: Writable) {
      const { bucket, key } = parseS3(location);
      const fail = (err: Error): Error => {
        inOrder?.destroy(err);
        return err;
      };

      // Step 1: describe the object and decide how it is checked.
      const object = await describe(bucket, key, location);
      if (!object) throw fail(failure(`${location} does not exist.`));
      const verification = chooseVerification(object);
      if (verification.kind === "refuse") throw fail(failure(`Cannot fetch ${location}: ${verification.message}.`, verification.hint));
      if (object.size === 0) {
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, "");
        inOrder?.end();
        return;
      }

      // Step 2: plan the ranges (the upload's parts when each part's digest is needed), and pick up an interrupted download of the same object.
      let ranges = planRanges(object.size, verification.kind === "parts" ? verification.partSizes : undefined, defaultPart);
      const partial = `${file}.partial`;
      const stateFile = `${partial}.json`;
      const identity = JSON.stringify([object.etag, object.size, object.checksum?.value ?? "", verification.kind]);
      let layout = ranges.map((r): [number, number] => [r.start, r.end]);
      const done = new Set<number>();
      try {
        const saved = JSON.parse(fs.readFileSync(stateFile, "utf8")) as ResumeState;
        // The same object resumes with the ranges it was started with, whatever the range size is now; ranges that are the parts cannot differ.
        if (
          saved.identity === identity &&
          fs.existsSync(partial) &&
          (verification.kind !== "parts" || JSON.stringify(saved.ranges) === JSON.stringify(layout))
        ) {
          layout = saved.ranges;
          ranges = layout.map(([start, end], index) => ({ index, start, end }));
          for (const index of saved.done) done.add(index);
        }
      } catch {
        // nothing to resume
      }
      fs.mkdirSync(path.dirname(file), { recursive: true });
      // A full disk is found now, before anything is written: what is still to come must fit.
      const have = ranges.filter((r) => done.has(r.index)).reduce((sum, r) => sum + (r.end - r.start + 1), 0);
      try {
        checkSpace(file, object.size - have, location);
      } catch (err) {
        throw fail(err as Error);
      }
      if (!done.size) {
        fs.writeFileSync(partial, "");
        fs.truncateSync(partial, object.size);
      }
      const saveState = (): void => fs.writeFileSync(stateFile, JSON.stringify({ identity, ranges: layout, done: [...done] } satisfies ResumeState));

      // Per-part digests, when the check is per part; what is on disk decides for resumed ranges, not what was true when they came down.
      const partDigests: Buffer[] = [];
      const digestOf = async (range: Range): Promise<Buffer> => {
        const digest = await makeDigest((verification as Extract<Verification, { kind: "parts" }>).algorithm);
        for await (const chunk of fs.createReadStream(partial, { start: range.start, end: range.end, highWaterMark: MiB })) digest.update(chunk as Buffer);
        return digest.digest();
      };
      if (verification.kind === "parts") for (const range of ranges.filter((r) => done.has(r.index))) partDigests[range.index] = await digestOf(range);

      let moved = have;
      onProgress?.(moved, object.size);

      // A whole-object check: a worker on another core digests the finished prefix of the file while later ranges still
      // download; the same prefix goes, in order, to whoever reads along (extraction while later ranges still come down).
      const whole = verification.kind === "full" ? prefixDigest([verification.algorithm]) : undefined;
      const prefix = followPrefix(ranges, done, partial, whole, inOrder);

      // Step 3: fetch the missing ranges, each retried and resumed on its own.
      const source: RangeSource = async (start, end) => {
        const answer = await send(bucket, (client) =>
          client.send(new sdk.GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=${start}-${end}` }), abortable),
        );
        return { body: answer.Body as AsyncIterable<Uint8Array>, ...(answer.ETag ? { etag: answer.ETag } : {}) };
      };
      // The first failure stops the other ranges; the file is closed only once none is writing.
      const stop = new AbortController();
      const signal = ctx.signal ? AbortSignal.any([ctx.signal, stop.signal]) : stop.signal;
      try {
        await fetchRanges(
          source,
          ranges.filter((r) => !done.has(r.index)),
          partial,
          {
            parallel,
            stop,
            signal,
            ...(verification.kind === "parts" ? { digestFor: () => makeDigest(verification.algorithm) } : {}),
            onBytes: (n) => onProgress?.((moved += n), object.size),
            ...(object.etag ? { etag: object.etag } : {}),
            ...(tuning.attempts ? { attempts: tuning.attempts } : {}),
            what: location,
            onRange: (range, digest) => {
              if (digest) partDigests[range.index] = digest;
              done.add(range.index);
              saveState();
              prefix.advance();
            },
          },
        );
      } catch (err) {
        await whole?.terminate();
        const full = diskFull(err, partial, object.size, location);
        if (full) throw fail(full);
        // However the abort surfaced (ours, the SDK's, or the socket's "aborted"), it is a stop, and the ranges kept resume.
        throw fail(explain(ctx.signal?.aborted ? { name: "AbortError" } : err, `downloading ${location}`));
      }

      // Step 4: verify, then assemble (the partial file becomes the file; nothing unverified is kept).
      const wholeDigest = whole ? (await whole.digests())[0] : undefined;
      await prefix.streamed();
      const thrownAway = (message: string, hint: string): Error => {
        fs.rmSync(partial, { force: true });
        fs.rmSync(stateFile, { force: true });
        return fail(failure(message, hint));
      };
      if (fs.statSync(partial).size !== object.size) throw thrownAway(`${location} arrived with the wrong size; the download was thrown away.`, "Fetch again.");
      let archiveCheck = verification.kind === "archive" ? verification.why : undefined;
      if (verification.kind === "full" || verification.kind === "parts") {
        const result = await checkDigests(verification, { ...(wholeDigest ? { whole: wholeDigest } : {}), parts: partDigests });
        if (!result.ok && verification.kind === "parts" && verification.guessed) archiveCheck = "the part size behind its multipart checksum is not known";
        else if (!result.ok) {
          const part = result.damagedPart !== undefined ? ` (part ${result.damagedPart + 1} of ${ranges.length})` : "";
          throw thrownAway(`${location} arrived damaged${part}: it does not match ${verification.what}; the download was thrown away.`, "Fetch again.");
        }
      }
      if (archiveCheck) {
        // Nothing S3 keeps can check these bytes: the archive's own CRC must.
        const broken = await checkArchive(partial);
        if (broken)
          throw thrownAway(
            `${location} could not be verified: S3 keeps no usable checksum for it (${archiveCheck}), and ${broken}; the download was thrown away.`,
            "Fetch again; if it happens every time, the object itself is damaged.",
          );
        ctx.reporter.info(`${location} has no usable checksum in S3 (${archiveCheck}); its size and its archive's own checks were verified instead.`);
      }
      inOrder?.end();
      fs.renameSync(partial, file);
      fs.rmSync(stateFile, { force: true });
    },
  };
}
