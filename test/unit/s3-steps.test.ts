/**
 * The named steps of an S3 download, each on its own: the one decision of
 * which integrity data checks an object (S3 User Guide, "Checking object
 * integrity"), the digests and their combination for objects of parts, the
 * archive's own check, the range plan, and a range fetched through cuts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";
import {
  checkArchive,
  checkDigests,
  chooseVerification,
  combineParts,
  encodeDigest,
  makeDigest,
  uniformParts,
  type StoredObject,
} from "../../src/storage/s3-verify.js";
import { fetchRange, isTransient, planRanges, type RangeSource } from "../../src/storage/s3-ranges.js";
import { redirectRegion } from "../../src/storage/s3.js";
import { UserError } from "../../src/errors.js";
import { writeTree } from "../helpers/tree.js";
import { fileTimeLimit } from "../helpers/limit.js";

fileTimeLimit(3, import.meta.url);

const MiB = 1024 * 1024;
const md5 = (data: Buffer): string => createHash("md5").update(data).digest("hex");

test("the decision: a stored checksum first; full-object or composite as S3 says; CRC64NVME is always full-object", () => {
  const base: StoredObject = { size: 20 * MiB, etag: `${"a".repeat(32)}-3` };
  assert.deepEqual(chooseVerification({ size: 10, etag: "a".repeat(32), checksum: { algorithm: "CRC64NVME", value: "AAAAAAAAAAA=" } }), {
    kind: "full",
    algorithm: "CRC64NVME",
    expected: "AAAAAAAAAAA=",
    what: "its CRC64NVME checksum",
  });
  const composite = chooseVerification({ ...base, checksum: { algorithm: "CRC32", value: "oC8MTw==-3" }, firstPartSize: 8 * MiB });
  assert.deepEqual(composite, {
    kind: "parts",
    algorithm: "CRC32",
    expected: "oC8MTw==",
    what: "its composite CRC32 checksum",
    partSizes: [8 * MiB, 8 * MiB, 4 * MiB],
  });
  assert.equal(chooseVerification({ ...base, checksum: { algorithm: "CRC32", value: "x", type: "FULL_OBJECT" } }).kind, "full");
  assert.equal(chooseVerification({ ...base, checksum: { algorithm: "CRC64NVME", value: "x" }, firstPartSize: 8 * MiB }).kind, "full");
  // S3's own list of parts wins over a uniform guess, and brings each part's checksum.
  const listed = chooseVerification({
    ...base,
    checksum: { algorithm: "SHA256", value: "s", type: "COMPOSITE" },
    parts: [
      { size: 10 * MiB, checksum: "p1" },
      { size: 5 * MiB, checksum: "p2" },
      { size: 5 * MiB, checksum: "p3" },
    ],
  });
  assert.deepEqual(listed, {
    kind: "parts",
    algorithm: "SHA256",
    expected: "s",
    what: "its composite SHA256 checksum",
    partSizes: [10 * MiB, 5 * MiB, 5 * MiB],
    partDigests: ["p1", "p2", "p3"],
  });
});

test("the decision: the ETag is an MD5 only unencrypted or with SSE-S3; KMS and DSSE-KMS without a checksum fall to the archive's own check; SSE-C is refused", () => {
  const etag = "0123456789abcdef0123456789abcdef";
  assert.deepEqual(chooseVerification({ size: 5, etag }), { kind: "full", algorithm: "MD5", expected: etag, what: "its ETag (an MD5)" });
  assert.equal(chooseVerification({ size: 5, etag, encryption: "AES256" }).kind, "full");
  for (const encryption of ["aws:kms", "aws:kms:dsse"]) {
    const chosen = chooseVerification({ size: 5, etag, encryption });
    assert.equal(chosen.kind, "archive", encryption);
    assert.match((chosen as { why: string }).why, encryption === "aws:kms" ? /SSE-KMS/ : /DSSE-KMS/);
    // …but a stored checksum still verifies a KMS object.
    assert.equal(chooseVerification({ size: 5, etag, encryption, checksum: { algorithm: "CRC32", value: "x" } }).kind, "full");
  }
  assert.deepEqual(chooseVerification({ size: 20 * MiB, etag: `${etag}-3`, firstPartSize: 8 * MiB }), {
    kind: "parts",
    algorithm: "MD5",
    expected: `${etag}-3`,
    what: "its multipart ETag",
    partSizes: [8 * MiB, 8 * MiB, 4 * MiB],
  });
  assert.equal(
    (chooseVerification({ size: 20 * MiB, etag: `${etag}-3`, firstPartSize: 8 * MiB, partSizeGuessed: true }) as { guessed?: boolean }).guessed,
    true,
    "a guessed part size is marked, so a mismatch proves nothing",
  );
  assert.equal(chooseVerification({ size: 20 * MiB, etag: `${etag}-3` }).kind, "archive", "parts of unknown size");
  assert.equal(chooseVerification({ size: 5, etag, customerKey: true }).kind, "refuse");
  assert.equal(chooseVerification({ size: 5, etag, customerKey: true, checksum: { algorithm: "CRC32", value: "x" } }).kind, "refuse");
});

test("digests are S3's encodings: CRC64NVME, CRC32C and CRC32 check values; a composite is the digest of the parts' digests", async () => {
  const check = Buffer.from("123456789");
  const hex = async (algorithm: "CRC64NVME" | "CRC32C" | "CRC32"): Promise<string> => {
    const digest = await makeDigest(algorithm);
    digest.update(check.subarray(0, 4));
    digest.update(check.subarray(4));
    return (await digest.digest()).toString("hex");
  };
  // The standard check values of each CRC over "123456789".
  assert.equal(await hex("CRC64NVME"), "ae8b14860a799888");
  assert.equal(await hex("CRC32C"), "e3069283");
  assert.equal(await hex("CRC32"), "cbf43926");
  // A multipart ETag: the MD5 of the parts' MD5s, "-N".
  const parts = [randomBytes(1000), randomBytes(500)];
  const expected = `${createHash("md5")
    .update(Buffer.concat(parts.map((p) => createHash("md5").update(p).digest())))
    .digest("hex")}-2`;
  assert.equal(
    await combineParts(
      "MD5",
      parts.map((p) => createHash("md5").update(p).digest()),
    ),
    expected,
  );
  assert.equal(encodeDigest("CRC32", Buffer.from([0xcb, 0xf4, 0x39, 0x26])), "y/Q5Jg==");
});

test("checking digests: a match, a mismatch, and the damaged part named when S3 gave each part's checksum", async () => {
  const parts = [randomBytes(100), randomBytes(100)];
  const digests = await Promise.all(
    parts.map(async (p) => {
      const d = await makeDigest("SHA256");
      d.update(p);
      return d.digest();
    }),
  );
  const expected = await combineParts("SHA256", digests);
  const verification = {
    kind: "parts" as const,
    algorithm: "SHA256" as const,
    expected,
    what: "x",
    partSizes: [100, 100],
    partDigests: digests.map((d) => d.toString("base64")),
  };
  assert.deepEqual(await checkDigests(verification, { parts: digests }), { ok: true });
  const wrong = [digests[0]!, Buffer.alloc(32)];
  assert.deepEqual(await checkDigests(verification, { parts: wrong }), { ok: false, damagedPart: 1 });
  assert.deepEqual(
    await checkDigests({ kind: "full", algorithm: "MD5", expected: md5(parts[0]!), what: "x" }, { whole: createHash("md5").update(parts[0]!).digest() }),
    { ok: true },
  );
  assert.deepEqual(await checkDigests({ kind: "full", algorithm: "MD5", expected: md5(parts[0]!), what: "x" }, { whole: Buffer.alloc(16) }), { ok: false });
});

test("the archive's own check: a sound gzip passes; a changed byte, a cut end and a non-archive do not", async () => {
  const dir = writeTree({});
  const good = zlib.gzipSync(randomBytes(200_000));
  fs.writeFileSync(path.join(dir, "good.gz"), good);
  assert.equal(await checkArchive(path.join(dir, "good.gz")), undefined);
  const flipped = Buffer.from(good);
  flipped[flipped.length - 6] = flipped[flipped.length - 6]! ^ 1; // in the CRC32 trailer
  fs.writeFileSync(path.join(dir, "flipped.gz"), flipped);
  assert.match((await checkArchive(path.join(dir, "flipped.gz")))!, /gzip stream is broken/);
  fs.writeFileSync(path.join(dir, "cut.gz"), good.subarray(0, good.length - 100));
  assert.match((await checkArchive(path.join(dir, "cut.gz")))!, /gzip stream is broken/);
  fs.writeFileSync(path.join(dir, "data.bin"), randomBytes(1000));
  assert.match((await checkArchive(path.join(dir, "data.bin")))!, /neither a gzip stream nor a tar archive/);
});

test("the range plan: the upload's parts when given, else fixed-size ranges; uniform parts must add up", () => {
  assert.deepEqual(planRanges(10, undefined, 4), [
    { index: 0, start: 0, end: 3 },
    { index: 1, start: 4, end: 7 },
    { index: 2, start: 8, end: 9 },
  ]);
  assert.deepEqual(planRanges(10, [6, 4], 4), [
    { index: 0, start: 0, end: 5 },
    { index: 1, start: 6, end: 9 },
  ]);
  assert.deepEqual(uniformParts(10, 4, 3), [4, 4, 2]);
  assert.equal(uniformParts(10, 4, 2), undefined);
});

test("transient or not: resets and server errors are retried; refusals, stops and local faults are not", () => {
  assert.ok(isTransient(Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" })));
  assert.ok(isTransient(new Error("aborted")));
  assert.ok(isTransient({ name: "InternalError", $metadata: { httpStatusCode: 500 } }));
  assert.ok(!isTransient({ name: "AccessDenied", $metadata: { httpStatusCode: 403 } }));
  assert.ok(!isTransient({ name: "AbortError" }));
  assert.ok(!isTransient(Object.assign(new Error("no space"), { code: "ENOSPC" })));
  assert.equal(redirectRegion({ $metadata: { httpStatusCode: 301 }, $response: { headers: { "x-amz-bucket-region": "eu-west-1" } } }), "eu-west-1");
  assert.equal(redirectRegion({ name: "AuthorizationHeaderMalformed", Region: "ap-south-1", $metadata: { httpStatusCode: 400 } }), "ap-south-1");
  assert.equal(redirectRegion({ name: "AccessDenied", $metadata: { httpStatusCode: 403 } }), undefined);
});

test("a range cut twice goes on from its first missing byte, digested once; one that never brings a byte gives up with a UserError", async () => {
  const data = randomBytes(3 * MiB + 5);
  const asked: number[] = [];
  let cuts = 2;
  const source: RangeSource = async (start, end) => {
    asked.push(start);
    const slice = data.subarray(start, end + 1);
    const cut = cuts-- > 0;
    return {
      body: (async function* () {
        yield slice.subarray(0, 700_000);
        if (cut) throw Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" });
        yield slice.subarray(700_000);
      })(),
    };
  };
  const file = path.join(writeTree({}), "out");
  fs.writeFileSync(file, Buffer.alloc(data.length));
  const handle = await fs.promises.open(file, "r+");
  const digest = await makeDigest("MD5");
  await fetchRange(source, { index: 0, start: 0, end: data.length - 1 }, handle, { digest, what: "x", backoffMs: 1 });
  await handle.close();
  assert.deepEqual(asked, [0, 700_000, 1_400_000]);
  assert.ok(fs.readFileSync(file).equals(data));
  assert.equal((await digest.digest()).toString("hex"), md5(data));

  const dead: RangeSource = async () => ({
    body: (async function* () {
      yield* [];
      throw Object.assign(new Error("socket hang up"), { code: "ECONNRESET" });
    })(),
  });
  const again = await fs.promises.open(file, "r+");
  await assert.rejects(
    fetchRange(dead, { index: 0, start: 0, end: 9 }, again, { what: "s3://b/k", attempts: 3, backoffMs: 1 }),
    (err: unknown) =>
      err instanceof UserError &&
      err.exitCode === 1 &&
      /kept failing while downloading s3:\/\/b\/k \(ECONNRESET, 3 tries in a row with no progress\)/.test(err.message),
  );
  await again.close();
});
