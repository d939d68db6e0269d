/**
 * End to end through the CLI: the everyday experience. Long steps say what
 * they do (an unreachable pip index is named with its fix before pip gives up),
 * every command's --json parses, hints are spelled as the user started the command.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { cliEnv, runCli } from "../helpers/cli.js";
import { completions } from "../helpers/completion.js";
import { fileTimeLimit } from "../helpers/limit.js";
import { writeTree } from "../helpers/tree.js";

fileTimeLimit(5, import.meta.url);

test("fit with a pip index that refuses connections says so, with PIP_INDEX_URL and pip config, before pip gives up", async () => {
  // A requirement no index has, so pip asks the refusing index (and retries) before it fails.
  const dir = writeTree({ "train.py": "print('never runs')\n", "requirements.txt": "alekseylearn-no-such-package-23\n" });
  // A cache of its own: the failed environment must not touch the shared one.
  const { env } = cliEnv({ PIP_INDEX_URL: "http://127.0.0.1:1/simple", XDG_CACHE_HOME: fs.mkdtempSync(path.join(os.tmpdir(), "cache-")) });
  const result = await runCli(["fit", "train.py"], { cwd: dir, env });
  assert.equal(result.code, 1, result.stderr);
  const said = result.stderr.indexOf("pip cannot reach its package index (http://127.0.0.1:1/simple)");
  assert.ok(said >= 0, result.stderr);
  // Said while pip still ran: the warning comes before the failure that ends the step (printed when pip gave up).
  assert.ok(said < result.stderr.indexOf("error: Creating the environment failed"), result.stderr);
  const message = result.stderr.slice(said).split("\n")[0]!;
  assert.match(message, /PIP_INDEX_URL=URL/);
  assert.match(message, /pip config set global\.index-url URL/);
  assert.match(result.stderr, /hint: pip could not reach its package index.*The full output is in \S+\.install\.log/);
});

/** A local job that leaves output data and fails without a model. */
async function failedJob(env: NodeJS.ProcessEnv): Promise<{ dir: string; name: string; fit: { code: number | null; stdout: string; stderr: string } }> {
  const dir = writeTree({
    "train.py": "import os\nopen(os.path.join('/opt/ml/output/data', 'notes.txt'), 'w').write('half done')\nprint('giving up')\nraise SystemExit(3)\n",
  });
  const fit = await runCli(["fit", "train.py", "--json"], { cwd: dir, env });
  return { dir, name: (JSON.parse(fit.stdout) as { name: string }).name, fit };
}

test("fetch of a failed job brings back what it left, says there was no model and why, exits 0; --json says what", async () => {
  const { env } = cliEnv();
  const { dir, name, fit } = await failedJob(env);
  assert.equal(fit.code, 1, fit.stderr);
  const fetched = await runCli(["fetch", name, "--to", "back"], { cwd: dir, env });
  assert.equal(fetched.code, 0, fetched.stderr);
  assert.match(fetched.stdout, /There was no model: it failed \([^)]*\)\. Brought back what the job left \(\S+output\.tar\.gz\)/);
  assert.equal(fs.readFileSync(path.join(dir, "back", "output", "notes.txt"), "utf8"), "half done");
  const json = await runCli(["fetch", name, "--to", "again", "--json"], { cwd: dir, env });
  assert.equal(json.code, 0, json.stderr);
  const result = JSON.parse(json.stdout) as { model?: string; noModel?: string; files: string[] };
  assert.equal(result.model, undefined);
  assert.match(result.noModel!, /^it failed/);
  assert.deepEqual(result.files, ["output/notes.txt"]);
});

test("every command's --json prints JSON on stdout (logs: one object a line with time, stream, host, line)", async () => {
  const { env } = cliEnv({ PIP_INDEX_URL: process.env.PIP_INDEX_URL ?? "file:///opt/pypi/simple" });
  const { dir, name, fit } = await failedJob(env);
  const parse = (what: string, text: string): unknown => {
    try {
      return JSON.parse(text);
    } catch {
      assert.fail(`${what} --json printed no JSON: ${text}`);
    }
  };
  parse("fit", fit.stdout);
  const runs: Record<string, string[]> = {
    fit: ["fit", "train.py", "--dry-run", "--json"],
    init: ["init", "train.py", "--json"],
    fetch: ["fetch", name, "--to", "json-fetch", "--json"],
    status: ["status", name, "--json"],
    jobs: ["jobs", "--json"],
    stop: ["stop", name, "--json"],
    settings: ["settings", "vertex", "--json"],
    doctor: ["doctor", "--backend", "local", "--json"],
    // a refused reference: its JSON error needs no registry here (test/e2e/oci-build.test.ts parses a build's --json result)
    build: ["build", "train.py", "--to", "Bad Ref!", "--json"],
  };
  const { commands } = await import("../../src/cli/commands.js");
  for (const command of commands) {
    if (command.name === "logs" || command.name === "completion") continue; // logs: below; completion prints a shell script
    assert.ok(runs[command.name], `a --json run of ${command.name} in this test`);
    const result = await runCli(runs[command.name]!, { cwd: dir, env });
    parse(command.name, result.stdout);
  }
  const logs = await runCli(["logs", name, "--json"], { cwd: dir, env });
  assert.equal(logs.code, 0, logs.stderr);
  const lines = logs.stdout
    .trimEnd()
    .split("\n")
    .map((line) => parse("logs", line) as Record<string, unknown>);
  assert.ok(
    lines.some((line) => line.line === "giving up" && line.stream === "job" && line.host === null && typeof line.time === "string"),
    logs.stdout,
  );
});

