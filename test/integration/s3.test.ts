/**
 * S3 storage and `fetch s3://…` against real servers: moto (S3 as AWS answers)
 * and s3rver (which checks request signatures). Objects are put there with the
 * AWS CLI, as a user's other tools would.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { s3Storage } from "../../src/storage/s3.js";
import { packFolder } from "../../src/storage/archive.js";
import { makeContext } from "../../src/context.js";
import { UserError } from "../../src/errors.js";
import { cliEnv, runCli } from "../helpers/cli.js";
import { listTree, writeTree } from "../helpers/tree.js";
import { awsEnv, startMoto, startS3rver, type Moto, type S3rverHandle } from "../helpers/servers.js";
import { fileTimeLimit } from "../helpers/limit.js";

fileTimeLimit(15, import.meta.url);

const execFileAsync = promisify(execFile);
let moto: Moto;
let s3rver: S3rverHandle;

/** Run the AWS CLI; asynchronously, since s3rver answers from this very process. */
async function aws(env: Record<string, string>, ...args: string[]): Promise<string> {
  const { stdout } = await execFileAsync("aws", ["--endpoint-url", env.AWS_ENDPOINT_URL!, ...args], { env: { ...process.env, ...env }, encoding: "utf8" });
  return stdout;
}

before(async () => {
  [moto, s3rver] = await Promise.all([startMoto(), startS3rver(["signed"])]);
  await aws(awsEnv(moto.url), "s3", "mb", "s3://bucket");
});

after(async () => {
  await Promise.all([moto.stop(), s3rver.stop()]);
});

/** A model.tar.gz holding `files`, at a fresh path. */
async function modelArchive(files: Record<string, string | Buffer>): Promise<string> {
  const dir = writeTree(files);
  const archive = path.join(writeTree({}), "model.tar.gz");
  await packFolder(dir, archive);
  return archive;
}

test("the seed's second command: fetch s3://bucket/sagemaker/runs unpacks the newest job's model and output (moto S3)", async () => {
  const env = awsEnv(moto.url);
  await aws(env, "s3", "cp", await modelArchive({ "model.joblib": "old" }), "s3://bucket/sagemaker/runs/train-a/output/model.tar.gz");
  await new Promise((resolve) => setTimeout(resolve, 1100)); // S3 times are in whole seconds
  await aws(env, "s3", "cp", await modelArchive({ "model.joblib": "new" }), "s3://bucket/sagemaker/runs/train-b/output/model.tar.gz");
  await aws(env, "s3", "cp", await modelArchive({ "train.ipynb": "{}" }), "s3://bucket/sagemaker/runs/train-b/output/output.tar.gz");
  const cwd = writeTree({});
  const result = await runCli(["fetch", "s3://bucket/sagemaker/runs", "--json"], { cwd, env: cliEnv(env).env });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(JSON.parse(result.stdout).job, "train-b");
  assert.deepEqual(listTree(cwd), ["model.joblib", "output/train.ipynb"]);
  assert.equal(fs.readFileSync(path.join(cwd, "model.joblib"), "utf8"), "new");
});

