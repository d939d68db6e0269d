/**
 * `fetch` where users make it hard: several fetches into one folder at once, a
 * disk too small for the download (found before it starts) or one that fills
 * up while it runs (on a 20 MiB tmpfs), Ctrl-C during extraction, and hints
 * that promise a resume only where one can help. S3 is s3rver, Cloud Storage
 * the test server (test/servers/gcs-fake.ts).
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import { makeContext } from "../../src/context.js";
import { UserError } from "../../src/errors.js";
import { fetch } from "../../src/fetch.js";
import { extractArchive, packFolder } from "../../src/storage/archive.js";
import { gcsStorage } from "../../src/storage/gcs.js";
import { s3Storage } from "../../src/storage/s3.js";
import type { Storage } from "../../src/storage/types.js";
import { loadDocument } from "../servers/google-discovery.js";
import { startGcsFake, type GcsFake } from "../servers/gcs-fake.js";
import { TEST_CACHE } from "../helpers/cli.js";
import { awsEnv, startS3rver, type S3rverHandle } from "../helpers/servers.js";
import { writeTree } from "../helpers/tree.js";
import { fileTimeLimit } from "../helpers/limit.js";

fileTimeLimit(5, import.meta.url);

const MiB = 1024 * 1024;
let s3rver: S3rverHandle;
let gcs: GcsFake;
let s3: Storage;
let gs: Storage;
/** A 20 MiB tmpfs: a disk the tests can fill (the tests run as root, as CI does). */
const small = fs.mkdtempSync(path.join(os.tmpdir(), "alekseylearn-small-disk-"));

before(async () => {
  fs.mkdirSync(TEST_CACHE, { recursive: true });
  [s3rver, gcs] = await Promise.all([startS3rver(["bucket"]), startGcsFake(loadDocument(TEST_CACHE, "storage.v1"), ["bucket"])]);
  const cwd = writeTree({});
  s3 = await s3Storage(makeContext({ cwd, env: { ...awsEnv(s3rver.url, "S3RVER", "S3RVER"), HOME: writeTree({}) } }), { partSize: MiB, parallel: 2 });
  gs = await gcsStorage(makeContext({ cwd, env: { HOME: writeTree({}), STORAGE_EMULATOR_HOST: gcs.url, GOOGLE_CLOUD_PROJECT: "p" } }), {
    rangeSize: MiB,
    parallel: 2,
  });
  execFileSync("mount", ["-t", "tmpfs", "-o", "size=20m", "tmpfs", small]);
});

after(async () => {
  execFileSync("umount", ["-l", small]); // lazily: a file a failed download left open must not keep the disk mounted
  fs.rmSync(small, { recursive: true, force: true });
  await Promise.all([s3rver.stop(), gcs.close()]);
});

/** A model.tar.gz of `bytes` incompressible bytes, in a fresh folder. */
async function modelArchive(bytes: number): Promise<string> {
  const archive = path.join(writeTree({}), "model.tar.gz");
  await packFolder(writeTree({ "weights.bin": randomBytes(bytes), "config.json": "{}" }), archive);
  return archive;
}

/** Whatever is on the small disk, gone. */
function emptySmallDisk(): void {
  for (const name of fs.readdirSync(small)) fs.rmSync(path.join(small, name), { recursive: true, force: true });
}

test("four fetches of one archive into one folder at once: each waits for the one before, all succeed, and the folder ends whole", async () => {
  const archive = await modelArchive(3 * MiB);
  const cwd = writeTree({});
  const waits: string[] = [];
  const ctx = makeContext({ cwd, env: {}, reporter: { info: (message) => waits.push(message), warn: () => {}, jobLine: () => {} } });
  const results = await Promise.all([1, 2, 3, 4].map(() => fetch(archive, ctx, { to: "model" })));
  for (const result of results) assert.deepEqual(result.files, ["config.json", "weights.bin"]);
  assert.deepEqual(fs.readdirSync(path.join(cwd, "model")).sort(), ["config.json", "weights.bin"], "no scratch folder, lock or staging left");
  assert.ok(
    waits.some((message) => /^Waiting for another fetch into .*model \(process \d+\) to finish…$/.test(message)),
    waits.join("\n"),
  );
});

