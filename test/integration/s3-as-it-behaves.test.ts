/**
 * `fetch s3://…` against S3 as it really behaves where the test servers do
 * not: moto behind the S3 proxy (test/servers/s3-proxy.ts) that answers as
 * S3 does for KMS-encrypted objects (ETags that are not MD5s), objects with no
 * stored checksum, SSE-C objects, buckets in another region, and connections
 * cut in the middle of a range. Objects are put with the AWS CLI (which
 * stores a CRC32 checksum, as current AWS tools do).
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { packFolder } from "../../src/storage/archive.js";
import { cliEnv, runCli } from "../helpers/cli.js";
import { listTree, writeTree } from "../helpers/tree.js";
import { awsEnv, startMoto, startS3rver, type Moto, type S3rverHandle } from "../helpers/servers.js";
import { startS3Proxy, type S3Proxy } from "../servers/s3-proxy.js";
import { fileTimeLimit } from "../helpers/limit.js";

fileTimeLimit(15, import.meta.url);

const execFileAsync = promisify(execFile);
let moto: Moto;
let proxy: S3Proxy;
let s3rver: S3rverHandle;
let s3rverProxy: S3Proxy;

/** The AWS CLI straight at the server (the test's own hands); `extra` are its s3 arguments. */
async function aws(url: string, ...args: string[]): Promise<string> {
  const env = url === s3rver?.url ? awsEnv(url, "S3RVER", "S3RVER") : awsEnv(url);
  const { stdout } = await execFileAsync("aws", ["--endpoint-url", url, ...args], { env: { ...process.env, ...env }, encoding: "utf8" });
  return stdout;
}

before(async () => {
  [moto, s3rver] = await Promise.all([startMoto(), startS3rver(["signed"])]);
  [proxy, s3rverProxy] = await Promise.all([startS3Proxy(moto.url), startS3Proxy(s3rver.url)]);
  await aws(moto.url, "s3", "mb", "s3://bucket");
  await aws(moto.url, "s3", "mb", "s3://far-away");
});

after(async () => {
  await Promise.all([proxy?.close(), s3rverProxy?.close()]);
  await Promise.all([moto?.stop(), s3rver?.stop()]);
});

/** A model.tar.gz of `bytes` random bytes in weights.bin (random, so gzip cannot shrink it), put at s3://bucket/KEY; returns the archive's bytes. */
async function putModel(key: string, bytes: number, options: { multipart?: boolean; url?: string; bucket?: string } = {}): Promise<Buffer> {
  const dir = writeTree({ "weights.bin": randomBytes(bytes) });
  const archive = path.join(writeTree({}), "model.tar.gz");
  await packFolder(dir, archive);
  const url = options.url ?? moto.url;
  const location = `s3://${options.bucket ?? "bucket"}/${key}`;
  // `aws s3 cp` uploads in 8 MiB parts above 8 MiB; put-object is always one part.
  if (options.multipart ?? bytes > 8 * 1024 * 1024) await aws(url, "s3", "cp", archive, location);
  else await aws(url, "s3api", "put-object", "--bucket", options.bucket ?? "bucket", "--key", key, "--body", archive);
  return fs.readFileSync(archive);
}

/** A GetObject (the SDK marks it ?x-id=GetObject), not GetObjectAttributes (?attributes). */
function isGetObject(request: S3Proxy["requests"][number]): boolean {
  return request.method === "GET" && request.query.includes("x-id=GetObject");
}

/** `fetch LOCATION --no-extract` through `via`, in a fresh folder; the result and the folder. */
async function fetchRaw(location: string, via: S3Proxy = proxy, extra: string[] = []): Promise<{ code: number | null; stderr: string; cwd: string }> {
  const cwd = writeTree({});
  const env = via === s3rverProxy ? awsEnv(via.url, "S3RVER", "S3RVER") : awsEnv(via.url);
  const result = await runCli(["fetch", location, "--no-extract", ...extra], { cwd, env: cliEnv(env).env });
  return { code: result.code, stderr: result.stderr, cwd };
}

for (const encryption of ["aws:kms", "aws:kms:dsse"] as const) {
  for (const multipart of [false, true]) {
    test(`${encryption}, ${multipart ? "multipart" : "single-part"}: an ETag that is not an MD5 is not taken for one; the stored checksum verifies the download`, async () => {
      const key = `kms/${encryption}-${multipart}/model.tar.gz`;
      const body = await putModel(key, multipart ? 20 * 1024 * 1024 : 300_000);
      proxy.objects.set(`bucket/${key}`, { encryption });
      const { code, stderr, cwd } = await fetchRaw(`s3://bucket/${key}`);
      assert.equal(code, 0, stderr);
      assert.ok(fs.readFileSync(path.join(cwd, "model.tar.gz")).equals(body));
      assert.doesNotMatch(stderr, /no usable checksum/, "the stored checksum was used");

      // The same bytes damaged in transit are caught by that checksum, and nothing is kept.
      proxy.objects.set(`bucket/${key}`, { encryption, corruptAt: 1000 });
      const damaged = await fetchRaw(`s3://bucket/${key}`);
      assert.equal(damaged.code, 1, damaged.stderr);
      assert.match(damaged.stderr, /arrived damaged: it does not match its (composite )?CRC32 checksum; the download was thrown away/);
      assert.deepEqual(listTree(damaged.cwd), []);
    });
  }
}

