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
 */
import crypto from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { checkBody, type DiscoveryDocument } from "./google-discovery.js";

/** A stored object. */
interface Stored {
  data: Buffer;
  generation: string;
  updated: string;
  contentType: string;
  /** Bytes served instead of `data` (damage at rest, which the recorded hashes do not know of). */
  served?: Buffer;
}

/** CRC32C (Castagnoli) of `data`, as Cloud Storage stores it: 4 bytes big-endian, base64. */
export function crc32c(data: Buffer): string {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  const out = Buffer.alloc(4);
  out.writeUInt32BE((crc ^ 0xffffffff) >>> 0);
  return out.toString("base64");
}

/** A running test server. */
export interface GcsFake {
  url: string;
  /** bucket → object name → object. */
  buckets: Map<string, Map<string, Stored>>;
  requests: Array<{ method: string; path: string; range?: string }>;
  /** Cut the next `count` media answers after `bytes` bytes (a connection that drops mid-body). */
  cutNext(count: number, bytes: number): void;
  /** Change a stored object's bytes without changing its recorded hashes (damage at rest). */
  damage(bucket: string, name: string): void;
  /** Leave the object's MD5 out of its metadata, as for a composite object. */
  noMd5: Set<string>;
  close(): Promise<void>;
}

/** Start the server, with `buckets` existing (empty). */
export async function startGcsFake(doc: DiscoveryDocument, buckets: string[]): Promise<GcsFake> {
  const store = new Map<string, Map<string, Stored>>(buckets.map((bucket) => [bucket, new Map()]));
  const sessions = new Map<string, { bucket: string; name: string; contentType: string; received: Buffer[]; size: number }>();
  const requests: GcsFake["requests"] = [];
  const noMd5 = new Set<string>();
  let cuts = { count: 0, bytes: 0 };
  let generation = 1_700_000_000_000_000;

  const resource = (bucket: string, name: string, object: Stored): Record<string, unknown> => ({
    kind: "storage#object",
    id: `${bucket}/${name}/${object.generation}`,
    selfLink: `http://storage/b/${bucket}/o/${encodeURIComponent(name)}`,
    name,
    bucket,
    generation: object.generation,
    metageneration: "1",
    contentType: object.contentType,
    size: String(object.data.length),
    crc32c: crc32c(object.data),
    ...(noMd5.has(`${bucket}/${name}`) ? {} : { md5Hash: crypto.createHash("md5").update(object.data).digest("base64") }),
    etag: Buffer.from(object.generation).toString("base64"),
    timeCreated: object.updated,
    updated: object.updated,
    storageClass: "STANDARD",
  });

  const error = (res: http.ServerResponse, code: number, message: string): void => {
    res.writeHead(code, { "content-type": "application/json" });
    res.end(JSON.stringify({ error: { code, message, errors: [{ message, reason: code === 404 ? "notFound" : "invalid" }] } }));
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const url = new URL(req.url ?? "/", "http://localhost");
      const method = req.method ?? "GET";
      requests.push({ method, path: url.pathname + url.search, ...(req.headers.range ? { range: req.headers.range } : {}) });
      let match: RegExpExecArray | null;
      // Start a resumable session: the Object metadata in the body, the name in it or the query.
      if (method === "POST" && (match = /^\/upload\/storage\/v1\/b\/([^/]+)\/o$/.exec(url.pathname)) && url.searchParams.get("uploadType") === "resumable") {
        const bucket = match[1]!;
        if (!store.has(bucket)) return error(res, 404, "The specified bucket does not exist.");
        const metadata = body.length ? (JSON.parse(body.toString("utf8")) as Record<string, unknown>) : {};
        const problems = checkBody(doc, "Object", metadata);
        if (problems.length) return error(res, 400, `Invalid JSON payload received. ${problems.join("; ")}`);
        const name = url.searchParams.get("name") ?? (metadata.name as string | undefined);
        if (!name) return error(res, 400, "Required parameter: name");
        const id = crypto.randomBytes(12).toString("hex");
        const size = Number(req.headers["x-upload-content-length"] ?? -1);
        sessions.set(id, { bucket, name, contentType: (metadata.contentType as string) ?? "application/octet-stream", received: [], size });
        res.writeHead(200, {
          location: `http://${req.headers.host}/upload/storage/v1/b/${bucket}/o?uploadType=resumable&name=${encodeURIComponent(name)}&upload_id=${id}`,
        });
        return res.end();
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
          return res.end();
        }
        if (now !== total) return error(res, 400, `The upload has ${now} bytes, not ${total}.`);
        const object: Stored = {
          data: Buffer.concat(session.received),
          generation: String(generation++),
          updated: new Date().toISOString(),
          contentType: session.contentType,
        };
        store.get(session.bucket)!.set(session.name, object);
        res.writeHead(200, { "content-type": "application/json" });
        return res.end(JSON.stringify(resource(session.bucket, session.name, object)));
      }
      if (method === "GET" && (match = /^\/storage\/v1\/b\/([^/]+)\/o\/(.+)$/.exec(url.pathname))) {
        const bucket = match[1]!;
        const name = decodeURIComponent(match[2]!);
        const object = store.get(bucket)?.get(name);
        const wanted = url.searchParams.get("generation");
        if (!object || (wanted && wanted !== object.generation)) return error(res, 404, `No such object: ${bucket}/${name}`);
        if (url.searchParams.get("alt") !== "media") {
          res.writeHead(200, { "content-type": "application/json" });
          return res.end(JSON.stringify(resource(bucket, name, object)));
        }
        const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
        const start = range ? Number(range[1]) : 0;
        const end = range && range[2] ? Math.min(Number(range[2]), object.data.length - 1) : object.data.length - 1;
        if (start > end) return error(res, 416, "Requested range not satisfiable");
        const slice = (object.served ?? object.data).subarray(start, end + 1);
        const headers = {
          "content-type": object.contentType,
          "content-length": String(slice.length),
          "x-goog-generation": object.generation,
          "x-goog-hash": `crc32c=${crc32c(object.data)},md5=${crypto.createHash("md5").update(object.data).digest("base64")}`,
          ...(range ? { "content-range": `bytes ${start}-${end}/${object.data.length}` } : {}),
        };
        res.writeHead(range ? 206 : 200, headers);
        if (cuts.count > 0 && slice.length > cuts.bytes) {
          cuts = { count: cuts.count - 1, bytes: cuts.bytes };
          res.write(slice.subarray(0, cuts.bytes));
          setImmediate(() => res.destroy());
          return;
        }
        return res.end(slice);
      }
      if (method === "GET" && (match = /^\/storage\/v1\/b\/([^/]+)\/o$/.exec(url.pathname))) {
        const bucket = match[1]!;
        const objects = store.get(bucket);
        if (!objects) return error(res, 404, "The specified bucket does not exist.");
        const prefix = url.searchParams.get("prefix") ?? "";
        const names = [...objects.keys()].filter((name) => name.startsWith(prefix)).sort();
        // Two objects a page, so that every lister must follow nextPageToken.
        const from = Number(url.searchParams.get("pageToken") ?? 0);
        const page = names.slice(from, from + 2);
        res.writeHead(200, { "content-type": "application/json" });
        return res.end(
          JSON.stringify({
            kind: "storage#objects",
            ...(page.length ? { items: page.map((name) => resource(bucket, name, objects.get(name)!)) } : {}),
            ...(from + 2 < names.length ? { nextPageToken: String(from + 2) } : {}),
          }),
        );
      }
      error(res, 404, `No method ${method} ${url.pathname} on this test server.`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    buckets: store,
    requests,
    noMd5,
    cutNext(count, bytes) {
      cuts = { count, bytes };
    },
    damage(bucket, name) {
      const object = store.get(bucket)!.get(name)!;
      object.served = Buffer.from(object.data);
      object.served[0] = object.served[0]! ^ 0xff;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
