/**
 * A Cloud Storage JSON API test server on loopback, from storage.v1.json
 * (google-discovery.ts) and the upload and download guides
 * (cloud.google.com/storage/docs/performing-resumable-uploads,
 * cloud.google.com/storage/docs/json_api/v1/objects/get): object metadata,
 * listing with pages, media downloads with Range, and resumable upload
 * sessions (308 with the Range received until the last byte). Metadata sent
 * in a request is checked against the published Object schema; answers carry
 * real CRC32C and MD5 values (base64, big-endian CRC32C), int64 sizes and
 * generations as strings. No authentication is asked, as for an emulator
 * reached through STORAGE_EMULATOR_HOST.
 *
 * Objects are files on disk, `root/BUCKET/OBJECT_NAME`, and buckets the
 * folders under `root`, so that the root can be mounted into a training
 * container at /gcs as Vertex AI mounts Cloud Storage there with Cloud Storage
 * FUSE (cloud.google.com/vertex-ai/docs/training/cloud-storage-file-system):
 * what the container writes under /gcs/BUCKET/ is an object the API lists and
 * serves, and what is uploaded through the API is a file the container reads.
 * As with FUSE, folders are implicit (no object stands for one) and a file
 * written in several pieces is one object. A file the API did not write is
 * `application/octet-stream`, with a generation made from its modification
 * time in microseconds (Cloud Storage generations are microsecond times too).
 */
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { checkBody, type DiscoveryDocument } from "./google-discovery.js";

/** What the API recorded of an object it wrote; it holds while the file is the one written (same signature). */
interface Written {
  signature: string;
  generation: string;
  updated: string;
  contentType: string;
}

/** An object as a request sees it: its file and metadata. */
interface Found {
  file: string;
  size: number;
  signature: string;
  generation: string;
  updated: string;
  contentType: string;
}

/** The Castagnoli polynomial's byte table (reflected, 0x82f63b78), for CRC32C a table lookup per byte. */
const CRC_TABLE = Array.from({ length: 256 }, (_, byte) => {
  let crc = byte;
  for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  return crc >>> 0;
});

/** Feed `data` into a running CRC32C (start with 0xffffffff, finish by xor with 0xffffffff). */
function crcUpdate(crc: number, data: Buffer): number {
  for (const byte of data) crc = CRC_TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  return crc >>> 0;
}

/** A CRC32C as Cloud Storage shows it: 4 bytes big-endian, base64. */
function crcText(crc: number): string {
  const out = Buffer.alloc(4);
  out.writeUInt32BE((crc ^ 0xffffffff) >>> 0);
  return out.toString("base64");
}

/** CRC32C (Castagnoli) of `data`, as Cloud Storage stores it: 4 bytes big-endian, base64. */
export function crc32c(data: Buffer): string {
  return crcText(crcUpdate(0xffffffff, data));
}

/** Bucket names as Cloud Storage allows them (cloud.google.com/storage/docs/buckets#naming); the server's own folders start with "." and are never one. */
const BUCKET_NAME = /^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/;

/** What startGcsFake takes besides the buckets. */
export interface GcsFakeOptions {
  /** The folder objects live in (root/BUCKET/NAME); a fresh temporary folder, removed by close(), when not given. */
  root?: string;
}

/** A running test server. */
export interface GcsFake {
  url: string;
  /** The folder holding each bucket as a folder and each object as a file, root/BUCKET/OBJECT_NAME: what a training container sees at /gcs. */
  root: string;
  /** The buckets: the folders under root, now. */
  readonly buckets: string[];
  requests: Array<{ method: string; path: string; range?: string }>;
  /** Cut the next `count` media answers after `bytes` bytes (a connection that drops mid-body). */
  cutNext(count: number, bytes: number): void;
  /** Change the bytes an object serves without changing its recorded hashes (damage at rest). */
  damage(bucket: string, name: string): void;
  /** Leave the object's MD5 out of its metadata, as for a composite object. */
  noMd5: Set<string>;
  close(): Promise<void>;
}