test("aws:kms with no stored checksum (an older object): size and the gzip stream's own CRC verify it; a corrupt one is never kept, with or without --no-extract", async () => {
  const key = "kms-old/model.tar.gz";
  const body = await putModel(key, 3 * 1024 * 1024);
  proxy.objects.set(`bucket/${key}`, { encryption: "aws:kms", noChecksum: true });
  const good = await fetchRaw(`s3://bucket/${key}`);
  assert.equal(good.code, 0, good.stderr);
  assert.ok(fs.readFileSync(path.join(good.cwd, "model.tar.gz")).equals(body));
  assert.match(
    good.stderr,
    /no usable checksum in S3 \(it is encrypted with SSE-KMS, so its ETag is not an MD5, and it has no stored checksum\); its size and its archive's own checks were verified instead/,
  );

  proxy.objects.set(`bucket/${key}`, { encryption: "aws:kms", noChecksum: true, corruptAt: body.length - 4 }); // inside the gzip trailer's length field
  const raw = await fetchRaw(`s3://bucket/${key}`);
  assert.equal(raw.code, 1, raw.stderr);
  assert.match(raw.stderr, /could not be verified: S3 keeps no usable checksum for it .* and its gzip stream is broken .*; the download was thrown away/);
  assert.deepEqual(listTree(raw.cwd), [], "--no-extract kept nothing");

  proxy.objects.set(`bucket/${key}`, { encryption: "aws:kms", noChecksum: true, corruptAt: Math.floor(body.length / 2) });
  const cwd = writeTree({});
  const extracted = await runCli(["fetch", `s3://bucket/${key}`, "--to", "m"], { cwd, env: cliEnv(awsEnv(proxy.url)).env });
  assert.equal(extracted.code, 1, extracted.stderr);
  assert.deepEqual(listTree(cwd), [], "nothing extracted, nothing left");
});

for (const multipart of [false, true]) {
  test(`no stored checksum and no encryption (${multipart ? "multipart" : "single-part"}): the ETag is the MD5 check, and a changed byte is caught by it`, async () => {
    const key = `plain-old-${multipart}/model.tar.gz`;
    const body = await putModel(key, multipart ? 20 * 1024 * 1024 : 200_000);
    proxy.objects.set(`bucket/${key}`, { noChecksum: true });
    const good = await fetchRaw(`s3://bucket/${key}`);
    assert.equal(good.code, 0, good.stderr);
    assert.ok(fs.readFileSync(path.join(good.cwd, "model.tar.gz")).equals(body));
    proxy.objects.set(`bucket/${key}`, { noChecksum: true, corruptAt: body.length - 100 });
    const bad = await fetchRaw(`s3://bucket/${key}`);
    assert.equal(bad.code, 1, bad.stderr);
    assert.match(bad.stderr, multipart ? /arrived damaged: it does not match its multipart ETag/ : /arrived damaged: it does not match its ETag \(an MD5\)/);
  });
}

test("SSE-C: refused at once with what to do, nothing downloaded", async () => {
  const key = "ssec/model.tar.gz";
  await putModel(key, 1000);
  proxy.objects.set(`bucket/${key}`, { customerKey: true });
  const before = proxy.requests.length;
  const { code, stderr, cwd } = await fetchRaw(`s3://bucket/${key}`);
  assert.equal(code, 1, stderr);
  assert.match(
    stderr,
    /error: Cannot fetch s3:\/\/bucket\/ssec\/model\.tar\.gz: it is encrypted with a customer-provided key \(SSE-C\).*\nhint: Copy it to an object with SSE-S3 or SSE-KMS encryption/,
  );
  assert.ok(
    proxy.requests.slice(before).some((r) => r.method === "HEAD"),
    "it was looked at",
  );
  assert.ok(!proxy.requests.slice(before).some(isGetObject), "no GET of the object");
  assert.deepEqual(listTree(cwd), []);
});

test("a bucket in another region: followed there as the AWS CLI does, and remembered (one redirect, not one per range)", async () => {
  const key = "runs/job-1/output/model.tar.gz";
  const body = await putModel(key, 20 * 1024 * 1024, { bucket: "far-away" });
  proxy.bucketRegions.set("far-away", "eu-west-1");
  const before = proxy.requests.length;
  const cwd = writeTree({});
  const result = await runCli(["fetch", "s3://far-away/runs", "--no-extract", "--json"], { cwd, env: cliEnv(awsEnv(proxy.url)).env });
  assert.equal(result.code, 0, result.stderr);
  assert.ok(fs.readFileSync(path.join(cwd, "model.tar.gz")).equals(body));
  const seen = proxy.requests.slice(before);
  const refused = seen.filter((r) => r.status === 301 || r.status === 400);
  assert.ok(refused.length >= 1 && refused.length <= 3, `the wrong region was tried ${refused.length} times`);
  const ranges = seen.filter(isGetObject);
  assert.ok(ranges.length >= 3 && ranges.every((r) => r.region === "eu-west-1" && r.status === 206), "every range was asked in eu-west-1");
});

