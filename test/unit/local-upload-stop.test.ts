/**
 * Ctrl-C while a local job's model is uploaded to s3:// (issue 20, item 4): the job is `stopped`, its reason says what
 * was uploading (not "downloaded"), and no stack trace lands in its log. The test server takes the upload's first
 * request and never answers, and the Ctrl-C comes while it waits.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import type { AddressInfo } from "node:net";
import { silentReporter, type Context } from "../../src/context.js";
import { localBackend } from "../../src/backends/local/index.js";
import { runLocalJob, runPaths } from "../../src/backends/local/run.js";
import type { LocalJob } from "../../src/backends/local/schema.js";
import { buildSpecFor } from "../../src/jobs/spec.js";
import type { JobRecord } from "../../src/jobs/job.js";
import { testAwsKeys } from "../helpers/aws.js";
import { fileTimeLimit } from "../helpers/limit.js";
import { writeTree } from "../helpers/tree.js";

fileTimeLimit(2, import.meta.url);

test("S3 test server that never answers the upload: Ctrl-C during the model's upload leaves the job stopped, saying it was uploading", async () => {
  const interrupt = new AbortController();
  const held: http.ServerResponse[] = [];
  const server = http.createServer((request, response) => {
    request.resume();
    held.push(response); // never answered: the upload is under way when Ctrl-C comes
    interrupt.abort();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    const dir = writeTree({ "train.py": "import os\nopen(os.path.join(os.environ['SM_MODEL_DIR'], 'weights.bin'), 'w').write('w')\n" });
    const state = fs.mkdtempSync(path.join(os.tmpdir(), "alekseylearn-upload-stop-"));
    const env = { PATH: process.env.PATH, ...testAwsKeys(), AWS_ENDPOINT_URL: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
    const ctx: Context = { cwd: dir, env, stateDir: state, cacheDir: state, reporter: silentReporter, signal: interrupt.signal };
    const spec = buildSpecFor(localBackend, { artifact: "train.py", config: { output_path: "s3://bucket/runs", sandbox: "none" } }, dir);
    const job = {
      name: "upload-stop",
      backend: "local",
      state: "running",
      spec,
      createdAt: new Date().toISOString(),
      jobOutput: "s3://bucket/runs/upload-stop",
    } as LocalJob;
    const stop = new AbortController();
    interrupt.signal.addEventListener("abort", () => stop.abort()); // as the lifecycle's Ctrl-C handler stops a local job
    fs.mkdirSync(runPaths(state, job.name).dir, { recursive: true });
    let last: Partial<JobRecord> = {};
    const final = await runLocalJob(job, { python: "python3" }, ctx, stop.signal, (changes) => (last = { ...last, ...changes }) as JobRecord);
    assert.equal(final.state, "stopped");
    assert.match(final.reason!, /^stopped while uploading the model to s3:\/\/bucket\/runs\/upload-stop\/output\/model\.tar\.gz, which did not finish/);
    assert.doesNotMatch(final.reason!, /download/);
    const log = fs.readFileSync(runPaths(state, job.name).log, "utf8");
    assert.doesNotMatch(log, /internal error|\n\s+at /, "no stack trace in the job's log");
  } finally {
    for (const response of held) response.destroy();
    server.close();
  }
});
