/**
 * An HTTP proxy in front of a test S3 (moto or s3rver) that answers where the
 * real S3 would and they do not. Each behaviour, and where it comes from:
 * - SSE-KMS and DSSE-KMS objects: their ETag is not an MD5 of the data ("Objects
 *   encrypted by SSE-C or SSE-KMS have ETags that are not an MD5 digest of their
 *   object data", S3 API Reference, Object.ETag), and HeadObject and GetObject
 *   say x-amz-server-side-encryption: aws:kms (or aws:kms:dsse) with the key's
 *   id (botocore's s3 model, HeadObjectOutput). moto keeps the MD5; the proxy
 *   replaces it with a 32-hex-digit value that looks like one and is not.
 * - objects stored before December 2024, when S3 began to keep a CRC64NVME of
 *   every new object ("Checking object integrity", S3 User Guide): no
 *   x-amz-checksum-* headers and no Checksum in GetObjectAttributes.
 * - SSE-C objects read without their key: HeadObject gets a bare 400, GetObject
 *   and GetObjectAttributes a 400 InvalidRequest ("Using server-side encryption
 *   with customer-provided keys", S3 User Guide).
 * - a bucket in another region: a request signed for the wrong region gets a
 *   301 PermanentRedirect with x-amz-bucket-region; a HeadObject gets a bare
 *   400 with no region at all, and HeadBucket a 301 that names it (the cases
 *   botocore's S3RegionRedirectorv2 handles, in botocore/utils.py).
 * - a connection cut in the middle of a ranged GET's body, by a reset or an
 *   early close (what a load balancer or a flaky link does), and a byte changed
 *   in transit (what the checks exist for).
 * Requests pass through with their Host header, so s3rver's signature checks hold.
 */
import { createHash } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";

/** What the proxy does to one object. */
export interface ObjectRule {
  /** Present the object as encrypted with SSE-KMS or DSSE-KMS. */
  encryption?: "aws:kms" | "aws:kms:dsse";
  /** Present the object as stored before default checksums: no stored checksum. */
  noChecksum?: boolean;
  /** Present the object as encrypted with a customer-provided key (SSE-C). */
  customerKey?: boolean;
  /** Cut the body of the next `times` ranged GETs after `after` bytes, by a reset or an early close. */
  cut?: { times: number; after: number; how: "reset" | "close" };
  /** Flip the byte at this offset of the object in every GET that carries it. */
  corruptAt?: number;
}

/** A running proxy: its URL, the rules it applies, and what it saw. */
export interface S3Proxy {
  url: string;
  /** "BUCKET/KEY" → what to do to that object. */
  objects: Map<string, ObjectRule>;
  /** Bucket → the region it lives in; requests signed for another region are redirected. */
  bucketRegions: Map<string, string>;
  /** Every request: method, path, query, the region it was signed for, and the status answered. */
  requests: Array<{ method: string; path: string; query: string; range?: string; region?: string; status: number }>;
  close(): Promise<void>;
}

const KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

