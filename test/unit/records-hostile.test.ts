/**
 * Records are data, not orders (issue 20, items 2, 6 and 7): a record that does not parse is skipped with a warning,
 * `stop` signals only the job's own process, `logs` reads only the job's own log, what a record says is printed
 * escaped, `jobs --rm` frees a name, and a preflight failure keeps no record.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Context } from "../../src/context.js";
import { UserError } from "../../src/errors.js";
import { isRecordedProcess, processIdentity } from "../../src/exec.js";
import { fit, forget, jobs, logs, status, stop } from "../../src/jobs/lifecycle.js";
import { JobStore, type JobRecord } from "../../src/jobs/records.js";
import { describeJob } from "../../src/cli/render.js";
import { LineSplitter, MAX_LINE_PIECE } from "../../src/backends/follow.js";
import { fileTimeLimit } from "../helpers/limit.js";
import { writeTree } from "../helpers/tree.js";

fileTimeLimit(2, import.meta.url);

function context(): { ctx: Context; warnings: string[] } {
  const state = fs.mkdtempSync(path.join(os.tmpdir(), "alekseylearn-records-"));
  const warnings: string[] = [];
  const ctx: Context = {
    cwd: state,
    env: { PATH: process.env.PATH, HOME: state, CLOUDSDK_CONFIG: path.join(state, "gcloud") },
    stateDir: state,
    cacheDir: path.join(state, "cache"),
    reporter: { info() {}, warn: (message) => warnings.push(message), jobLine() {} },
  };
  return { ctx, warnings };
}

function localRecord(name: string, changes: Partial<JobRecord> = {}): JobRecord {
  return {
    name,
    backend: "local",
    state: "completed",
    createdAt: "2026-01-01T00:00:00.000Z",
    jobOutput: `/tmp/out/${name}`,
    spec: {
      artifact: { kind: "script", dir: "/p", entry: "train.py", isFolder: false },
      backend: "local",
      settings: {},
      hyperparameters: {},
      inputs: {},
      outputPath: "/tmp/out",
    } as unknown as JobRecord["spec"],
    ...changes,
  };
}

test("a truncated or empty record is skipped with a warning naming its file; the others are listed; status of it names the file", async () => {
  const { ctx, warnings } = context();
  const store = new JobStore(ctx.stateDir);
  store.save(localRecord("good-job"));
  store.save(localRecord("cut-job"));
  const cut = path.join(store.dir, "cut-job.json");
  fs.writeFileSync(cut, fs.readFileSync(cut, "utf8").slice(0, 40));
  fs.writeFileSync(path.join(store.dir, "empty-job.json"), "");
  fs.writeFileSync(path.join(store.dir, "other-job.json"), JSON.stringify(localRecord("good-job")));
  const listed = await jobs(ctx);
  assert.deepEqual(
    listed.map((job) => job.name),
    ["good-job"],
  );
  assert.equal(warnings.length, 3, warnings.join("\n"));
  assert.ok(warnings.some((warning) => warning.includes(cut) && /not valid JSON/.test(warning)));
  assert.ok(warnings.some((warning) => /empty-job\.json: it is empty/.test(warning)));
  assert.ok(warnings.some((warning) => /other-job\.json: it names the job "good-job", not other-job/.test(warning)));
  await assert.rejects(status("cut-job", ctx), (err: unknown) => err instanceof UserError && err.message.includes(cut) && /jobs --rm cut-job/.test(err.hint!));
});

test("a name that is not a job name reaches no file outside the state folder", () => {
  const { ctx } = context();
  fs.writeFileSync(path.join(ctx.stateDir, "outside.json"), JSON.stringify(localRecord("outside")));
  assert.equal(new JobStore(ctx.stateDir).find("../outside"), undefined);
});

test("stop signals only the job's own process: a pid edited into the record (an unrelated sleep) is left alone", async () => {
  const { ctx } = context();
  const sleeper = spawn("sleep", ["30"], { stdio: "ignore" });
  try {
    const store = new JobStore(ctx.stateDir);
    // The job's process was this test's; the record was then edited to name the sleep.
    store.save(localRecord("edited-job", { state: "running", pid: sleeper.pid!, ...processIdentity(process.pid) }));
    assert.ok(!isRecordedProcess(store.get("edited-job")));
    const after = await stop("edited-job", ctx);
    assert.equal(after.state, "stopped", "the job's own process is gone, so the job is recorded as ended");
    assert.equal(sleeper.exitCode, null);
    assert.equal(sleeper.signalCode, null, "the sleep was not signalled");
    // A pid recorded as the job starts keeps who that process is, so that one is signalled.
    store.save(localRecord("real-job", { state: "preparing" }));
    store.update("real-job", { state: "running", pid: sleeper.pid! });
    assert.ok(isRecordedProcess(store.get("real-job")));
    const ended = new Promise((resolve) => sleeper.once("exit", (_code, signal) => resolve(signal)));
    await stop("real-job", ctx);
    assert.equal(await ended, "SIGTERM");
  } finally {
    sleeper.kill("SIGKILL");
  }
});

test("logs reads only the job's own log in the state folder, never a path the record names", async () => {
  const { ctx } = context();
  const secret = path.join(ctx.stateDir, "not-the-log.txt");
  fs.writeFileSync(secret, "CANARY-SHADOW\n");
  new JobStore(ctx.stateDir).save(localRecord("log-job", { logFile: secret }));
  const own = path.join(ctx.stateDir, "runs", "log-job", "job.log");
  fs.mkdirSync(path.dirname(own), { recursive: true });
  fs.writeFileSync(own, "the job's line\n");
  const lines: string[] = [];
  for await (const line of logs("log-job", ctx, { follow: false })) lines.push(line);
  assert.deepEqual(lines, ["the job's line"]);
});

test("what a record says is printed with its control characters escaped", () => {
  const text = describeJob(localRecord("esc-job", { state: "failed", reason: "boom\x1b[2J\x1b]0;title\x07", logFile: "/x/\u202elog" }));
  for (const raw of ["\x1b", "\x07", "\u202e"]) assert.ok(!text.includes(raw), JSON.stringify(raw));
  assert.match(text, /Reason: +boom\\x1b\[2J\\x1b\]0;title\\x07/);
  assert.match(text, /\\u202elog/);
});

test("jobs --rm removes an ended job's record and run folder, a record that cannot be read, and refuses a running job", async () => {
  const { ctx } = context();
  const store = new JobStore(ctx.stateDir);
  store.save(localRecord("done-job"));
  fs.mkdirSync(path.join(ctx.stateDir, "runs", "done-job"), { recursive: true });
  await forget("done-job", ctx);
  assert.equal(store.find("done-job"), undefined);
  assert.ok(!fs.existsSync(path.join(ctx.stateDir, "runs", "done-job")));
  fs.writeFileSync(path.join(store.dir, "broken-job.json"), "{");
  await forget("broken-job", ctx);
  assert.ok(!fs.existsSync(path.join(store.dir, "broken-job.json")));
  store.save(localRecord("live-job", { state: "preparing" }));
  store.update("live-job", { state: "running", pid: process.pid });
  await assert.rejects(forget("live-job", ctx), /Job live-job is running; its record is kept/);
  assert.ok(store.find("live-job"));
  await assert.rejects(forget("no-such-job", ctx), /No job named no-such-job/);
  await assert.rejects(forget("../jobs", ctx), /No job named/);
});

test("a preflight failure (Vertex AI with no project) keeps no record that takes the name", async () => {
  const { ctx } = context();
  const dir = writeTree({ "train.py": "print(1)\n", "requirements.txt": "" });
  await assert.rejects(
    fit({ artifact: path.join(dir, "train.py"), backend: "vertex", config: { output_path: "gs://bucket/runs" } }, { ...ctx, cwd: dir }, { name: "first-try" }),
    /No Google Cloud project/,
  );
  assert.deepEqual(new JobStore(ctx.stateDir).list(), []);
});

test("job output is cut at \\n, \\r\\n and a lone \\r (also across chunks), and an overlong line into bounded pieces", () => {
  const split = new LineSplitter();
  const lines = [
    ...split.push(Buffer.from("a\r\nb\rc\n 10%\r 20%\r")),
    ...split.push(Buffer.from("\nd")),
    ...split.push(Buffer.from("é".repeat(3)).subarray(0, 3)),
    ...split.push(Buffer.from("é".repeat(3)).subarray(3)),
    ...split.end(),
  ];
  assert.deepEqual(lines, ["a", "b", "c", " 10%", " 20%", "dééé"]);
  const long = new LineSplitter();
  const pieces = [...long.push(Buffer.alloc(MAX_LINE_PIECE * 2 + 5, "x")), ...long.push(Buffer.from("y\n")), ...long.end()];
  assert.deepEqual(
    pieces.map((piece) => piece.length),
    [MAX_LINE_PIECE, MAX_LINE_PIECE, 6],
  );
});
