/**
 * How a download from S3 is checked, decided as S3 defines its integrity data
 * (AWS S3 User Guide, "Checking object integrity"; botocore's s3 model for
 * HeadObject and GetObjectAttributes):
 * - a stored checksum (CRC64NVME, CRC32, CRC32C, SHA1, SHA256; objects
 *   uploaded since December 2024 carry a full-object CRC64NVME by default) is
 *   the best check: a FULL_OBJECT one covers the whole object, a COMPOSITE one
 *   (shown as "VALUE-N") is the checksum of the parts' checksums;
 * - the ETag is the MD5 of the object (or, "MD5-N", of the parts' MD5s) only
 *   when the object is unencrypted or encrypted with SSE-S3: SSE-KMS and
 *   DSSE-KMS objects have ETags that are not MD5s of their data;
 * - with neither, all that is left is the size and the archive's own CRC;
 * - an SSE-C object cannot be read at all without its key.
 * The decision is one pure function, `chooseVerification`; the digests and
 * their combination are small functions beside it.
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import { pipeline } from "node:stream/promises";
import { Writable } from "node:stream";
import zlib from "node:zlib";
import { loadSdk } from "../sdk.js";

/** The checksum algorithms S3 stores (botocore: ChecksumAlgorithm). */
export const CHECKSUM_ALGORITHMS = ["CRC64NVME", "CRC32", "CRC32C", "SHA1", "SHA256"] as const;
/** One of them. */
export type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number];
/** What a digest is computed with: a stored checksum's algorithm, or MD5 for an ETag. */
export type DigestAlgorithm = ChecksumAlgorithm | "MD5";

/** What S3 says about an object: HeadObject (with ChecksumMode ENABLED), and GetObjectAttributes or a part's HeadObject for multipart objects. */
export interface StoredObject {
  /** Size in bytes. */
  size: number;
  /** The ETag, without quotes. */
  etag: string;
  /** ServerSideEncryption: "AES256" (SSE-S3), "aws:kms", "aws:kms:dsse"; absent when unencrypted. */
  encryption?: string;
  /** True when the object is encrypted with a key of the customer's own (SSE-C). */
  customerKey?: boolean;
  /** The stored checksum, when there is one. */
  checksum?: { algorithm: ChecksumAlgorithm; value: string; type?: "FULL_OBJECT" | "COMPOSITE" };
  /** How many parts a multipart upload had (PartsCount, or the ETag's "-N"). */
  partsCount?: number;
  /** Part sizes in order, when S3 listed them (GetObjectAttributes ObjectParts), with each part's checksum when given. */
  parts?: Array<{ size: number; checksum?: string }>;
  /** The first part's size (HeadObject with PartNumber 1), when asked. */
  firstPartSize?: number;
  /** True when `firstPartSize` is a guess (the store would not say): a mismatch then proves nothing. */
  partSizeGuessed?: boolean;
}

/** How to check a download. */
export type Verification =
  | { kind: "full"; algorithm: DigestAlgorithm; expected: string; what: string }
  | { kind: "parts"; algorithm: DigestAlgorithm; expected: string; what: string; partSizes: number[]; partDigests?: string[]; guessed?: boolean }
  | { kind: "archive"; why: string }
  | { kind: "refuse"; message: string; hint: string };

const MD5_ETAG = /^[0-9a-f]{32}$/;
const MULTIPART_ETAG = /^([0-9a-f]{32})-(\d+)$/;

/** Encryption under which the ETag is still the MD5 of the data: none, or SSE-S3. */
function etagIsMd5(encryption: string | undefined): boolean {
  return encryption === undefined || encryption === "" || encryption === "AES256";
}

/** The sizes of `count` parts of an object of `size` bytes, all `partSize` but the last; undefined when they do not add up. */
export function uniformParts(size: number, partSize: number, count: number): number[] | undefined {
  if (partSize <= 0 || Math.ceil(size / partSize) !== count) return undefined;
  return Array.from({ length: count }, (_, i) => Math.min(partSize, size - i * partSize));
}

const MiB = 1024 * 1024;
/** Part sizes uploaders use (the AWS CLI and SDKs: 8 MiB, then powers of two), tried first when guessing. */
const COMMON_PARTS = [8, 16, 32, 64, 128, 256, 512, 1024, 5, 10, 15, 25, 50, 100].map((mib) => mib * MiB);

