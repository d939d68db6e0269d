/**
 * gs:// behind the storage interface, with Google's storage library
 * (@google-cloud/storage, loaded only when a gs:// location is used).
 * Uploads are resumable sessions (the library's, checked with CRC32C);
 * downloads are ranged GETs of one generation of the object, several at
 * once, straight into the file at their offsets, resumed from what is on
 * disk after an interruption, and verified before the file appears: with the
 * object's CRC32C, and its MD5 when it has one (composite objects have none),
 * digested natively on another core while the ranges still come down.
 * STORAGE_EMULATOR_HOST points it at another server, as the library reads it.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Writable } from "node:stream";
import type { Context } from "../context.js";
import { failure, UserError } from "../errors.js";
import { checkSpace, diskFull, fetchRanges, isTransient, followPrefix, planRanges, prefixDigest, type Range, type RangeSource } from "./s3-ranges.js";
import type { ObjectInfo, ProgressListener, Storage } from "./types.js";
import { loadSdk } from "../sdk.js";

type Env = Readonly<Record<string, string | undefined>>;

const MiB = 1024 * 1024;
/** Bytes per ranged GET. */
const DEFAULT_RANGE = 32 * MiB;
/** Ranges in flight at once. */
const PARALLEL = Math.min(16, Math.max(4, 2 * os.availableParallelism()));

/** `gs://BUCKET/NAME` as its bucket and object name. */
export function parseGs(location: string): { bucket: string; name: string } {
  const match = /^gs:\/\/([^/]+)\/?(.*)$/.exec(location);
  if (!match || !match[1]) throw new UserError(`${location} is not a gs://BUCKET/PATH location.`);
  return { bucket: match[1], name: match[2] ?? "" };
}

/** The object's metadata this storage reads (storage v1's Object resource: sizes are int64 strings, hashes base64). */
interface GcsObject {
  name?: string;
  size?: string | number;
  updated?: string;
  generation?: string | number;
  crc32c?: string;
  md5Hash?: string;
  etag?: string;
}

/** How the transfers are tuned (tests make them small). */
export interface GcsTuning {
  rangeSize?: number;
  parallel?: number;
  attempts?: number;
}

/** A Cloud Storage error as a UserError: the API's message, and a hint for the usual causes. */
function explain(err: unknown, what: string): Error {
  if (err instanceof UserError) return err;
  const e = err as { code?: number | string; message?: string; name?: string };
  if (e?.name === "AbortError") return new UserError(`Stopped ${what}.`, "Run the same command again to resume.");
  const code = typeof e?.code === "number" ? e.code : Number(e?.code);
  // Resuming helps only a download cut by the network or the server; a missing bucket or object, or a refusal, stays as it is.
  const hint =
    code === 401 || /Could not load the default credentials/i.test(e?.message ?? "")
      ? "Run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS to a service account's key file."
      : code === 403
        ? "The caller lacks permission on the bucket (storage.objects.get, .list or .create)."
        : code === 404
          ? "Check the bucket and object names: `gcloud storage ls gs://BUCKET/PATH` lists what is there."
          : what.startsWith("downloading") && (code >= 500 || code === 429 || isTransient(err))
            ? "Run the command again; the download resumes where it stopped."
            : undefined;
  // The library's messages name the request, never its Authorization header.
  return failure(`Cloud Storage failed while ${what}: ${e?.message ?? String(err)}`, hint);
}

/** A response body whose cut connection (fetch's "terminated") reads as the reset it is, so the range is resumed. */
async function* cutIsReset(body: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  try {
    yield* body;
  } catch (err) {
    if ((err as Error).name === "AbortError") throw err;
    throw Object.assign(new Error(`premature close (${(err as Error).message})`), { code: "ERR_STREAM_PREMATURE_CLOSE" });
  }
}