for (const how of ["reset", "close"] as const) {
  test(`connections ${how === "reset" ? "reset" : "closed early"} in the middle of ranges: each range resumes from its first missing byte and the download is verified`, async () => {
    const key = `cut-${how}/model.tar.gz`;
    const body = await putModel(key, 20 * 1024 * 1024);
    proxy.objects.set(`bucket/${key}`, { cut: { times: 4, after: 3 * 1024 * 1024 + 17, how } });
    const before = proxy.requests.length;
    const { code, stderr, cwd } = await fetchRaw(`s3://bucket/${key}`);
    assert.equal(code, 0, stderr);
    assert.ok(fs.readFileSync(path.join(cwd, "model.tar.gz")).equals(body));
    assert.deepEqual(listTree(cwd), ["model.tar.gz"], "no partial files are left");
    assert.equal(proxy.objects.get(`bucket/${key}`)!.cut!.times, 0, "the cuts happened");
    const gets = proxy.requests.slice(before).filter(isGetObject);
    // The proxy spends a cut on each of the first four ranged GETs; the three first ones are surely cut (each part is longer than the cut),
    // a fourth only when it still had more than the cut's length to send.
    assert.ok(gets.length >= 3 + 3, `the cut ranges were asked again (${gets.length} GETs)`);
    const starts = gets.map((r) => Number(/bytes=(\d+)-/.exec(r.range ?? "")?.[1]));
    const part = 8 * 1024 * 1024;
    const cutAt = 3 * 1024 * 1024 + 17;
    // A resumed range starts inside its part, at the first byte the client lacks: exactly where a clean close cut it;
    // at or before that after a reset, which also throws away what was still in flight (TCP's RST discards unread data).
    // A resumed range may be cut again: within each part, every start is at most one cut past the one before it.
    const byPart = new Map<number, number[]>();
    for (const start of starts) byPart.set(Math.floor(start / part), [...(byPart.get(Math.floor(start / part)) ?? []), start]);
    const steps = [...byPart.values()].flatMap((list) =>
      list
        .sort((a, b) => a - b)
        .slice(1)
        .map((start, i) => start - list[i]!),
    );
    assert.ok(
      steps.some((step) => step > 0) && steps.every((step) => step >= 0 && step <= cutAt),
      `each cut range went on from its first missing byte (${starts.join(", ")})`,
    );
    if (how === "close")
      assert.ok(
        steps.some((step) => step === cutAt),
        `after a clean close, from exactly the cut (${starts.join(", ")})`,
      );
  });
}

test("a connection that never brings a byte: a clear error (exit 1, not a bug), and what came down is kept to resume", async () => {
  const key = "always-cut/model.tar.gz";
  const body = await putModel(key, 20 * 1024 * 1024);
  proxy.objects.set(`bucket/${key}`, { cut: { times: 1000, after: 0, how: "reset" } });
  const { code, stderr, cwd } = await fetchRaw(`s3://bucket/${key}`);
  assert.equal(code, 1, stderr);
  assert.match(
    stderr,
    /error: The connection to S3 kept failing while downloading s3:\/\/bucket\/always-cut\/model\.tar\.gz \(.*5 tries in a row with no progress\)\.\nhint: Check the network and fetch again/,
  );
  assert.doesNotMatch(stderr, /hit a bug/);
  proxy.objects.delete(`bucket/${key}`);
  const again = await runCli(["fetch", `s3://bucket/${key}`, "--no-extract"], { cwd, env: cliEnv(awsEnv(proxy.url)).env });
  assert.equal(again.code, 0, again.stderr);
  assert.ok(fs.readFileSync(path.join(cwd, "model.tar.gz")).equals(body));
});

test("s3rver behind the proxy (signatures checked through it): a KMS object with a cut range comes down verified", async () => {
  const key = "runs/kms/model.tar.gz";
  const body = await putModel(key, 12 * 1024 * 1024, { url: s3rver.url, bucket: "signed" });
  s3rverProxy.objects.set(`signed/${key}`, { encryption: "aws:kms", cut: { times: 1, after: 1024 * 1024, how: "reset" } });
  const { code, stderr, cwd } = await fetchRaw(`s3://signed/${key}`, s3rverProxy);
  assert.equal(code, 0, stderr);
  assert.ok(fs.readFileSync(path.join(cwd, "model.tar.gz")).equals(body));
});