/** The ETag S3 gives a KMS-encrypted object: not the MD5 of its bytes, but as long as one ("-N" kept for multipart uploads). */
export function kmsEtag(etag: string): string {
  const plain = etag.replace(/"/g, "");
  const suffix = /-\d+$/.exec(plain)?.[0] ?? "";
  return `"${createHash("md5").update(`kms:${plain}`).digest("hex")}${suffix}"`;
}

function xmlError(code: string, message: string, extra = ""): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message>${extra}<RequestId>PROXY</RequestId></Error>`;
}

/** Start the proxy on loopback in front of `upstream` (an S3 server's URL). */
export async function startS3Proxy(upstream: string): Promise<S3Proxy> {
  const target = new URL(upstream);
  const state: S3Proxy = { url: "", objects: new Map(), bucketRegions: new Map(), requests: [], close: async () => {} };

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://proxy");
    const [bucket = "", ...rest] = url.pathname.slice(1).split("/");
    const key = decodeURIComponent(rest.join("/"));
    const region = /Credential=[^/]+\/\d{8}\/([^/]+)\/s3\//.exec(req.headers.authorization ?? "")?.[1];
    const seen = {
      method: req.method ?? "GET",
      path: url.pathname,
      query: url.search,
      ...(req.headers.range ? { range: req.headers.range } : {}),
      ...(region ? { region } : {}),
      status: 0,
    };
    state.requests.push(seen);
    const answer = (status: number, headers: http.OutgoingHttpHeaders, body = ""): void => {
      seen.status = status;
      res.writeHead(status, {
        ...headers,
        ...(body ? { "Content-Type": "application/xml", "Content-Length": Buffer.byteLength(body) } : { "Content-Length": 0 }),
      });
      res.end(req.method === "HEAD" ? undefined : body);
    };

    const home = state.bucketRegions.get(bucket);
    if (home && region && region !== home) {
      req.resume();
      if (req.method === "HEAD" && key) return answer(400, {});
      return answer(
        301,
        { "x-amz-bucket-region": home },
        xmlError(
          "PermanentRedirect",
          "The bucket you are attempting to access must be addressed using the specified endpoint. Please send all future requests to this endpoint.",
          `<Endpoint>s3.${home}.amazonaws.com</Endpoint><Bucket>${bucket}</Bucket>`,
        ),
      );
    }

    const rule = key ? state.objects.get(`${bucket}/${key}`) : undefined;
    const attributes = url.searchParams.has("attributes");
    if (rule?.customerKey && (req.method === "HEAD" || req.method === "GET")) {
      req.resume();
      if (req.method === "HEAD") return answer(400, {});
      return answer(
        400,
        {},
        xmlError(
          "InvalidRequest",
          "The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object.",
        ),
      );
    }

    const forward = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (upstreamResponse) => {
      const status = upstreamResponse.statusCode ?? 502;
      seen.status = status;
      const headers: http.OutgoingHttpHeaders = { ...upstreamResponse.headers };
      if (!rule || status >= 300) {
        res.writeHead(status, headers);
        return void upstreamResponse.pipe(res);
      }
      if (rule.encryption) {
        if (headers.etag) headers.etag = kmsEtag(String(headers.etag));
        headers["x-amz-server-side-encryption"] = rule.encryption;
        headers["x-amz-server-side-encryption-aws-kms-key-id"] = KMS_KEY;
      }
      if (rule.noChecksum) for (const name of Object.keys(headers)) if (name.startsWith("x-amz-checksum-")) delete headers[name];

      if (attributes) {
        const chunks: Buffer[] = [];
        upstreamResponse.on("data", (chunk: Buffer) => chunks.push(chunk));
        upstreamResponse.on("end", () => {
          let xml = Buffer.concat(chunks).toString();
          if (rule.encryption) xml = xml.replace(/<ETag>([^<]*)<\/ETag>/, (_all, etag: string) => `<ETag>${kmsEtag(etag).replace(/"/g, "")}</ETag>`);
          if (rule.noChecksum)
            xml = xml.replace(/<Checksum>[\s\S]*?<\/Checksum>/, "").replace(/<Checksum(CRC32C?|CRC64NVME|SHA1|SHA256)>[^<]*<\/Checksum\1>/g, "");
          headers["content-length"] = Buffer.byteLength(xml);
          res.writeHead(status, headers);
          res.end(xml);
        });
        return;
      }

      const ranged = req.method === "GET" && req.headers.range !== undefined;
      const cut = ranged && rule.cut && rule.cut.times > 0 ? rule.cut : undefined;
      if (cut) cut.times--;
      const first = Number(/bytes (\d+)-/.exec(String(headers["content-range"] ?? ""))?.[1] ?? 0);
      res.writeHead(status, headers);
      let offset = first;
      let sent = 0;
      upstreamResponse.on("data", (chunk: Buffer) => {
        if (res.destroyed) return;
        let out = chunk;
        if (rule.corruptAt !== undefined && req.method === "GET" && rule.corruptAt >= offset && rule.corruptAt < offset + chunk.length) {
          out = Buffer.from(chunk);
          out[rule.corruptAt - offset] = out[rule.corruptAt - offset]! ^ 0xff;
        }
        offset += chunk.length;
        if (cut && sent + out.length >= cut.after) {
          res.write(out.subarray(0, cut.after - sent));
          upstreamResponse.destroy();
          // A reset (RST) as a dropped connection gives, or a clean close (FIN) before the body's end.
          const socket = res.socket!;
          setImmediate(() => (cut.how === "reset" ? socket.resetAndDestroy() : socket.end()));
          return;
        }
        sent += out.length;
        res.write(out);
      });
      upstreamResponse.on("end", () => !res.destroyed && res.end());
    });
    forward.on("error", () => answer(502, {}, xmlError("BadGateway", "The test S3 behind the proxy did not answer.")));
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.close = () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return state;
}