/** A likely part size for an object of `size` bytes uploaded in `parts` parts: a common one that gives that many, else the smallest whole MiB that does. */
export function guessPartSize(size: number, parts: number): number | undefined {
  const fits = (partSize: number): boolean => Math.ceil(size / partSize) === parts;
  const common = COMMON_PARTS.find(fits);
  if (common) return common;
  for (let mib = Math.max(1, Math.ceil(size / parts / MiB)); mib <= 5 * 1024; mib++) if (fits(mib * MiB)) return mib * MiB;
  return undefined;
}

/** The part layout of a multipart object of `count` parts, from what S3 said about it; undefined when not known. */
function partLayout(object: StoredObject, count: number): number[] | undefined {
  if (object.parts?.length === count && object.parts.reduce((sum, part) => sum + part.size, 0) === object.size) return object.parts.map((part) => part.size);
  return object.firstPartSize ? uniformParts(object.size, object.firstPartSize, count) : undefined;
}

/** The one decision: which of S3's integrity data checks this object, in the order S3's guide ranks them. */
export function chooseVerification(object: StoredObject): Verification {
  if (object.customerKey) {
    return {
      kind: "refuse",
      message: "it is encrypted with a customer-provided key (SSE-C), and S3 serves such an object only to a request that carries that key",
      hint: "Copy it to an object with SSE-S3 or SSE-KMS encryption (`aws s3 cp` with --sse-c-copy-source and --sse-c-copy-source-key), then fetch that.",
    };
  }
  const checksum = object.checksum;
  if (checksum) {
    const suffix = /^(.*)-(\d+)$/.exec(checksum.value);
    const value = suffix ? suffix[1]! : checksum.value;
    const multipart = (object.partsCount ?? 1) > 1 || MULTIPART_ETAG.test(object.etag);
    // CRC64NVME is full-object only; otherwise an object of parts whose checksum type is not said is taken as composite, the default of multipart uploads.
    const composite = checksum.type === "COMPOSITE" || suffix !== null || (checksum.type === undefined && multipart && checksum.algorithm !== "CRC64NVME");
    const what = `its ${checksum.algorithm} checksum`;
    if (!composite) return { kind: "full", algorithm: checksum.algorithm, expected: value, what };
    const count = suffix ? Number(suffix[2]) : (object.partsCount ?? object.parts?.length ?? 0);
    const partSizes = count > 0 ? partLayout(object, count) : undefined;
    if (partSizes) {
      const partDigests =
        object.parts?.length === count && object.parts.every((part) => part.checksum)
          ? object.parts.map((part) => part.checksum!.replace(/-\d+$/, ""))
          : undefined;
      const guessed = !partDigests && object.parts?.length !== count && object.partSizeGuessed ? { guessed: true } : {};
      return {
        kind: "parts",
        algorithm: checksum.algorithm,
        expected: value,
        what: `its composite ${checksum.algorithm} checksum`,
        partSizes,
        ...(partDigests ? { partDigests } : {}),
        ...guessed,
      };
    }
  }
  if (etagIsMd5(object.encryption)) {
    if (MD5_ETAG.test(object.etag)) return { kind: "full", algorithm: "MD5", expected: object.etag, what: "its ETag (an MD5)" };
    const multipart = MULTIPART_ETAG.exec(object.etag);
    const partSizes = multipart ? partLayout(object, Number(multipart[2])) : undefined;
    if (multipart && partSizes)
      return {
        kind: "parts",
        algorithm: "MD5",
        expected: object.etag,
        what: "its multipart ETag",
        partSizes,
        ...(object.parts?.length !== partSizes.length && object.partSizeGuessed ? { guessed: true } : {}),
      };
    if (multipart) return { kind: "archive", why: "the part size behind its multipart ETag is not known" };
    return { kind: "archive", why: "its ETag is not an MD5" };
  }
  const kind = object.encryption === "aws:kms:dsse" ? "DSSE-KMS" : object.encryption?.startsWith("aws:kms") ? "SSE-KMS" : `${object.encryption}`;
  return { kind: "archive", why: `it is encrypted with ${kind}, so its ETag is not an MD5, and it has no stored checksum` };
}

/** An incremental digest; `digest` gives S3's encoding of it (base64 for checksums, hex for MD5). */
export interface Digest {
  update(chunk: Uint8Array): void;
  digest(): Promise<Buffer>;
}