/** A gs:// Storage for the context's Google settings. */
export async function gcsStorage(ctx: Context, tuning: GcsTuning = {}): Promise<Storage> {
  const { Storage: Client } = loadSdk<typeof import("@google-cloud/storage")>("@google-cloud/storage");
  const env: Env = ctx.env;
  // STORAGE_EMULATOR_HOST names a host (http://HOST:PORT), as Google's Python and Go libraries read it; the JSON API lies under
  // /storage/v1 there as at Google. This library reads the same variable from its own process environment only, and then as a base URL without
  // /storage/v1: its base is set here from the context's variable, so that a command behaves the same whoever set it.
  const emulator = env.STORAGE_EMULATOR_HOST
    ? (/^https?:\/\//.test(env.STORAGE_EMULATOR_HOST) ? env.STORAGE_EMULATOR_HOST : `http://${env.STORAGE_EMULATOR_HOST}`).replace(/\/+$/, "")
    : undefined;
  const client = new Client({
    ...(emulator ? { apiEndpoint: emulator } : {}),
    ...(env.GOOGLE_APPLICATION_CREDENTIALS ? { keyFilename: env.GOOGLE_APPLICATION_CREDENTIALS } : {}),
    ...(env.GOOGLE_CLOUD_PROJECT ? { projectId: env.GOOGLE_CLOUD_PROJECT } : {}),
    retryOptions: { autoRetry: true, maxRetries: 3 },
  });
  if (emulator) {
    client.apiEndpoint = emulator;
    client.baseUrl = `${emulator}/storage/v1`;
  }
  // GOOGLE_CLOUD_QUOTA_PROJECT (or config.quota_project, which the Vertex backend passes as it) goes out as x-goog-user-project, as
  // google-auth-library sends a credential's quotaProjectId; the library applies the variable itself only from its own process
  // environment and only to credentials it finds without a key file, so it is set on the credential here. (The storage options'
  // `userProject` is another thing: the project billed for a requester-pays bucket, sent as a query parameter.) A custom endpoint
  // (STORAGE_EMULATOR_HOST) gets no credentials from the library, so nothing to set there.
  const quotaProject = env.GOOGLE_CLOUD_QUOTA_PROJECT;
  if (quotaProject && !emulator) {
    try {
      const credential = (await client.authClient.getClient()) as { quotaProjectId?: string };
      credential.quotaProjectId = quotaProject;
    } catch {
      // No credentials yet: the first request fails with the library's own explanation.
    }
  }
  const rangeSize = tuning.rangeSize ?? DEFAULT_RANGE;
  const parallel = tuning.parallel ?? PARALLEL;

  const info = (bucket: string, object: GcsObject): ObjectInfo => ({
    location: `gs://${bucket}/${object.name}`,
    size: Number(object.size ?? 0),
    modified: new Date(object.updated ?? 0),
    ...(object.etag ? { etag: object.etag } : {}),
  });

  const metadataOf = async (location: string): Promise<GcsObject | undefined> => {
    const { bucket, name } = parseGs(location);
    try {
      const [metadata] = await client.bucket(bucket).file(name).getMetadata();
      return metadata as GcsObject;
    } catch (err) {
      if ((err as { code?: number }).code === 404) return undefined;
      throw explain(err, `reading ${location}`);
    }
  };

  return {
    async stat(location) {
      const object = await metadataOf(location);
      return object ? info(parseGs(location).bucket, object) : undefined;
    },

    async list(prefix) {
      const { bucket, name } = parseGs(prefix);
      try {
        const [files] = await client.bucket(bucket).getFiles({ prefix: name, autoPaginate: true });
        return files.map((file) => info(bucket, file.metadata as GcsObject)).sort((a, b) => a.location.localeCompare(b.location));
      } catch (err) {
        throw explain(err, `listing ${prefix}`);
      }
    },

    async upload(file, location, onProgress?: ProgressListener) {
      const { bucket, name } = parseGs(location);
      const size = fs.statSync(file).size;
      try {
        // A resumable session survives a dropped connection mid-file; the library checks the stored object's CRC32C against the bytes it sent.
        await client.bucket(bucket).upload(file, {
          destination: name,
          resumable: true,
          validation: "crc32c",
          metadata: { contentType: "application/octet-stream" },
          // The library counts the bytes the server has taken ({ bytesWritten }); a resumed session starts from what it kept.
          ...(onProgress ? { onUploadProgress: (event: { bytesWritten?: number }) => onProgress(Math.min(event.bytesWritten ?? 0, size), size) } : {}),
        });
        onProgress?.(size, size);
      } catch (err) {
        throw explain(err, `uploading ${file} to ${location}`);
      }
    },

    async download(location, file, onProgress?: ProgressListener, inOrder?: Writable) {
      const fail = (err: Error): Error => {
        inOrder?.destroy(err);
        return err;
      };
      const object = await metadataOf(location).catch((err: Error) => {
        throw fail(err);
      });
      if (!object) throw fail(failure(`${location} does not exist.`));
      const size = Number(object.size ?? 0);
      const { bucket, name } = parseGs(location);
      if (!object.crc32c) throw fail(failure(`Cannot fetch ${location}: Cloud Storage keeps no CRC32C for it, so what arrives could not be checked.`));
      fs.mkdirSync(path.dirname(file), { recursive: true });
      if (size === 0) {
        fs.writeFileSync(file, "");
        inOrder?.end();
        return;
      }
      // Every range comes from the generation described, so a replaced object cannot mix into the file.
      const generation = String(object.generation ?? "");
      const stop = new AbortController();
      const signal = ctx.signal ? AbortSignal.any([ctx.signal, stop.signal]) : stop.signal;
      const ranges = planRanges(size, undefined, rangeSize);
      const partial = `${file}.partial`;
      const stateFile = `${partial}.json`;
      const identity = JSON.stringify([generation, size, object.crc32c, object.md5Hash ?? "", rangeSize]);
      const done = new Set<number>();
      try {
        const saved = JSON.parse(fs.readFileSync(stateFile, "utf8")) as { identity: string; done: number[] };
        if (saved.identity === identity && fs.existsSync(partial)) for (const index of saved.done) done.add(index);
      } catch {
        // nothing to resume
      }
      // A full disk is found now, before anything is written: what is still to come must fit.
      const have = ranges.filter((r) => done.has(r.index)).reduce((sum, r) => sum + (r.end - r.start + 1), 0);
      try {
        checkSpace(file, size - have, location);
      } catch (err) {
        throw fail(err as Error);
      }
      if (!done.size) {
        fs.writeFileSync(partial, "");
        fs.truncateSync(partial, size);
      }
      const saveState = (): void => fs.writeFileSync(stateFile, JSON.stringify({ identity, done: [...done] }));
      let moved = have;
      onProgress?.(moved, size);

      // Ranges are plain ranged GETs of the media (the JSON API's alt=media), authorized by the library's own credentials: the
      // library's read stream, cut mid-body, neither ends nor fails (it was seen to hang), where a fetch fails and is resumed.
      const mediaUrl = `${client.baseUrl.replace(/\/+$/, "")}/b/${encodeURIComponent(bucket)}/o/${encodeURIComponent(name)}?alt=media${generation ? `&generation=${generation}` : ""}`;
      const source: RangeSource = async (start, end) => {
        const auth = emulator ? {} : Object.fromEntries(new Headers(await client.authClient.getRequestHeaders(mediaUrl)).entries());
        const response = await fetch(mediaUrl, { headers: { ...auth, range: `bytes=${start}-${end}` }, signal });
        if (response.status !== 206 && response.status !== 200) {
          const text = await response.text().catch(() => "");
          const message = (JSON.parse(text || "{}") as { error?: { message?: string } }).error?.message ?? `HTTP ${response.status}`;
          throw Object.assign(new Error(message), { code: response.status >= 500 || response.status === 429 ? "ECONNRESET" : response.status });
        }
        if (response.status === 200 && (start !== 0 || end !== size - 1))
          throw failure(`Cloud Storage ignored the range asked of ${location}.`, "Fetch again.");
        return { body: cutIsReset(response.body!) };
      };
      // A worker on another core digests the finished prefix of the file (CRC32C, and MD5 when the object has one) while later
      // ranges still come down; the same prefix goes, in order, to whoever reads along (extraction, which places nothing before
      // this download has passed its checks).
      const whole = prefixDigest(object.md5Hash ? ["CRC32C", "MD5"] : ["CRC32C"]);
      const prefix = followPrefix(ranges, done, partial, whole, inOrder);
      try {
        await fetchRanges(
          source,
          ranges.filter((r: Range) => !done.has(r.index)),
          partial,
          {
            parallel,
            stop,
            signal,
            onBytes: (n) => onProgress?.((moved += n), size),
            ...(tuning.attempts ? { attempts: tuning.attempts } : {}),
            what: location,
            onRange: (range) => {
              done.add(range.index);
              saveState();
              prefix.advance();
            },
          },
        );
      } catch (err) {
        await whole.terminate();
        const full = diskFull(err, partial, size, location);
        if (full) throw fail(full);
        throw fail(explain(ctx.signal?.aborted ? { name: "AbortError" } : err, `downloading ${location}`));
      }

      // Verify the whole file against what Cloud Storage keeps before it appears.
      const [crc, md5] = await whole.digests();
      await prefix.streamed();
      const crcOk = crc!.toString("base64") === object.crc32c;
      const md5Ok = !object.md5Hash || md5!.toString("base64") === object.md5Hash;
      if (fs.statSync(partial).size !== size || !crcOk || !md5Ok) {
        fs.rmSync(partial, { force: true });
        fs.rmSync(stateFile, { force: true });
        throw fail(
          failure(
            `${location} arrived damaged: it does not match ${!crcOk ? "its CRC32C" : "its MD5"} in Cloud Storage; the download was thrown away.`,
            "Fetch again.",
          ),
        );
      }
      inOrder?.end();
      fs.renameSync(partial, file);
      fs.rmSync(stateFile, { force: true });
    },
  };
}
