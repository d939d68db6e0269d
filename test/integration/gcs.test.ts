/**
 * gs:// storage with Google's storage library against the Cloud Storage test
 * server (test/servers/gcs-fake.ts): a resumable upload, a listing across
 * pages, a parallel ranged download that survives cut connections and is
 * checked with CRC32C and MD5, and damage refused with nothing left behind.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { makeContext } from "../../src/context.js";
import { UserError } from "../../src/errors.js";
import { gcsStorage, parseGs } from "../../src/storage/gcs.js";
import { storageFor } from "../../src/storage/index.js";
import { loadDocument } from "../servers/google-discovery.js";
import { crc32c, startGcsFake, type GcsFake } from "../servers/gcs-fake.js";
import { cliEnv, runCli, TEST_CACHE } from "../helpers/cli.js";
import { writeTree } from "../helpers/tree.js";
import { fileTimeLimit } from "../helpers/limit.js";

fileTimeLimit(15, import.meta.url);

let fake: GcsFake;
let ctx: ReturnType<typeof makeContext>;

before(async () => {
  fs.mkdirSync(TEST_CACHE, { recursive: true });
  fake = await startGcsFake(loadDocument(TEST_CACHE, "storage.v1"), ["bucket"]);
  ctx = makeContext({ cwd: writeTree({}), env: { HOME: writeTree({}), STORAGE_EMULATOR_HOST: fake.url, GOOGLE_CLOUD_PROJECT: "my-proj" } });
});

after(async () => {
  await fake.close();
});

test("the test server's CRC32C is Cloud Storage's (the published check value of 123456789, and of 32 zero bytes)", () => {
  assert.equal(Buffer.from(crc32c(Buffer.from("123456789")), "base64").readUInt32BE(), 0xe3069283);
  assert.equal(Buffer.from(crc32c(Buffer.alloc(32)), "base64").readUInt32BE(), 0x8a9136aa);
});

test("gs:// locations: bucket and name", () => {
  assert.deepEqual(parseGs("gs://b/runs/j/output/model.tar.gz"), { bucket: "b", name: "runs/j/output/model.tar.gz" });
  assert.deepEqual(parseGs("gs://b"), { bucket: "b", name: "" });
  assert.throws(() => parseGs("gs:///x"), UserError);
});

test("upload, stat, list, and a parallel ranged download that resumes cut ranges and checks CRC32C and MD5", async () => {
  const storage = await gcsStorage(ctx, { rangeSize: 64 * 1024, parallel: 4 });
  const data = crypto.randomBytes(1024 * 1024 + 123);
  const dir = writeTree({ "model.tar.gz": data });
  const sent: Array<[number, number]> = [];
  await storage.upload(path.join(dir, "model.tar.gz"), "gs://bucket/runs/j1/output/model.tar.gz", (done, total) => sent.push([done, total]));
  assert.ok(
    fake.requests.some((r) => r.method === "POST" && r.path.includes("uploadType=resumable")),
    "a resumable session was used",
  );
  assert.deepEqual(sent.at(-1), [data.length, data.length], "the upload's progress ends at its size");
  assert.ok(
    sent.every(([done], i) => done <= data.length && (i === 0 || done >= sent[i - 1]![0])),
    "never past the size, never backwards",
  );
  await storage.upload(path.join(dir, "model.tar.gz"), "gs://bucket/runs/j1/output/output.tar.gz");
  await storage.upload(path.join(dir, "model.tar.gz"), "gs://bucket/runs/j2/output/model.tar.gz");
  const stat = await storage.stat("gs://bucket/runs/j1/output/model.tar.gz");
  assert.equal(stat?.size, data.length);
  assert.equal(await storage.stat("gs://bucket/runs/none"), undefined);
  assert.deepEqual(
    (await storage.list("gs://bucket/runs/")).map((o) => o.location),
    ["gs://bucket/runs/j1/output/model.tar.gz", "gs://bucket/runs/j1/output/output.tar.gz", "gs://bucket/runs/j2/output/model.tar.gz"],
    "all three, across the server's two-object pages",
  );
  fake.cutNext(3, 1000);
  const before = fake.requests.length;
  const out = path.join(writeTree({}), "got", "model.tar.gz");
  let progress = 0;
  await storage.download("gs://bucket/runs/j1/output/model.tar.gz", out, (done) => (progress = done));
  assert.ok(fs.readFileSync(out).equals(data));
  assert.equal(progress, data.length);
  assert.ok(!fs.existsSync(`${out}.partial`) && !fs.existsSync(`${out}.partial.json`));
  const media = fake.requests.slice(before).filter((r) => r.path.includes("alt=media"));
  assert.ok(media.length >= 17 + 3, `${media.length} ranged GETs: 17 ranges and 3 resumed`);
  assert.ok(
    media.every((r) => /^bytes=\d+-\d+$/.test(r.range ?? "") && /generation=\d+/.test(r.path)),
    "every GET is ranged, and of one generation",
  );
  // Resumed ranges start at the first byte not yet received.
  const starts = media.map((r) => Number(/^bytes=(\d+)-/.exec(r.range!)![1]));
  assert.equal(starts.filter((start) => start % (64 * 1024) === 1000).length, 3, "each cut range was asked again from its first missing byte");
});

test("an object damaged at rest is refused, and nothing of it is kept; one without MD5 is checked with CRC32C alone", async () => {
  const storage = await gcsStorage(ctx, { rangeSize: 64 * 1024, parallel: 2 });
  const data = crypto.randomBytes(200_000);
  const dir = writeTree({ "m.tar.gz": data });
  await storage.upload(path.join(dir, "m.tar.gz"), "gs://bucket/bad/model.tar.gz");
  fake.damage("bucket", "bad/model.tar.gz");
  const out = path.join(writeTree({}), "model.tar.gz");
  await assert.rejects(storage.download("gs://bucket/bad/model.tar.gz", out), (err) => err instanceof UserError && /arrived damaged/.test(err.message));
  assert.ok(!fs.existsSync(out) && !fs.existsSync(`${out}.partial`) && !fs.existsSync(`${out}.partial.json`));
  await storage.upload(path.join(dir, "m.tar.gz"), "gs://bucket/composite/model.tar.gz");
  fake.noMd5.add("bucket/composite/model.tar.gz");
  await storage.download("gs://bucket/composite/model.tar.gz", out);
  assert.ok(fs.readFileSync(out).equals(data));
  await assert.rejects(storage.download("gs://bucket/none", out), (err) => err instanceof UserError && /does not exist/.test(err.message));
});

test("objects are files under the server's root (what a Vertex job sees at /gcs): a file put there is an object, a folder is none, an upload is a file", async () => {
  const storage = await gcsStorage(ctx, { rangeSize: 64 * 1024, parallel: 2 });
  assert.deepEqual(fake.buckets, ["bucket"]);
  // Written in two pieces, as a process writes through Cloud Storage FUSE, beside an empty folder.
  const file = path.join(fake.root, "bucket", "disk", "sub", "a.bin");
  fs.mkdirSync(path.join(fake.root, "bucket", "disk", "sub", "empty"), { recursive: true });
  fs.writeFileSync(file, "part one, ");
  fs.appendFileSync(file, "part two");
  assert.deepEqual(
    (await storage.list("gs://bucket/disk/")).map((o) => o.location),
    ["gs://bucket/disk/sub/a.bin"],
  );
  const metadata = (await (await fetch(`${fake.url}/storage/v1/b/bucket/o/${encodeURIComponent("disk/sub/a.bin")}`)).json()) as Record<string, string>;
  assert.equal(metadata.size, "18");
  assert.equal(metadata.crc32c, crc32c(Buffer.from("part one, part two")));
  assert.equal(metadata.contentType, "application/octet-stream");
  assert.equal(metadata.generation, String(fs.statSync(file, { bigint: true }).mtimeNs / 1000n), "its generation is its time in microseconds");
  const out = path.join(writeTree({}), "a.bin");
  await storage.download("gs://bucket/disk/sub/a.bin", out);
  assert.equal(fs.readFileSync(out, "utf8"), "part one, part two");
  // Changed on disk, it is a new generation with new hashes.
  fs.appendFileSync(file, "!");
  const changed = (await (await fetch(`${fake.url}/storage/v1/b/bucket/o/${encodeURIComponent("disk/sub/a.bin")}`)).json()) as Record<string, string>;
  assert.equal(changed.crc32c, crc32c(Buffer.from("part one, part two!")));
  await storage.upload(out, "gs://bucket/disk/up/a.bin");
  assert.equal(fs.readFileSync(path.join(fake.root, "bucket", "disk", "up", "a.bin"), "utf8"), "part one, part two");
});

test("gs:// is a storage like s3:// (storageFor), so the local backend and fetch can use it", async () => {
  const storage = await storageFor("gs://bucket/x", ctx);
  assert.equal(typeof storage.download, "function");
});

test("the local backend writes its model to gs://, and fetch takes it back: by job, by output path (its newest job), and by the archive's URL", async () => {
  const project = writeTree({ "train.py": "open('/opt/ml/model/w.txt', 'w').write('to gcs')\n", "requirements.txt": "" });
  const { env } = cliEnv({ STORAGE_EMULATOR_HOST: fake.url, GOOGLE_CLOUD_PROJECT: "my-proj" });
  const result = await runCli(["fit", "train.py", "--backend", "local", "--config.output_path=gs://bucket/local-runs", "--json"], { cwd: project, env });
  assert.equal(result.code, 0, result.stderr);
  const job = JSON.parse(result.stdout) as { name: string; model: string };
  assert.match(job.model, /^gs:\/\/bucket\/local-runs\/train-\S+\/output\/model\.tar\.gz$/);
  // Off a terminal the upload says, in a plain line, how many bytes went: the object's size.
  const size = (await (await storageFor(job.model, ctx)).stat(job.model))?.size;
  assert.ok(size && size < 1024, `a small archive, its size in bytes (${size})`);
  assert.ok(result.stderr.includes(`\n  Uploading the model to ${job.model}: done, ${size} bytes\n`), result.stderr);
  const byJob = await runCli(["fetch", job.name, "--to", "a"], { cwd: project, env });
  assert.equal(byJob.code, 0, byJob.stderr);
  assert.equal(fs.readFileSync(path.join(project, "a", "w.txt"), "utf8"), "to gcs");
  const byPath = await runCli(["fetch", "gs://bucket/local-runs", "--to", "b"], { cwd: writeTree({}), env });
  assert.equal(byPath.code, 0, byPath.stderr);
  const byUrl = await runCli(["fetch", job.model, "--to", "c"], { cwd: project, env });
  assert.equal(byUrl.code, 0, byUrl.stderr);
  assert.equal(fs.readFileSync(path.join(project, "c", "w.txt"), "utf8"), "to gcs");
});