/** A fresh digest for `algorithm`. */
export async function makeDigest(algorithm: DigestAlgorithm): Promise<Digest> {
  if (algorithm === "MD5" || algorithm === "SHA1" || algorithm === "SHA256") {
    const hash = createHash(algorithm === "MD5" ? "md5" : algorithm === "SHA1" ? "sha1" : "sha256");
    return { update: (chunk) => hash.update(chunk), digest: async () => hash.digest() };
  }
  if (algorithm === "CRC32") {
    let crc = 0;
    return {
      update: (chunk) => (crc = zlib.crc32(chunk, crc)),
      digest: async () => {
        const out = Buffer.alloc(4);
        out.writeUInt32BE(crc >>> 0);
        return out;
      },
    };
  }
  if (algorithm === "CRC32C") {
    // Native (SSE 4.2 / ARMv8 CRC instructions, prebuilt per platform): the SDK's JavaScript CRC32C runs at a fifteenth of its speed (5 s per GiB here).
    const { crc32c } = loadSdk<typeof import("@node-rs/crc32")>("@node-rs/crc32");
    let crc = 0;
    return {
      update: (chunk) => (crc = crc32c(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength), crc)),
      digest: async () => {
        const out = Buffer.alloc(4);
        out.writeUInt32BE(crc >>> 0);
        return out;
      },
    };
  }
  // The SDK's own CRC64NVME, the one it checks S3's answers with (JavaScript, 2.4 s per GiB here: digested in a worker beside the download).
  const crc = loadSdk<typeof import("@aws-sdk/checksums/crc")>("@aws-sdk/checksums/crc");
  const sum = new crc.Crc64NvmeJs();
  return { update: (chunk) => sum.update(chunk), digest: async () => Buffer.from(await sum.digest()) };
}

/** A digest as S3 writes it: hex for MD5 (ETags), base64 for checksums. */
export function encodeDigest(algorithm: DigestAlgorithm, digest: Buffer): string {
  return algorithm === "MD5" ? digest.toString("hex") : digest.toString("base64");
}

/** The value S3 gives an object of parts: the digest of the parts' digests, with "-N" after an MD5 (ETag). */
export async function combineParts(algorithm: DigestAlgorithm, partDigests: readonly Buffer[]): Promise<string> {
  const outer = await makeDigest(algorithm);
  outer.update(Buffer.concat(partDigests));
  const value = encodeDigest(algorithm, await outer.digest());
  return algorithm === "MD5" ? `${value}-${partDigests.length}` : value;
}

/** What a finished download's check found: good, damaged (with which part when known), or nothing could be checked. */
export type CheckResult = { ok: true } | { ok: false; damagedPart?: number };

/** Compare the digests of a finished download with what `verification` expects. */
export async function checkDigests(verification: Verification, digests: { whole?: Buffer; parts?: readonly Buffer[] }): Promise<CheckResult> {
  if (verification.kind === "full")
    return digests.whole && encodeDigest(verification.algorithm, digests.whole) === verification.expected ? { ok: true } : { ok: false };
  if (verification.kind !== "parts" || !digests.parts) return { ok: false };
  const damaged = verification.partDigests?.findIndex((expected, i) => encodeDigest(verification.algorithm, digests.parts![i]!) !== expected) ?? -1;
  if (damaged >= 0) return { ok: false, damagedPart: damaged };
  return (await combineParts(verification.algorithm, digests.parts)) === verification.expected ? { ok: true } : { ok: false };
}

/**
 * The archive's own check, for an object S3 gives nothing to check against:
 * a gzip stream must inflate to its end with its CRC32 and length trailer
 * matching (zlib checks both); a plain tar must parse with every header's
 * checksum right. Resolves to undefined when sound, else why not.
 */
export async function checkArchive(file: string): Promise<string | undefined> {
  const handle = await fs.promises.open(file, "r");
  const head = Buffer.alloc(512);
  const { bytesRead } = await handle.read(head, 0, 512, 0);
  await handle.close();
  const sink = new Writable({ write: (_chunk, _encoding, done) => done() });
  if (bytesRead >= 2 && head[0] === 0x1f && head[1] === 0x8b) {
    try {
      await pipeline(fs.createReadStream(file, { highWaterMark: 1024 * 1024 }), zlib.createGunzip(), sink);
      return undefined;
    } catch (err) {
      return `its gzip stream is broken (${(err as Error).message})`;
    }
  }
  if (bytesRead === 512 && head.toString("latin1", 257, 262) === "ustar") {
    const tar = await import("tar");
    let problem: string | undefined;
    try {
      await tar.t({ file, strict: true, onentry: () => {}, onwarn: (_code: string, message: string) => (problem ??= message) });
    } catch (err) {
      problem ??= (err as Error).message;
    }
    return problem ? `its tar headers are broken (${problem})` : undefined;
  }
  return "it is neither a gzip stream nor a tar archive, which could have been checked on their own";
}