test("hints are spelled as the user ran the command (npx), and a setting of another backend says whose and how it is chosen", async () => {
  const dir = writeTree({ "train.py": "print('hi')\n" });
  const { env } = cliEnv({ npm_command: "exec" });
  const typo = await runCli(["fitt"], { cwd: dir, env });
  assert.match(typo.stderr, /Did you mean `npx alekseylearn fit`\?/);
  const other = await runCli(["fit", "train.py", "--config.role_name=mine", "--dry-run"], { cwd: dir, env });
  assert.equal(other.code, 2);
  assert.match(
    other.stderr,
    /config\.role_name is not a setting of the local backend, which this job runs on; it is one of the sagemaker backend's \(sagemaker is chosen with --backend sagemaker, or an s3:\/\/ config\.output_path\)/,
  );
  assert.match(other.stderr, /hint: `npx alekseylearn settings local` lists the settings of the local backend/);
  const plain = await runCli(["fitt"], { cwd: dir, env: cliEnv().env });
  assert.match(plain.stderr, /Did you mean `alekseylearn fit`\?/);
  const project = await runCli(["fit", "train.py", "--backend", "vertex", "--config.output_path=gs://my-bucket/runs", "--config.project=p", "--dry-run"], {
    cwd: dir,
    env,
  });
  assert.match(project.stderr, /config\.project p is not a project ID \(Google's rule: 6 to 30 /);
});

test("settings lists a backend's settings with defaults; fit --help is short and points to it", async () => {
  const dir = writeTree({});
  const { env } = cliEnv();
  const settings = await runCli(["settings", "sagemaker"], { cwd: dir, env });
  assert.equal(settings.code, 0, settings.stderr);
  assert.match(settings.stdout, /config\.role_name: text\. The IAM role SageMaker assumes to run the job\. Default: "alekseylearn_sagemaker_role"\./);
  const help = await runCli(["fit", "--help"], { cwd: dir, env });
  assert.ok(help.stdout.split("\n").length < 70, `fit --help is ${help.stdout.split("\n").length} lines`);
  assert.doesNotMatch(help.stdout, /config\.role_name/);
  for (const backend of ["local", "sagemaker", "vertex", "kaggle"]) assert.match(help.stdout, new RegExp(`^  ${backend} `, "m"));
  assert.match(help.stdout, /`alekseylearn settings NAME`/);
  const one = await runCli(["fit", "--help", "--backend", "kaggle"], { cwd: dir, env });
  assert.match(one.stdout, /Settings of the kaggle backend[\s\S]*config\.accelerator: text\./);
  const unknown = await runCli(["settings", "sagemkr"], { cwd: dir, env });
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /Did you mean sagemaker\?/);
});

for (const shell of ["bash", "zsh"] as const) {
  test(`completion ${shell}, loaded as the README says, completes commands, options, backend names and each backend's --config. keys in a real interactive ${shell} (Tab on a terminal)`, async () => {
    const dir = writeTree({});
    const script = await runCli(["completion", shell], { cwd: dir, env: cliEnv().env });
    assert.equal(script.code, 0, script.stderr);
    const [command, option, backend, keys, otherBackend, anyBackend] = await completions(
      shell,
      script.stdout,
      [
        "alekseylearn do",
        "alekseylearn fit --dry",
        "alekseylearn fit --backend sa",
        "alekseylearn fit --backend sagemaker --config.rol",
        "alekseylearn fit --backend kaggle --config.rol",
        "alekseylearn fit --config.pro",
      ],
      dir,
    );
    assert.deepEqual(command, ["doctor"]);
    assert.deepEqual(option, ["--dry-run"]);
    assert.deepEqual(backend, ["sagemaker"]);
    assert.deepEqual(keys!.sort(), ["--config.role_arn=", "--config.role_name="]);
    assert.deepEqual(otherBackend, [], "a key of another backend is not offered");
    assert.ok(anyBackend!.includes("--config.project="), `without --backend, every backend's keys: ${anyBackend}`);
  });
}

test("completion zsh loads in a zsh that has not run compinit (it runs it) and in one that has, defining the completion for alekseylearn", async () => {
  const dir = writeTree({});
  const script = await runCli(["completion", "zsh"], { cwd: dir, env: cliEnv().env });
  const file = path.join(dir, "completion.zsh");
  fs.writeFileSync(file, script.stdout);
  const show = 'source "$0"; whence -w _alekseylearn; print -r -- "$_comps[alekseylearn]"';
  for (const before of ["", "autoload -U compinit && compinit -u; "]) {
    const said = execFileSync("zsh", ["-fc", before + show, file], { encoding: "utf8" });
    assert.equal(said, "_alekseylearn: function\n_bash_complete -o default -F _alekseylearn\n", `${before || "no compinit before"}: ${said}`);
  }
});
