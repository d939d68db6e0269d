/**
 * One redaction for everything printed (issue 20, item 1): canaries in every place a value can go — environment
 * variables, tags, labels, hyperparameters with secret names, a URL with user:password, the provider's own key — and
 * every output searched for them: stdout and stderr of `fit --dry-run` (with and without --json) on every backend, and
 * of a local run, its record, `status --json` and `jobs --json`. The job itself gets the real values.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { inflateSync } from "node:zlib";
import { cliEnv, runCli } from "../helpers/cli.js";
import { fileTimeLimit } from "../helpers/limit.js";
import { writeTree } from "../helpers/tree.js";

fileTimeLimit(4, import.meta.url);

/** A fresh canary: lowercase letters and digits, so it is a valid label value too. */
function canary(): string {
  return `canary${randomBytes(8).toString("hex")}`;
}

const secrets = { env: canary(), tag: canary(), label: canary(), hp: canary(), url: canary(), kaggle: canary() };

/** A script that says whether it got the secret hyperparameter, by its digest (the script itself holds no canary). */
const RECEIVES = `import hashlib, sys\nprint("hyperparameter received:", ${JSON.stringify(createHash("sha256").update(secrets.hp).digest("hex"))} in [hashlib.sha256(a.encode()).hexdigest() for a in sys.argv], flush=True)\n`;

/** The project; with `privateIndex`, its requirements name a private index with a password in its URL (the cloud backends refuse that, and say so without printing it). */
function project(privateIndex: boolean): string {
  return writeTree({
    "train.py": RECEIVES,
    "requirements.txt": privateIndex ? `--extra-index-url https://me:${secrets.url}@pypi.example/simple\n` : "",
  });
}

function environment(): NodeJS.ProcessEnv {
  const { env } = cliEnv({
    KAGGLE_USERNAME: "someone",
    KAGGLE_KEY: secrets.kaggle,
    AWS_CONFIG_FILE: "/nonexistent",
    AWS_SHARED_CREDENTIALS_FILE: "/nonexistent",
  });
  for (const name of ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "KAGGLE_API_TOKEN"]) delete env[name];
  return env;
}

function assertClean(text: string, where: string): void {
  for (const [place, value] of Object.entries(secrets)) assert.ok(!text.includes(value), `the ${place} canary is printed in ${where}:\n${text}`);
}

const common = [`--hyperparameter.api_key=${secrets.hp}`, "--hyperparameter.epochs=3", `--hyperparameter.data_url=https://user:${secrets.url}@data.example/x`];
const byBackend: Record<string, string[]> = {
  local: [],
  sagemaker: ["--config.output_path=s3://bucket/sagemaker/runs", `--config.environment=WANDB_API_KEY=${secrets.env}`, `--config.tags=HF_TOKEN=${secrets.tag}`],
  vertex: [
    "--config.output_path=gs://bucket/runs",
    "--config.project=my-project",
    `--config.environment=WANDB_API_KEY=${secrets.env}`,
    `--config.labels=api_token=${secrets.label}`,
  ],
  kaggle: [],
};

for (const [backend, flags] of Object.entries(byBackend)) {
  test(`fit --dry-run on ${backend} prints no canary, with and without --json`, async () => {
    const env = environment();
    if (backend !== "local") {
      const refused = await runCli(["fit", "train.py", "--backend", backend, "--dry-run", ...common, ...flags], { cwd: project(true), env });
      assert.equal(refused.code, 2, refused.stderr);
      assertClean(refused.stdout + refused.stderr, `the refusal of ${backend}'s dry run`);
    }
    const dir = project(backend === "local");
    for (const json of [[], ["--json"]]) {
      const result = await runCli(["fit", "train.py", "--backend", backend, "--dry-run", ...common, ...flags, ...json], { cwd: dir, env });
      assert.equal(result.code, 0, result.stderr);
      assertClean(result.stdout, `stdout of ${backend}'s dry run ${json.join(" ")}`);
      assertClean(result.stderr, `stderr of ${backend}'s dry run ${json.join(" ")}`);
      if (json.length && backend !== "kaggle") assert.match(result.stdout, /\*\*\*/, "something was redacted");
      if (json.length && backend === "kaggle") {
        // The kernel carries the job (hyperparameters included) deflated: what it holds is searched too.
        const text = (JSON.parse(result.stdout) as { requests: Array<{ request: { text?: string } }> }).requests
          .map((each) => each.request.text ?? "")
          .join("");
        const payload = /_alekseylearn_payload\s*=\s*"([A-Za-z0-9+/=]+)"|"([A-Za-z0-9+/=]{200,})"/.exec(text);
        assert.ok(payload, "the kernel's payload is found");
        const inside = inflateSync(Buffer.from(payload[1] ?? payload[2]!, "base64")).toString("utf8");
        assertClean(inside, "the Kaggle kernel's payload");
        assert.match(inside, /"api_key":"\*\*\*"/);
      }
    }
  });
}

test("a local run with canaries: the job gets the real value; output, record, status --json and jobs --json hold none", async () => {
  const dir = writeTree({ "train.py": RECEIVES, "requirements.txt": "" });
  const { env, stateDir } = cliEnv();
  const run = await runCli(["fit", "train.py", ...common, "--json"], { cwd: dir, env });
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /hyperparameter received: True/);
  assertClean(run.stdout + run.stderr, "fit's output");
  const records = fs.readdirSync(path.join(stateDir, "jobs"));
  for (const record of records) assertClean(fs.readFileSync(path.join(stateDir, "jobs", record), "utf8"), "the record");
  for (const command of [["status", "--json"], ["jobs", "--json"], ["status"]]) {
    const shown = await runCli(command, { cwd: dir, env });
    assert.equal(shown.code, 0, shown.stderr);
    assertClean(shown.stdout + shown.stderr, command.join(" "));
  }
});