test("a multipart object comes down in parallel ranges, one per part, checked against its composite checksum", async () => {
  const env = awsEnv(moto.url);
  const body = randomBytes(40 * 1024 * 1024 + 12345);
  const source = path.join(writeTree({}), "model.tar.gz");
  fs.writeFileSync(source, body);
  await aws(env, "s3", "cp", source, "s3://bucket/big/model.tar.gz"); // the AWS CLI uploads in 8 MiB parts
  const etag = JSON.parse(await aws(env, "s3api", "head-object", "--bucket", "bucket", "--key", "big/model.tar.gz")).ETag;
  assert.match(etag, /-6"$/, "a multipart ETag");
  const cwd = writeTree({});
  const result = await runCli(["fetch", "s3://bucket/big/model.tar.gz", "--no-extract"], { cwd, env: cliEnv(env).env });
  assert.equal(result.code, 0, result.stderr);
  assert.ok(fs.readFileSync(path.join(cwd, "model.tar.gz")).equals(body));
  assert.doesNotMatch(result.stderr, /Could not check/, "the part size came from S3, so the ETag was checked");
  assert.deepEqual(fs.readdirSync(cwd), ["model.tar.gz"], "no partial files are left");
});

test("an upload, in one request or in parts, reports its bytes up to the object's size, never backwards (moto S3)", async () => {
  const env = awsEnv(moto.url);
  const MiB = 1024 * 1024;
  // S3's smallest part is 5 MiB (all but the last): two parts.
  const storage = await s3Storage(makeContext({ cwd: os.tmpdir(), env: { ...process.env, ...env } }), { multipartThreshold: 5 * MiB, partSize: 5 * MiB });
  for (const [name, size] of [
    ["one", MiB + 7],
    ["parts", 5 * MiB + 7],
  ] as const) {
    const file = path.join(writeTree({}), "model.tar.gz");
    fs.writeFileSync(file, randomBytes(size));
    const sent: Array<[number, number]> = [];
    await storage.upload(file, `s3://bucket/uploads/${name}/model.tar.gz`, (done, total) => sent.push([done, total]));
    assert.deepEqual(sent.at(-1), [size, size], `${name}: the progress ends at the size`);
    assert.ok(sent.length > 1 && sent.every(([done, total], i) => total === size && (i === 0 || done > sent[i - 1]![0])), `${name}: it moves, only forwards`);
    const head = JSON.parse(await aws(env, "s3api", "head-object", "--bucket", "bucket", "--key", `uploads/${name}/model.tar.gz`));
    assert.equal(head.ContentLength, size);
    if (name === "parts") assert.match(head.ETag, /-2"$/, "two parts");
  }
});

for (const upload of ["multipart", "single-part"] as const) {
  test(`an interrupted download resumes where it stopped; a damaged partial file is caught by the stored checksum (${upload} upload)`, async () => {
    const env = awsEnv(moto.url);
    const body = randomBytes(48 * 1024 * 1024);
    const source = path.join(writeTree({}), "blob");
    fs.writeFileSync(source, body);
    const key = `resume-${upload}/model.tar.gz`;
    if (upload === "multipart") await aws(env, "s3", "cp", source, `s3://bucket/${key}`);
    else await aws(env, "s3api", "put-object", "--bucket", "bucket", "--key", key, "--body", source);
    const target = path.join(writeTree({}), "model.tar.gz");

    // One range at a time, stopped once the first has landed: the interruption falls at the same place every run.
    const interrupt = async (): Promise<void> => {
      const controller = new AbortController();
      const storage = await s3Storage(makeContext({ cwd: os.tmpdir(), env: { ...process.env, ...env }, signal: controller.signal }), {
        parallel: 1,
        partSize: 16 * 1024 * 1024,
      });
      await assert.rejects(
        storage.download(`s3://bucket/${key}`, target, () => fs.existsSync(`${target}.partial.json`) && controller.abort()),
        (err: unknown) => err instanceof UserError && /Stopped while downloading .* fetching again resumes/.test(err.message),
      );
    };
    await interrupt();
    assert.ok(fs.existsSync(`${target}.partial`) && fs.existsSync(`${target}.partial.json`));
    const storage = await s3Storage(makeContext({ cwd: os.tmpdir(), env: { ...process.env, ...env } }));
    let first: number | undefined;
    await storage.download(`s3://bucket/${key}`, target, (done) => (first ??= done));
    assert.ok(first! >= 8 * 1024 * 1024, `the second try started from ${first} bytes, not from zero`);
    assert.ok(fs.readFileSync(target).equals(body));
    assert.ok(!fs.existsSync(`${target}.partial`) && !fs.existsSync(`${target}.partial.json`));

    fs.rmSync(target);
    await interrupt();
    const state = JSON.parse(fs.readFileSync(`${target}.partial.json`, "utf8")) as { done: number[] };
    const fd = fs.openSync(`${target}.partial`, "r+");
    const partSize = upload === "multipart" ? 8 * 1024 * 1024 : 16 * 1024 * 1024;
    fs.writeSync(fd, Buffer.from("damage"), 0, 6, state.done[0]! * partSize + 100);
    fs.closeSync(fd);
    await assert.rejects(
      storage.download(`s3://bucket/${key}`, target),
      /arrived damaged: it does not match its (composite )?CRC32 checksum; the download was thrown away/,
    );
    assert.ok(!fs.existsSync(target) && !fs.existsSync(`${target}.partial`));
  });
}

test("the local backend can write its model to S3, and fetch takes it from there", async () => {
  const env = awsEnv(moto.url);
  const project = writeTree({ "train.py": "open('/opt/ml/model/w.txt', 'w').write('to s3')\n", "requirements.txt": "" });
  const { env: cli } = cliEnv(env);
  const result = await runCli(["fit", "train.py", "--backend", "local", "--config.output_path=s3://bucket/sagemaker/local-runs", "--json"], {
    cwd: project,
    env: cli,
  });
  assert.equal(result.code, 0, result.stderr);
  const job = JSON.parse(result.stdout);
  assert.match(job.model, /^s3:\/\/bucket\/sagemaker\/local-runs\/train-\S+\/output\/model\.tar\.gz$/);
  // Off a terminal the upload and the download each say, in a plain line, how many bytes went: the object's size.
  const size = JSON.parse(await aws(env, "s3api", "head-object", "--bucket", "bucket", "--key", job.model.slice("s3://bucket/".length))).ContentLength;
  assert.ok(size < 1024, `a small archive, its size in bytes (${size})`);
  assert.ok(result.stderr.includes(`\n  Uploading the model to ${job.model}: done, ${size} bytes\n`), result.stderr);
  const fetched = await runCli(["fetch", job.name, "--to", "m"], { cwd: project, env: cli });
  assert.equal(fetched.code, 0, fetched.stderr);
  assert.ok(fetched.stderr.includes(`\n  Downloading ${job.model}: done, ${size} bytes\n`), fetched.stderr);
  assert.equal(fs.readFileSync(path.join(project, "m", "w.txt"), "utf8"), "to s3");
});

test("an S3 that checks keys (s3rver): the right keys work, unknown ones are refused and never printed", async () => {
  const good = awsEnv(s3rver.url, "S3RVER", "S3RVER");
  await aws(good, "s3", "cp", await modelArchive({ "weights.bin": "w" }), "s3://signed/runs/job-1/output/model.tar.gz");
  const cwd = writeTree({});
  const ok = await runCli(["fetch", "s3://signed/runs"], { cwd, env: cliEnv(good).env });
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(listTree(cwd), ["weights.bin"]);
  const wrong = await runCli(["fetch", "s3://signed/runs", "--to", "x"], { cwd, env: cliEnv(awsEnv(s3rver.url, "AKIAWRONGKEY0000", "not-the-secret-9")).env });
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /error: AWS refused the credentials while listing s3:\/\/signed\/runs \(InvalidAccessKeyId\)\./);
  assert.ok(!wrong.stderr.includes("not-the-secret-9") && !wrong.stderr.includes("AKIAWRONGKEY0000"), "no credential in the message");
  assert.ok(!fs.existsSync(path.join(cwd, "x")) || listTree(path.join(cwd, "x")).length === 0, "nothing written");
});

test("no AWS credentials at all: a message that names the usual ways to provide them", async () => {
  const env: Record<string, string> = { AWS_REGION: "us-east-1", AWS_ENDPOINT_URL: moto.url, AWS_EC2_METADATA_DISABLED: "true", HOME: writeTree({}) };
  const { env: cli } = cliEnv(env);
  for (const key of ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN"]) delete cli[key];
  const result = await runCli(["fetch", "s3://bucket/sagemaker/runs"], { cwd: writeTree({}), env: cli });
  assert.equal(result.code, 1, result.stderr);
  assert.match(result.stderr, /error: No AWS credentials found\.\nhint: Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, choose a profile with AWS_PROFILE/);
});

test("an archive is unpacked while it downloads, yet a malicious one is refused and nothing is written", async () => {
  const env = awsEnv(moto.url);
  const { rawTar } = await import("../helpers/rawtar.js");
  const evil = path.join(writeTree({}), "model.tar.gz");
  fs.writeFileSync(
    evil,
    rawTar([
      { name: "fine.txt", content: "x".repeat(1000) },
      { name: "../../escape.txt", content: "owned" },
    ]),
  );
  await aws(env, "s3", "cp", evil, "s3://bucket/evil/job/output/model.tar.gz");
  const cwd = writeTree({ "keep.txt": "mine" });
  const result = await runCli(["fetch", "s3://bucket/evil/job/output/model.tar.gz", "--to", "dest"], { cwd, env: cliEnv(env).env });
  assert.equal(result.code, 1, result.stderr);
  assert.match(result.stderr, /Refusing to extract s3:\/\/bucket\/evil\/job\/output\/model\.tar\.gz: entry "\.\.\/\.\.\/escape\.txt"/);
  assert.deepEqual(listTree(cwd), ["keep.txt"], "nothing extracted, nothing left behind");
});

test("a download damaged on disk is refused after streaming extraction, and nothing is placed", async () => {
  const env = awsEnv(moto.url);
  const weights = path.join(writeTree({ "weights.bin": randomBytes(40 * 1024 * 1024) }), "weights.bin");
  const archive = await modelArchive({ "weights.bin": fs.readFileSync(weights) });
  await aws(env, "s3", "cp", archive, "s3://bucket/damaged/model.tar.gz");
  const cwd = writeTree({});
  const to = path.join(cwd, "m");
  // Where `fetch` keeps a partial download of this object, to resume it.
  const { createHash } = await import("node:crypto");
  const scratch = path.join(to, `.alekseylearn-fetch-${createHash("sha256").update("s3://bucket/damaged/model.tar.gz").digest("hex").slice(0, 12)}`);
  const target = path.join(scratch, "model.tar.gz");
  const controller = new AbortController();
  const storage = await s3Storage(makeContext({ cwd, env: { ...process.env, ...env }, signal: controller.signal }), { parallel: 1 });
  await assert.rejects(storage.download("s3://bucket/damaged/model.tar.gz", target, () => fs.existsSync(`${target}.partial.json`) && controller.abort()));
  const fd = fs.openSync(`${target}.partial`, "r+");
  fs.writeSync(fd, Buffer.from("damage!"), 0, 7, 4096);
  fs.closeSync(fd);
  const result = await runCli(["fetch", "s3://bucket/damaged/model.tar.gz", "--to", "m"], { cwd, env: cliEnv(env).env });
  assert.equal(result.code, 1, result.stderr);
  assert.match(result.stderr, /arrived damaged: it does not match its (composite )?CRC32 checksum/);
  assert.deepEqual(listTree(to), [], "no file was placed");
});