test("a download larger than the free space is refused before it starts, naming both sizes; nothing is left (S3 and Cloud Storage)", async () => {
  const archive = await modelArchive(24 * MiB);
  await s3.upload(archive, "s3://bucket/big/model.tar.gz");
  await gs.upload(archive, "gs://bucket/big/model.tar.gz");
  for (const [storage, location] of [
    [s3, "s3://bucket/big/model.tar.gz"],
    [gs, "gs://bucket/big/model.tar.gz"],
  ] as const) {
    emptySmallDisk();
    const file = path.join(small, "scratch", "model.tar.gz");
    await assert.rejects(storage.download(location, file), (err: unknown) => {
      assert.ok(err instanceof UserError, String(err));
      assert.match(err.message, /^Not enough space to download .*: it needs 24\.\d MiB, and the disk of .* has 2\d\.\d MiB free\.$/);
      assert.match(err.hint ?? "", /Free some space there, or fetch --to a folder on another disk/);
      assert.doesNotMatch(err.hint ?? "", /resume/);
      return true;
    });
    assert.deepEqual(fs.readdirSync(path.join(small, "scratch")), [], `${location}: no partial file`);
  }
});

test("a disk that fills up during the download: a UserError naming the space, and the partial file removed, as the AWS CLI does (S3 and Cloud Storage)", async () => {
  const archive = await modelArchive(8 * MiB);
  await s3.upload(archive, "s3://bucket/mid/model.tar.gz");
  await gs.upload(archive, "gs://bucket/mid/model.tar.gz");
  for (const [storage, location] of [
    [s3, "s3://bucket/mid/model.tar.gz"],
    [gs, "gs://bucket/mid/model.tar.gz"],
  ] as const) {
    emptySmallDisk();
    const file = path.join(small, "scratch", "model.tar.gz");
    let filled = false;
    // Once the first bytes are on disk, another program takes the rest of the space.
    const fill = (): void => {
      if (filled) return;
      filled = true;
      const filler = fs.openSync(path.join(small, "filler"), "w");
      try {
        for (;;) fs.writeSync(filler, Buffer.alloc(MiB));
      } catch {
        // full
      } finally {
        fs.closeSync(filler);
      }
    };
    await assert.rejects(storage.download(location, file, fill), (err: unknown) => {
      assert.ok(err instanceof UserError, String(err));
      assert.match(err.message, /^The disk of .* filled up while downloading .*: it needs 8\.\d MiB, and has .* free now; the partial download was removed\.$/);
      assert.doesNotMatch(err.hint ?? "", /resume/);
      return true;
    });
    assert.ok(filled, location);
    assert.deepEqual(fs.readdirSync(path.join(small, "scratch")), [], `${location}: the partial file and its resume state are removed`);
  }
  emptySmallDisk();
});

test("Ctrl-C during extraction stops it with exit 130 and removes what it made", async () => {
  const archive = fs.readFileSync(await modelArchive(4 * MiB));
  const cwd = writeTree({});
  const to = path.join(cwd, "model");
  // The archive arrives in part, as a download does, and the stop comes while the rest is awaited: the extraction cannot have ended first.
  const from = new PassThrough();
  const controller = new AbortController();
  const extracting = extractArchive("model.tar.gz", to, { from, signal: controller.signal, ready: new Promise(() => {}) });
  from.write(archive.subarray(0, archive.length / 2), () => setImmediate(() => controller.abort()));
  await assert.rejects(extracting, (err: unknown) => {
    assert.ok(err instanceof UserError, String(err));
    assert.equal(err.exitCode, 130);
    assert.equal(err.message, "Stopped while extracting model.tar.gz; nothing was extracted.");
    return true;
  });
  assert.deepEqual(fs.readdirSync(cwd), [], "the folder it made is gone");

  // The same through fetch, from a local archive: exit 130, the folder fetch made removed.
  const local = path.join(writeTree({}), "model.tar.gz");
  fs.writeFileSync(local, archive);
  const stopped = new AbortController();
  stopped.abort();
  await assert.rejects(fetch(local, makeContext({ cwd, env: {}, signal: stopped.signal }), { to: "m" }), (err: unknown) => {
    assert.ok(err instanceof UserError && err.exitCode === 130, String(err));
    return true;
  });
  assert.deepEqual(fs.readdirSync(cwd), []);
});

test("a missing bucket or object on Cloud Storage gets no resume hint; it names how to look", async () => {
  await assert.rejects(gs.download("gs://no-such-bucket/x/model.tar.gz", path.join(writeTree({}), "m.tar.gz")), (err: unknown) => {
    assert.ok(err instanceof UserError, String(err));
    assert.doesNotMatch(`${err.message} ${err.hint ?? ""}`, /resume/);
    return true;
  });
  await assert.rejects(s3.download("s3://no-such-bucket/x/model.tar.gz", path.join(writeTree({}), "m.tar.gz")), (err: unknown) => {
    assert.ok(err instanceof UserError, String(err));
    assert.doesNotMatch(`${err.message} ${err.hint ?? ""}`, /resume/);
    return true;
  });
});