/** Start the server, with `buckets` existing (made empty when their folders are not there yet). */
export async function startGcsFake(doc: DiscoveryDocument, buckets: string[], options: GcsFakeOptions = {}): Promise<GcsFake> {
  const ownRoot = options.root === undefined;
  const root = path.resolve(options.root ?? fs.mkdtempSync(path.join(os.tmpdir(), "gcs-fake-")));
  for (const bucket of buckets) {
    if (!BUCKET_NAME.test(bucket)) throw new Error(`gcs-fake: ${bucket} is not a valid bucket name`);
    fs.mkdirSync(path.join(root, bucket), { recursive: true });
  }
  // Uploads are written here, then renamed into place (same file system), so a container never reads half an object.
  const staging = path.join(root, ".gcs-fake-staging");
  fs.mkdirSync(staging, { recursive: true });
  const sessions = new Map<string, { bucket: string; name: string; contentType: string; received: Buffer[]; size: number }>();
  const requests: GcsFake["requests"] = [];
  const noMd5 = new Set<string>();
  const written = new Map<string, Written>();
  /** Objects damaged at rest: the bytes served instead of the file's, while the file is unchanged. */
  const damaged = new Map<string, { signature: string; served: Buffer }>();
  const hashCache = new Map<string, { signature: string; crc32c: string; md5: string }>();
  let cuts = { count: 0, bytes: 0 };
  let generation = 1_700_000_000_000_000;

  const bucketDir = (bucket: string): string | undefined => {
    if (!BUCKET_NAME.test(bucket)) return undefined;
    const dir = path.join(root, bucket);
    return fs.statSync(dir, { throwIfNoEntry: false })?.isDirectory() ? dir : undefined;
  };
  /** The file of object `name`, or why the name cannot be one here (a file system has no empty, `.` or `..` path segments). */
  const objectFile = (bucket: string, name: string): string | { problem: string } => {
    const parts = name.split("/");
    if (!name || parts.some((part) => part === "" || part === "." || part === "..") || name.includes("\0"))
      return { problem: `this test server keeps objects as files, and ${JSON.stringify(name)} cannot be a file name` };
    return path.join(root, bucket, ...parts);
  };
  const find = (bucket: string, name: string): Found | undefined => {
    if (!bucketDir(bucket)) return undefined;
    const file = objectFile(bucket, name);
    if (typeof file !== "string") return undefined;
    const stat = fs.statSync(file, { bigint: true, throwIfNoEntry: false });
    if (!stat?.isFile()) return undefined;
    const signature = `${stat.ino}:${stat.size}:${stat.mtimeNs}`;
    const known = written.get(`${bucket}/${name}`);
    if (known?.signature === signature) return { file, size: Number(stat.size), ...known };
    // Written by someone else (a container, through /gcs): its time is its generation.
    const updated = new Date(Number(stat.mtimeMs)).toISOString();
    return { file, size: Number(stat.size), signature, generation: String(stat.mtimeNs / 1000n), updated, contentType: "application/octet-stream" };
  };
  /** The object's CRC32C and MD5, read from its file once per version. */
  const hashes = async (object: Found): Promise<{ crc32c: string; md5: string }> => {
    const cached = hashCache.get(object.file);
    if (cached?.signature === object.signature) return cached;
    let crc = 0xffffffff;
    const md5 = crypto.createHash("md5");
    for await (const chunk of fs.createReadStream(object.file) as AsyncIterable<Buffer>) {
      crc = crcUpdate(crc, chunk);
      md5.update(chunk);
    }
    const result = { signature: object.signature, crc32c: crcText(crc), md5: md5.digest("base64") };
    hashCache.set(object.file, result);
    return result;
  };

  const resource = async (bucket: string, name: string, object: Found): Promise<Record<string, unknown>> => {
    const sums = await hashes(object);
    return {
      kind: "storage#object",
      id: `${bucket}/${name}/${object.generation}`,
      selfLink: `http://storage/b/${bucket}/o/${encodeURIComponent(name)}`,
      name,
      bucket,
      generation: object.generation,
      metageneration: "1",
      contentType: object.contentType,
      size: String(object.size),
      crc32c: sums.crc32c,
      ...(noMd5.has(`${bucket}/${name}`) ? {} : { md5Hash: sums.md5 }),
      etag: Buffer.from(object.generation).toString("base64"),
      timeCreated: object.updated,
      updated: object.updated,
      storageClass: "STANDARD",
    };
  };

  /** Every object name in the bucket's folder (regular files; folders are implicit), sorted. */
  const names = (dir: string): string[] => {
    const found: string[] = [];
    const walk = (folder: string, prefix: string): void => {
      for (const entry of fs.readdirSync(folder, { withFileTypes: true })) {
        if (entry.isDirectory()) walk(path.join(folder, entry.name), `${prefix}${entry.name}/`);
        else if (entry.isFile()) found.push(prefix + entry.name);
      }
    };
    walk(dir, "");
    return found.sort();
  };

  const error = (res: http.ServerResponse, code: number, message: string): void => {
    res.writeHead(code, { "content-type": "application/json" });
    res.end(JSON.stringify({ error: { code, message, errors: [{ message, reason: code === 404 ? "notFound" : "invalid" }] } }));
  };
  const json = (res: http.ServerResponse, body: unknown): void => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer): Promise<void> => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const method = req.method ?? "GET";
    requests.push({ method, path: url.pathname + url.search, ...(req.headers.range ? { range: req.headers.range } : {}) });
    let match: RegExpExecArray | null;
    // Start a resumable session: the Object metadata in the body, the name in it or the query.
    if (method === "POST" && (match = /^\/upload\/storage\/v1\/b\/([^/]+)\/o$/.exec(url.pathname)) && url.searchParams.get("uploadType") === "resumable") {
      const bucket = match[1]!;
      if (!bucketDir(bucket)) return error(res, 404, "The specified bucket does not exist.");
      const metadata = body.length ? (JSON.parse(body.toString("utf8")) as Record<string, unknown>) : {};
      const problems = checkBody(doc, "Object", metadata);
      if (problems.length) return error(res, 400, `Invalid JSON payload received. ${problems.join("; ")}`);
      const name = url.searchParams.get("name") ?? (metadata.name as string | undefined);
      if (!name) return error(res, 400, "Required parameter: name");
      const file = objectFile(bucket, name);
      if (typeof file !== "string") return error(res, 400, file.problem);
      const id = crypto.randomBytes(12).toString("hex");
      const size = Number(req.headers["x-upload-content-length"] ?? -1);
      sessions.set(id, { bucket, name, contentType: (metadata.contentType as string) ?? "application/octet-stream", received: [], size });
      res.writeHead(200, {
        location: `http://${req.headers.host}/upload/storage/v1/b/${bucket}/o?uploadType=resumable&name=${encodeURIComponent(name)}&upload_id=${id}`,
      });
      return void res.end();
    }
    // Send bytes of a session: Content-Range bytes A-B/TOTAL (or */TOTAL, or bytes */* to ask how far it got).
    if (method === "PUT" && url.pathname.startsWith("/upload/storage/v1/b/") && url.searchParams.get("upload_id")) {
      const session = sessions.get(url.searchParams.get("upload_id")!);
      if (!session) return error(res, 404, "No such upload session.");
      // "bytes A-B/TOTAL" (a chunk), "bytes A-*/TOTAL" or "bytes A-*/*" (the rest of the object in this one request, as the
      // storage library sends a file it streams: the request ending normally finalizes it), "bytes */TOTAL" (a status query).
      const range = /^bytes (\*|(\d+)-(\d+|\*))\/(\*|\d+)$/.exec(String(req.headers["content-range"] ?? `bytes 0-*/*`));
      if (!range) return error(res, 400, `Invalid Content-Range ${String(req.headers["content-range"])}.`);
      const have = session.received.reduce((sum, chunk) => sum + chunk.length, 0);
      if (range[2] !== undefined) {
        if (Number(range[2]) !== have) return error(res, 400, `Content-Range starts at ${range[2]}, but ${have} bytes were received.`);
        if (range[3] !== "*" && Number(range[3]) - Number(range[2]) + 1 !== body.length)
          return error(res, 400, "Content-Range does not match the body's length.");
        session.received.push(body);
      }
      const now = have + (range[2] !== undefined ? body.length : 0);
      const total = range[4] === "*" ? (range[3] === "*" ? now : undefined) : Number(range[4]);
      if (total === undefined || now < total) {
        res.writeHead(308, now ? { range: `bytes=0-${now - 1}` } : {});
        return void res.end();
      }
      if (now !== total) return error(res, 400, `The upload has ${now} bytes, not ${total}.`);
      const file = objectFile(session.bucket, session.name) as string;
      const temporary = path.join(staging, crypto.randomBytes(8).toString("hex"));
      fs.writeFileSync(temporary, Buffer.concat(session.received));
      try {
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.renameSync(temporary, file);
      } catch (err) {
        fs.rmSync(temporary, { force: true });
        // Cloud Storage keeps "a" and "a/b" side by side; files cannot.
        return error(res, 409, `this test server keeps objects as files, and ${session.name} cannot be one here: ${(err as Error).message}`);
      }
      sessions.delete(url.searchParams.get("upload_id")!);
      const stat = fs.statSync(file, { bigint: true });
      written.set(`${session.bucket}/${session.name}`, {
        signature: `${stat.ino}:${stat.size}:${stat.mtimeNs}`,
        generation: String(generation++),
        updated: new Date().toISOString(),
        contentType: session.contentType,
      });
      return json(res, await resource(session.bucket, session.name, find(session.bucket, session.name)!));
    }
    // objects.delete: 204 with no body, 404 for an object that is not there (cloud.google.com/storage/docs/json_api/v1/objects/delete).
    if (method === "DELETE" && (match = /^\/storage\/v1\/b\/([^/]+)\/o\/(.+)$/.exec(url.pathname))) {
      const bucket = match[1]!;
      const name = decodeURIComponent(match[2]!);
      const file = objectFile(bucket, name);
      if (typeof file !== "string" || !find(bucket, name)) return error(res, 404, `No such object: ${bucket}/${name}`);
      fs.rmSync(file, { force: true });
      written.delete(`${bucket}/${name}`);
      res.writeHead(204);
      return void res.end();
    }
    if (method === "GET" && (match = /^\/storage\/v1\/b\/([^/]+)\/o\/(.+)$/.exec(url.pathname))) {
      const bucket = match[1]!;
      const name = decodeURIComponent(match[2]!);
      const object = find(bucket, name);
      const wanted = url.searchParams.get("generation");
      if (!object || (wanted && wanted !== object.generation)) return error(res, 404, `No such object: ${bucket}/${name}`);
      if (url.searchParams.get("alt") !== "media") return json(res, await resource(bucket, name, object));
      const sums = await hashes(object);
      const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
      const start = range ? Number(range[1]) : 0;
      const end = range && range[2] ? Math.min(Number(range[2]), object.size - 1) : object.size - 1;
      // A range past the end is refused; the whole of an empty object is just empty.
      if (start > end && (range || object.size > 0)) return error(res, 416, "Requested range not satisfiable");
      const length = Math.max(0, end - start + 1);
      res.writeHead(range ? 206 : 200, {
        "content-type": object.contentType,
        "content-length": String(length),
        "x-goog-generation": object.generation,
        "x-goog-hash": `crc32c=${sums.crc32c},md5=${sums.md5}`,
        ...(range ? { "content-range": `bytes ${start}-${end}/${object.size}` } : {}),
      });
      const broken = damaged.get(`${bucket}/${name}`);
      const cut = cuts.count > 0 && length > cuts.bytes;
      if (cut) cuts = { count: cuts.count - 1, bytes: cuts.bytes };
      const sent = cut ? cuts.bytes : length;
      if (broken?.signature === object.signature || cut) {
        const slice = broken?.signature === object.signature ? broken.served.subarray(start, start + sent) : readRange(object.file, start, sent);
        if (!cut) return void res.end(slice);
        res.write(slice);
        setImmediate(() => res.destroy());
        return;
      }
      // The whole range streams from the file: a large object is never held in memory.
      if (length === 0) return void res.end();
      fs.createReadStream(object.file, { start, end }).pipe(res);
      return;
    }
    if (method === "GET" && (match = /^\/storage\/v1\/b\/([^/]+)\/o$/.exec(url.pathname))) {
      const bucket = match[1]!;
      const dir = bucketDir(bucket);
      if (!dir) return error(res, 404, "The specified bucket does not exist.");
      const prefix = url.searchParams.get("prefix") ?? "";
      const listed = names(dir).filter((name) => name.startsWith(prefix));
      // Two objects a page, so that every lister must follow nextPageToken.
      const from = Number(url.searchParams.get("pageToken") ?? 0);
      const page = listed.slice(from, from + 2);
      const items: Array<Record<string, unknown>> = [];
      for (const name of page) {
        const object = find(bucket, name);
        if (object) items.push(await resource(bucket, name, object)); // gone since the folder was read: not listed
      }
      return json(res, {
        kind: "storage#objects",
        ...(items.length ? { items } : {}),
        ...(from + 2 < listed.length ? { nextPageToken: String(from + 2) } : {}),
      });
    }
    error(res, 404, `No method ${method} ${url.pathname} on this test server.`);
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      handle(req, res, Buffer.concat(chunks)).catch((err: Error) => {
        if (res.headersSent) res.destroy();
        else error(res, 500, `gcs-fake: ${err.stack ?? err.message}`);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    root,
    get buckets() {
      return fs
        .readdirSync(root, { withFileTypes: true })
        .filter((entry) => entry.isDirectory() && BUCKET_NAME.test(entry.name))
        .map((entry) => entry.name)
        .sort();
    },
    requests,
    noMd5,
    cutNext(count, bytes) {
      cuts = { count, bytes };
    },
    damage(bucket, name) {
      const object = find(bucket, name);
      if (!object) throw new Error(`gcs-fake: no object ${bucket}/${name} to damage`);
      const served = fs.readFileSync(object.file);
      if (served.length) served[0] = served[0]! ^ 0xff;
      damaged.set(`${bucket}/${name}`, { signature: object.signature, served });
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      if (ownRoot) fs.rmSync(root, { recursive: true, force: true });
      else fs.rmSync(staging, { recursive: true, force: true });
    },
  };
}

/** `length` bytes of `file` from `start`. */
function readRange(file: string, start: number, length: number): Buffer {
  const out = Buffer.alloc(length);
  const fd = fs.openSync(file, "r");
  try {
    let got = 0;
    while (got < length) {
      const read = fs.readSync(fd, out, got, length - got, start + got);
      if (read === 0) break;
      got += read;
    }
    return out.subarray(0, got);
  } finally {
    fs.closeSync(fd);
  }
}
