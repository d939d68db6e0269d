/** Records hold no secrets (issue 12, item 5): redaction, and a state folder only its owner can read. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { JobStore, redactRecord, type JobRecord } from "../../src/jobs/records.js";
import { hasUrlCredentials, namesSecret, redactForPrint, redactUrls, secretValues } from "../../src/redact.js";
import { fileTimeLimit } from "../helpers/limit.js";

fileTimeLimit(3, import.meta.url);

test("a key names a secret only as a whole word", () => {
  for (const key of [
    "WANDB_API_KEY",
    "HF_TOKEN",
    "hfToken",
    "DB_PASSWORD",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "MY_SECRET",
    "AWS_SECRET_ACCESS_KEY",
    "aws_access_key",
    "apikey",
    "db-passwd",
  ])
    assert.ok(namesSecret(key), key);
  for (const key of ["MAX_TOKENS", "TOKENIZER", "KEY_COLUMN", "MONKEY", "SECRETARY", "PASSAGE", "SEED", "primary_key_name"]) assert.ok(!namesSecret(key), key);
});

test("URL credentials are redacted, whole user information and secret query values; ${VARIABLE} references are no credential", () => {
  assert.equal(redactUrls("--extra-index-url https://user:t0k@pypi.example/simple"), "--extra-index-url https://***@pypi.example/simple");
  assert.equal(redactUrls("git+https://ghp_abc@github.com/o/r.git"), "git+https://***@github.com/o/r.git");
  assert.equal(redactUrls("https://h.example/p.whl?token=abc&v=1"), "https://h.example/p.whl?token=***&v=1");
  assert.equal(
    redactUrls("https://b.s3.amazonaws.com/k?X-Amz-Signature=ff&X-Amz-Credential=AK"),
    "https://b.s3.amazonaws.com/k?X-Amz-Signature=***&X-Amz-Credential=***",
  );
  assert.equal(redactUrls("s3://bucket/sagemaker/runs and user@example.com"), "s3://bucket/sagemaker/runs and user@example.com");
  assert.ok(!hasUrlCredentials("https://${USER}:${TOKEN}@idx.example/simple"));
  assert.ok(hasUrlCredentials("https://${USER}:literal@idx.example/simple"));
});

function record(secret: string): JobRecord {
  return {
    name: "job-1",
    backend: "sagemaker",
    state: "failed",
    createdAt: "2024-01-01T00:00:00.000Z",
    jobOutput: "s3://bucket/sagemaker/runs/job-1",
    reason: `pip could not reach https://me:${secret}@pypi.example/simple`,
    spec: {
      artifact: { kind: "script", dir: "/p", entry: "train.py", isFolder: false },
      environment: { kind: "requirements", path: "/p/requirements.txt", content: `--extra-index-url https://me:${secret}@pypi.example/simple\njoblib\n` },
      backend: "sagemaker",
      settings: {
        environment: [`WANDB_API_KEY=${secret}`, "MAX_TOKENS=4096", `HF_TOKEN=${secret}`],
        tags: [`team=ml`, `deploy_password=${secret}`],
        instance_type: "ml.m5.large",
      },
      hyperparameters: { token_budget: "12345678901234567890", api_token_hint: "kept-as-typed", learning_rate: "0.1" },
      inputs: { train: "s3://bucket/data" },
      outputPath: "s3://bucket/sagemaker/runs",
    },
  };
}

test("a saved record holds no credential, keeps hyperparameters as typed unless their name names a secret, and is readable by its owner only; the job keeps its values", () => {
  const secret = `CANARY${randomBytes(10).toString("hex")}`;
  const state = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "state-")), "alekseylearn");
  fs.mkdirSync(state, { mode: 0o755 }); // as an older version left it
  fs.chmodSync(state, 0o755);
  const store = new JobStore(state);
  const given = record(secret);
  const returned = store.save(given);
  assert.equal(returned, given, "save returns the record as given: the job is submitted with its real values");

  const file = path.join(state, "jobs", "job-1.json");
  const text = fs.readFileSync(file, "utf8");
  assert.ok(!text.includes(secret), text);
  const saved = store.get("job-1");
  assert.deepEqual(saved.spec.settings.environment, ["WANDB_API_KEY=***", "MAX_TOKENS=4096", "HF_TOKEN=***"]);
  assert.deepEqual(saved.spec.settings.tags, ["team=ml", "deploy_password=***"]);
  assert.equal(saved.spec.settings.instance_type, "ml.m5.large");
  // One rule for everything printed (issue 20): a hyperparameter named as a secret is one, as an environment variable is.
  assert.deepEqual(saved.spec.hyperparameters, { token_budget: "***", api_token_hint: "***", learning_rate: "0.1" });
  assert.match(saved.spec.environment!.content, /^--extra-index-url https:\/\/\*\*\*@pypi\.example\/simple\njoblib\n$/);
  assert.match(saved.reason!, /https:\/\/\*\*\*@pypi\.example/);
  assert.deepEqual(redactRecord(saved), saved, "redacting twice changes nothing");

  assert.equal(fs.statSync(state).mode & 0o777, 0o700, "the state folder is tightened to 0700");
  assert.equal(fs.statSync(path.join(state, "jobs")).mode & 0o777, 0o700);
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  store.update("job-1", { state: "stopped" });
  assert.equal(fs.statSync(file).mode & 0o777, 0o600, "an update keeps the file private");
  assert.deepEqual(fs.readdirSync(path.join(state, "jobs")), ["job-1.json"], "no temporary file is left");
});

test("one rule for everything printed: name/value pairs, KEY=VALUE items, --KEY arguments, secret values wherever they appear, URL credentials", () => {
  const printed = redactForPrint(
    {
      env: [
        { name: "WANDB_API_KEY", value: "w-secret" },
        { name: "MAX_TOKENS", value: "4096" },
      ],
      Tags: [{ Key: "HF_TOKEN", Value: "h-secret" }],
      labels: { api_token: "l-secret", team: "ml" },
      args: ["train", "--api_key", "a-secret", "--epochs", "3"],
      items: ["DB_PASSWORD=p-secret", "MODE=offline"],
      script: "payload = {'key': 'a-secret'}",
      url: "https://me:u-secret@host/x",
      use_token: true,
    },
    secretValues({}, { api_key: "a-secret", use_token: true }),
  );
  assert.deepEqual(printed, {
    env: [
      { name: "WANDB_API_KEY", value: "***" },
      { name: "MAX_TOKENS", value: "4096" },
    ],
    Tags: [{ Key: "HF_TOKEN", Value: "***" }],
    labels: { api_token: "***", team: "ml" },
    args: ["train", "--api_key", "***", "--epochs", "3"],
    items: ["DB_PASSWORD=***", "MODE=offline"],
    script: "payload = {'key': '***'}",
    url: "https://***@host/x",
    use_token: true,
  });
});
