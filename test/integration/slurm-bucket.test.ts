/**
 * A Slurm job with a gs:// output path, against the Cloud Storage test server (test/servers/gcs-fake.ts): once its script
 * has left its exit code and archives in the job's folder on the cluster, `describe` copies them to the bucket with this
 * machine's credentials (src/backends/slurm/outputs.ts) and records the bucket's locations. The login node is this machine
 * (config.host=localhost); Slurm is not asked for anything a finished job's folder does not say (the e2e test in
 * test/e2e/slurm.test.ts runs the same with s3:// on the real test cluster).
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { makeContext } from "../../src/context.js";
import { UserError } from "../../src/errors.js";
import { slurmBackend } from "../../src/backends/slurm/index.js";
import type { SlurmJob } from "../../src/backends/slurm/schema.js";
import { buildSpecFor } from "../../src/jobs/spec.js";
import { gcsStorage } from "../../src/storage/gcs.js";
import { loadDocument } from "../servers/google-discovery.js";
import { startGcsFake, type GcsFake } from "../servers/gcs-fake.js";
import { TEST_CACHE } from "../helpers/cli.js";
import { writeTree } from "../helpers/tree.js";
import { fileTimeLimit } from "../helpers/limit.js";

fileTimeLimit(2, import.meta.url);

let fake: GcsFake;
let ctx: ReturnType<typeof makeContext>;

before(async () => {
  fs.mkdirSync(TEST_CACHE, { recursive: true });
  fake = await startGcsFake(loadDocument(TEST_CACHE, "storage.v1"), ["bucket"]);
  ctx = makeContext({
    cwd: writeTree({}),
    env: { HOME: writeTree({}), PATH: process.env.PATH, STORAGE_EMULATOR_HOST: fake.url, GOOGLE_CLOUD_PROJECT: "my-proj" },
  });
});

after(async () => {
  await fake.close();
});

/** A job whose script has ended with `exitCode`, its archives (`files`) left in WORK/jobs/NAME/output/ as the script packs them. */
function endedJob(name: string, outputPath: string, files: Record<string, string>): SlurmJob {
  const work = writeTree({
    [`jobs/${name}/exit-code`]: "0\n",
    ...Object.fromEntries(Object.entries(files).map(([file, text]) => [`jobs/${name}/output/${file}`, text])),
  });
  const spec = buildSpecFor(
    slurmBackend,
    { artifact: "train.py", config: { output_path: outputPath, host: "localhost", work_dir: work } },
    writeTree({ "train.py": "print(1)\n" }),
  );
  return {
    name,
    backend: "slurm",
    state: "running",
    spec,
    createdAt: new Date().toISOString(),
    jobOutput: `${outputPath}/${name}`,
    // A job id Slurm does not know: squeue, sacct and scontrol say nothing, and the exit-code file decides.
    provider: { jobId: "999999", workDir: work },
  } as SlurmJob;
}

test("Slurm with gs:// (Cloud Storage test server): a finished job's model and output data are copied from the cluster to the bucket and recorded there", async () => {
  const job = endedJob("slurm-gs", "gs://bucket/runs", { "model.tar.gz": "the model bytes", "output.tar.gz": "the output bytes" });
  const changes = await slurmBackend.describe(job, ctx);
  assert.equal(changes.state, "completed");
  assert.equal(changes.model, "gs://bucket/runs/slurm-gs/output/model.tar.gz");
  assert.equal(changes.output, "gs://bucket/runs/slurm-gs/output/output.tar.gz");
  const storage = await gcsStorage(ctx);
  const copy = path.join(writeTree({}), "model.tar.gz");
  await storage.download(changes.model!, copy);
  assert.equal(fs.readFileSync(copy, "utf8"), "the model bytes");
  assert.equal((await storage.stat(changes.output!))?.size, "the output bytes".length);
  const uploads = fake.requests.filter((request) => request.method === "POST" && request.path.includes("/upload/")).map((request) => request.path);
  assert.ok(
    uploads.findIndex((p) => p.includes("output.tar.gz")) < uploads.findIndex((p) => p.includes("model.tar.gz")),
    "the model goes last: once it is there, so is the rest",
  );
});

test("Slurm with gs://: a bucket that cannot take the copy is a UserError naming where the archives stay, and the job is not recorded as ended (the next status tries again)", async () => {
  const job = endedJob("slurm-gs-missing", "gs://no-such-bucket/runs", { "model.tar.gz": "the model bytes" });
  await assert.rejects(
    () => slurmBackend.describe(job, ctx),
    (err: unknown) =>
      err instanceof UserError &&
      /The job ended on the cluster, but model\.tar\.gz could not be copied to gs:\/\/no-such-bucket\/runs\/slurm-gs-missing\/output\/model\.tar\.gz/.test(
        err.message,
      ) &&
      /alekseylearn status slurm-gs-missing/.test(err.hint ?? "") &&
      err.hint!.includes(`localhost:${job.provider!.workDir}/jobs/slurm-gs-missing/output`),
  );
});
