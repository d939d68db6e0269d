/**
 * End to end through the CLI, on the local backend, with real Python, real
 * virtual environments (from the machine's wheel index) and real bubblewrap.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import * as tar from "tar";
import { copyExample, cliEnv, runCli, startCli, waitFor } from "../helpers/cli.js";
import { listTree, notebookOutput, writeTree } from "../helpers/tree.js";
import { rawTar } from "../helpers/rawtar.js";
import { ARGPARSE_ARGV, ARGPARSE_EXPECTED, ARGPARSE_HYPERPARAMETERS, ARGPARSE_SCRIPT } from "../helpers/scripts.js";

/** Entry names in a .tar.gz. */
async function archiveEntries(file: string): Promise<string[]> {
  const names: string[] = [];
  await tar.t({ file, onReadEntry: (entry) => void names.push(entry.path) });
  return names.sort();
}

function jobName(stdout: string): string {
  const match = /Job (\S+) completed/.exec(stdout) ?? /"name": "([^"]+)"/.exec(stdout);
  assert.ok(match, `a job name in: ${stdout}`);
  return match[1]!;
}

/**
 * A cache folder of the test's own and the environments in it: test files run at the same time and share
 * TEST_CACHE, so a count there would include what other files build.
 */
function privateCache(): { cache: string; envCount: () => number } {
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), "alekseylearn-cache-"));
  const dir = path.join(cache, "alekseylearn", "envs");
  return { cache, envCount: () => (fs.existsSync(dir) ? fs.readdirSync(dir).filter((name) => !name.includes(".")).length : 0) };
}

test("iris: fit leaves model.tar.gz where SageMaker would, fetch unpacks a model that loads, a rerun reuses the environment", async () => {
  const project = copyExample("iris");
  const { env } = cliEnv();

  const first = await runCli(["fit", "train.py"], { cwd: project, env });
  assert.equal(first.code, 0, first.stderr);
  const name = jobName(first.stdout);
  assert.match(name, /^train-\d{8}-\d{6}-[a-z0-9]{4}$/);
  assert.match(first.stderr, /test accuracy: 0\.\d+/, "the job's output is streamed live");
  const archive = path.join(project, "alekseylearn-output", name, "output", "model.tar.gz");
  assert.deepEqual(await archiveEntries(archive), ["metrics.json", "model.joblib"]);

  const fetched = await runCli(["fetch", name, "--to", "m/"], { cwd: project, env });
  assert.equal(fetched.code, 0, fetched.stderr);
  assert.deepEqual(listTree(path.join(project, "m")), ["metrics.json", "model.joblib"]);
  const status = JSON.parse((await runCli(["status", name, "--json"], { cwd: project, env })).stdout);
  assert.equal(status.state, "completed");
  // The fetched model is a real, working model: load it with the job's own environment and predict.
  const python = path.join(status.provider.environment, "bin", "python");
  const predicted = execFileSync(python, ["-c", "import joblib; print(joblib.load('m/model.joblib').predict([[5.1, 3.5, 1.4, 0.2]])[0])"], {
    cwd: project,
    encoding: "utf8",
  });
  assert.equal(predicted.trim(), "0", "a setosa flower is classified as class 0");

  const second = await runCli(["fit", "train.py", "--hyperparameter.C=0.5"], { cwd: project, env });
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stderr, /Using the cached environment/);
  assert.doesNotMatch(second.stderr, /Installing/);
  assert.match(second.stderr, /with C=0\.5/, "hyperparameters reach the script through SM_HPS");
  const again = JSON.parse((await runCli(["status", jobName(second.stdout), "--json"], { cwd: project, env })).stdout);
  assert.equal(again.provider.environment, status.provider.environment, "the second run uses the first one's environment");
});

/** A script that checks the contract from inside the job: hard-coded /opt/ml paths, hyperparameters, inputs, SM_* variables. */
const CONTRACT_SCRIPT = `
import json, os, sys, time
hps = json.load(open("/opt/ml/input/config/hyperparameters.json"))
data = open("/opt/ml/input/data/train/rows.csv").read()
assert os.environ["SM_MODEL_DIR"] == "/opt/ml/model", os.environ["SM_MODEL_DIR"]
assert os.environ["SM_CHANNEL_TRAIN"] == "/opt/ml/input/data/train"
assert json.loads(os.environ["SM_CHANNELS"]) == ["train"]
assert json.loads(os.environ["SM_HPS"])["epochs"] == 3
assert os.environ["SM_HP_TAG"] == hps["tag"]
try:
    open("/opt/ml/input/data/train/new.csv", "w")
    sys.exit("inputs must be read-only")
except OSError:
    pass
print("contract ok for", hps["tag"], "epochs", hps["epochs"], flush=True)
time.sleep(float(hps.get("sleep", "0")))
assert os.listdir("/opt/ml/model") == [], "another job's files are in this job's model folder"
with open("/opt/ml/model/" + hps["tag"] + ".txt", "w") as f:
    f.write(hps["tag"])
with open("/opt/ml/output/data/report.txt", "w") as f:
    f.write("rows: " + data)
`;
import { fileTimeLimit } from "../helpers/limit.js";

fileTimeLimit(20, import.meta.url);

test("contract: a script hard-coding /opt/ml sees SageMaker's layout, and two jobs at once never share a folder", async () => {
  const project = writeTree({ "train.py": CONTRACT_SCRIPT, "requirements.txt": "", "data/rows.csv": "1,2\n" });
  const hostMlBefore = listTree("/opt/ml");
  const { env } = cliEnv();
  const jobs = ["alpha", "beta"].map((tag) =>
    runCli(["fit", "train.py", "--input.train=data", "--hyperparameter.epochs=3", `--hyperparameter.tag=${tag}`, "--hyperparameter.sleep=1", "--json"], {
      cwd: project,
      env,
    }),
  );
  const results = await Promise.all(jobs);
  for (const [i, tag] of ["alpha", "beta"].entries()) {
    const result = results[i]!;
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, new RegExp(`contract ok for ${tag} epochs 3`));
    const job = JSON.parse(result.stdout);
    assert.equal(job.state, "completed");
    assert.equal(job.provider.sandbox, "bwrap");
    assert.deepEqual(await archiveEntries(job.model), [`${tag}.txt`]);
    assert.deepEqual(await archiveEntries(job.output), ["report.txt"]);
  }
  assert.deepEqual(listTree("/opt/ml"), hostMlBefore, "nothing is created on the host's /opt/ml (whatever it held before)");
  assert.deepEqual(listTree(path.join(project, "data")), ["rows.csv"], "the input folder is unchanged");
});

test("sandbox=none: the job finds its folders through SM_* variables alone", async () => {
  const project = writeTree({
    "train.py":
      "import os\nopen(os.path.join(os.environ['SM_MODEL_DIR'], 'm.txt'), 'w').write(open(os.path.join(os.environ['SM_CHANNEL_TRAIN'], 'x.txt')).read())\n",
    "requirements.txt": "",
    "x.txt": "hello",
  });
  const { env } = cliEnv();
  const result = await runCli(["fit", "train.py", "--config.sandbox=none", "--input.train=x.txt", "--json"], { cwd: project, env });
  assert.equal(result.code, 0, result.stderr);
  const job = JSON.parse(result.stdout);
  assert.equal(job.provider.sandbox, "none");
  const to = path.join(project, "fetched");
  assert.equal((await runCli(["fetch", job.name, "--to", to], { cwd: project, env })).code, 0);
  assert.equal(fs.readFileSync(path.join(to, "m.txt"), "utf8"), "hello");
});

test("notebook: executed headless cell by cell, model packed, executed copy with outputs kept beside it", async () => {
  const project = copyExample("notebook");
  const { env } = cliEnv();
  const result = await runCli(["fit", "train.ipynb", "--json"], { cwd: project, env });
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, /\[alekseylearn\] cell 2\/4/);
  assert.match(result.stderr, /training on 112 samples/, "cell output is streamed live");
  const job = JSON.parse(result.stdout);
  assert.deepEqual(await archiveEntries(job.model), ["model.joblib"]);

  const fetched = await runCli(["fetch", job.name, "--to", "out"], { cwd: project, env });
  assert.equal(fetched.code, 0, fetched.stderr);
  assert.deepEqual(listTree(path.join(project, "out")), ["model.joblib", "output/train.ipynb"]);
  assert.match(notebookOutput(path.join(project, "out", "output", "train.ipynb")), /training on 112 samples/, "the executed notebook holds its outputs");
  const original = JSON.parse(fs.readFileSync(path.join(project, "train.ipynb"), "utf8"));
  assert.ok(
    original.cells.every((cell: { outputs?: unknown[] }) => !cell.outputs?.length),
    "the user's notebook is not modified",
  );
});

test("a notebook whose cell fails: exit 1, the failure named by the cell's number (as Jupyter counts cells) and the exception, the executed copy kept up to the failure", async () => {
  const cells = [
    { cell_type: "markdown", metadata: {}, source: ["# A heading cell counts too"] },
    { cell_type: "code", metadata: {}, execution_count: null, outputs: [], source: ["print('first cell ran')"] },
    { cell_type: "code", metadata: {}, execution_count: null, outputs: [], source: ["raise ValueError('bad data in cell two')"] },
  ];
  const project = writeTree({ "nb.ipynb": JSON.stringify({ cells, metadata: {}, nbformat: 4, nbformat_minor: 5 }), "requirements.txt": "" });
  const { env } = cliEnv();
  const result = await runCli(["fit", "nb.ipynb"], { cwd: project, env });
  assert.equal(result.code, 1, result.stderr);
  assert.match(result.stderr, /error: Job nb-\S+ failed: cell 3: ValueError: bad data in cell two\./);
  assert.ok(!/failed: [^\n]*/.exec(result.stderr)![0].includes("\u001b"), "no terminal colour codes in the reason");
  const name = /Job (nb-\S+) failed/.exec(result.stderr)![1]!;
  const fetched = await runCli(["fetch", path.join(project, "alekseylearn-output", name, "output", "output.tar.gz"), "--to", "out"], { cwd: project, env });
  assert.equal(fetched.code, 0, fetched.stderr);
  assert.match(fs.readFileSync(path.join(project, "out", "nb.ipynb"), "utf8"), /first cell ran/);
});

test("a training script that exits non-zero: exit 1, its own last error line as the reason, its last log lines shown, the job marked failed", async () => {
  const project = writeTree({
    "train.py": "import sys\nfor i in range(30):\n    print('step', i)\nprint('loss is nan, giving up', file=sys.stderr)\nsys.exit(3)\n",
    "requirements.txt": "",
  });
  const { env } = cliEnv();
  const result = await runCli(["fit", "train.py"], { cwd: project, env });
  assert.equal(result.code, 1);
  assert.match(result.stderr, /error: Job train-\S+ failed: loss is nan, giving up\./);
  assert.match(result.stderr, /\n {2}step 29\n {2}loss is nan, giving up\n/, "the last lines of the log follow the error");
  assert.match(result.stderr, /hint: Its whole log: alekseylearn logs train-/);
  assert.doesNotMatch(result.stderr, /\n\s+at /, "no stack trace");
  const name = /Job (train-\S+) failed/.exec(result.stderr)![1]!;
  const status = JSON.parse((await runCli(["status", name, "--json"], { cwd: project, env })).stdout);
  assert.equal(status.state, "failed");
  assert.equal(status.exitCode, 3);
  const scripted = await runCli(["fit", "train.py", "--json"], { cwd: project, env });
  assert.equal(scripted.code, 1);
  assert.equal(JSON.parse(scripted.stdout).state, "failed", "--json prints the failed job's record too");
  const logs = await runCli(["logs", name], { cwd: project, env });
  assert.match(logs.stdout, /^step 0\n[\s\S]*step 29\nloss is nan, giving up\n$/);
  const fetched = await runCli(["fetch", name], { cwd: project, env });
  assert.equal(fetched.code, 1);
  assert.match(fetched.stderr, /Job train-\S+ has no model: it failed \(loss is nan, giving up\)/);

  // A traceback: the reason is its closing line, the exception's type and message, not "exited with code 1".
  fs.writeFileSync(path.join(project, "train.py"), "import json\nprint('loading')\nimport xgboost\n");
  const crashed = await runCli(["fit", "train.py"], { cwd: project, env });
  assert.equal(crashed.code, 1);
  assert.match(crashed.stderr, /error: Job train-\S+ failed: ModuleNotFoundError: No module named 'xgboost'\./);
});

test("Ctrl-C stops the job cleanly and marks it stopped", async () => {
  const project = writeTree({ "train.py": "import time\nprint('started', flush=True)\ntime.sleep(120)\nprint('never')\n", "requirements.txt": "" });
  const { env, stateDir } = cliEnv();
  // A mark of this test's own on the job's command line: other test files run jobs named train.py at the same time.
  const mark = `stop-me-${process.pid}-${Date.now()}`;
  const run = startCli(["fit", "train.py", "--config.stop_timeout=5", `--hyperparameter.mark=${mark}`], { cwd: project, env });
  await waitFor(() => run.output().includes("started"), "the job to start");
  run.child.kill("SIGINT");
  const result = await run.done;
  assert.equal(result.code, 130, result.stderr);
  assert.match(result.stderr, /Stopping train-/);
  assert.match(result.stderr, /Job train-\S+ was stopped/);
  const [record] = fs.readdirSync(path.join(stateDir, "jobs"));
  const job = JSON.parse(fs.readFileSync(path.join(stateDir, "jobs", record!), "utf8"));
  assert.equal(job.state, "stopped");
  const ps = execFileSync("ps", ["-eo", "args"], { encoding: "utf8" });
  assert.ok(!ps.split("\n").some((line) => line.includes(mark)), "the training process is gone");
});

test("--detach returns at once; logs --follow streams to the end; stop ends a running job", async () => {
  const project = writeTree({
    "train.py":
      "import sys, time\nfor i in range(3):\n    print('tick', i, flush=True)\n    time.sleep(0.3)\nopen('/opt/ml/model/done', 'w').write(sys.argv[0])\n",
    "sleepy.py": "import time\nprint('sleeping', flush=True)\ntime.sleep(120)\n",
    "requirements.txt": "",
  });
  const { env } = cliEnv();
  const detached = await runCli(["fit", "train.py", "--detach", "--json"], { cwd: project, env });
  assert.equal(detached.code, 0, detached.stderr);
  const name = JSON.parse(detached.stdout).name;
  const followed = await runCli(["logs", name, "--follow"], { cwd: project, env });
  assert.equal(followed.stdout, "tick 0\ntick 1\ntick 2\n");
  const status = JSON.parse((await runCli(["status", name, "--json"], { cwd: project, env })).stdout);
  assert.equal(status.state, "completed");
  assert.ok(fs.existsSync(status.model));

  const sleepy = JSON.parse((await runCli(["fit", "sleepy.py", "--detach", "--json"], { cwd: project, env })).stdout).name;
  await waitFor(
    () =>
      fs.existsSync(path.join(env.XDG_STATE_HOME!, "alekseylearn", "runs", sleepy, "job.log")) &&
      fs.readFileSync(path.join(env.XDG_STATE_HOME!, "alekseylearn", "runs", sleepy, "job.log"), "utf8").includes("sleeping"),
    "the detached job to start",
  );
  const stopped = await runCli(["stop", sleepy], { cwd: project, env });
  assert.equal(stopped.code, 0, stopped.stderr);
  await waitFor(
    () =>
      JSON.parse(
        execFileSync(
          process.execPath,
          [path.join(path.dirname(new URL(import.meta.url).pathname), "..", "..", "src", "cli", "main.js"), "status", sleepy, "--json"],
          { cwd: project, env, encoding: "utf8" },
        ),
      ).state === "stopped",
    "the job to stop",
    30_000,
  );

  const table = await runCli(["jobs"], { cwd: project, env });
  assert.match(table.stdout, /^NAME\s+BACKEND\s+STATE/);
  assert.match(table.stdout, new RegExp(`${sleepy}\\s+local\\s+stopped`));
  assert.match(table.stdout, new RegExp(`${name}\\s+local\\s+completed`));
});

test("fetch: an output path gives its newest job; a job with no model, and a malicious archive, are clear errors that change nothing", async () => {
  const project = writeTree({ "empty.py": "print('no model here')\n", "requirements.txt": "" });
  const { env } = cliEnv();
  const result = await runCli(["fit", "empty.py", "--json"], { cwd: project, env });
  assert.equal(result.code, 0, result.stderr);
  const name = JSON.parse(result.stdout).name;
  const noModel = await runCli(["fetch", name], { cwd: project, env });
  assert.equal(noModel.code, 1);
  assert.match(noModel.stderr, /error: Job empty-\S+ has no model: it wrote nothing to \/opt\/ml\/model \(SM_MODEL_DIR\)\./);

  // A hand-made archive whose entry climbs out of the target folder.
  const evil = path.join(project, "evil.tar");
  fs.writeFileSync(evil, rawTar([{ name: "../escaped.txt", content: "owned" }], false));
  fs.mkdirSync(path.join(project, "dest"));
  const refused = await runCli(["fetch", evil, "--to", "dest"], { cwd: project, env });
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /Refusing to extract .*evil\.tar.*\.\.\/escaped\.txt/);
  assert.deepEqual(listTree(path.join(project, "dest")), []);
  assert.ok(!fs.existsSync(path.join(project, "escaped.txt")));

  const iris = writeTree({ "train.py": "open('/opt/ml/model/w.txt', 'w').write('v2')\n", "requirements.txt": "" });
  const older = await runCli(["fit", "train.py", "--config.output_path=runs", "--hyperparameter.v=1"], { cwd: iris, env });
  assert.equal(older.code, 0, older.stderr);
  const newer = await runCli(["fit", "train.py", "--config.output_path=runs", "--json"], { cwd: iris, env });
  const newest = JSON.parse(newer.stdout).name;
  const fromPath = await runCli(["fetch", "runs", "--to", "m", "--json"], { cwd: iris, env });
  assert.equal(fromPath.code, 0, fromPath.stderr);
  assert.equal(JSON.parse(fromPath.stdout).job, newest);
  // Fetching again into the same folder is fine (same bytes); a changed file there is not overwritten.
  assert.equal((await runCli(["fetch", "runs", "--to", "m"], { cwd: iris, env })).code, 0);
  fs.writeFileSync(path.join(iris, "m", "w.txt"), "my edits");
  const conflict = await runCli(["fetch", "runs", "--to", "m"], { cwd: iris, env });
  assert.equal(conflict.code, 1);
  assert.match(conflict.stderr, /w\.txt/);
  assert.equal(fs.readFileSync(path.join(iris, "m", "w.txt"), "utf8"), "my edits");
  assert.equal((await runCli(["fetch", "runs", "--to", "m", "--overwrite"], { cwd: iris, env })).code, 0);
  assert.equal(fs.readFileSync(path.join(iris, "m", "w.txt"), "utf8"), "v2");
});

test("usage errors: exit 2, one or two lines, no stack trace, nothing created", async () => {
  const project = writeTree({ "train.py": "print(1)\n" });
  const { env, stateDir } = cliEnv();
  const cases: Array<[string[], RegExp]> = [
    [["fit", "missing.py"], /^error: Training artifact missing\.py does not exist\.\nhint: /],
    [
      ["fit", "train.py", "--config.ouput_path=x"],
      /^error: config\.ouput_path is not a setting of the local backend; did you mean config\.output_path\?\.\nhint: /,
    ],
    [["fti", "train.py"], /^error: Unknown command fti\.\nhint: Did you mean `alekseylearn fit`\?/],
    [["fit", "train.py", "--envfil=x"], /^error: Unknown option --envfil for `fit`\. Did you mean --envfile\?/],
    [["fit", "train.py", "--config.output_path=ftp://h/x"], /unknown scheme ftp:\/\//],
    [["fit", "train.py", "--name", "My_Job"], /^error: Job name My_Job is not valid on every backend\.\nhint: Use 2 to 63 characters/],
  ];
  for (const [args, expected] of cases) {
    const result = await runCli(args, { cwd: project, env });
    assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
    assert.match(result.stderr, expected);
    assert.ok(result.stderr.trim().split("\n").length <= 3, `short: ${result.stderr}`);
    assert.equal(result.stdout, "");
  }
  assert.ok(!fs.existsSync(path.join(stateDir, "jobs")), "no job was recorded");
  assert.ok(!fs.existsSync(path.join(project, "alekseylearn-output")));
});

test("--help teaches: the overview, fit's options, every local setting with its default", async () => {
  const { env } = cliEnv();
  const overview = await runCli(["--help"], { cwd: "/", env });
  assert.equal(overview.code, 0);
  for (const command of ["fit", "fetch", "status", "jobs", "logs", "stop"]) assert.match(overview.stdout, new RegExp(`\\n  ${command} `));
  const fit = await runCli(["fit", "--help", "--backend", "local"], { cwd: "/", env });
  assert.match(fit.stdout, /config\.output_path: text\. .* Default: "\.\/alekseylearn-output"\./);
  assert.match(fit.stdout, /config\.sandbox: one of auto, bwrap, none\./);
  assert.match(fit.stdout, /config\.instance_count \(also train_instance_count\)/);
});

test("an environment that cannot be built: exit 1 with pip's own words, the job marked failed, no half-made environment kept", async () => {
  const project = writeTree({ "train.py": "print(1)\n", "requirements.txt": "surely-no-such-package-alekseylearn==9.9\n" });
  const { cache, envCount } = privateCache();
  const { env, stateDir } = cliEnv({ XDG_CACHE_HOME: cache });
  const before = envCount();
  const result = await runCli(["fit", "train.py"], { cwd: project, env });
  assert.equal(result.code, 1, result.stderr);
  assert.match(result.stderr, /error: Creating the environment failed: `python -m pip install…` exited with 1\./);
  assert.match(result.stderr, /surely-no-such-package-alekseylearn/, "pip's last lines say which package");
  assert.match(result.stderr, /hint: The full output is in .*\.install\.log/);
  assert.equal(envCount(), before, "the broken environment was removed");
  const [record] = fs.readdirSync(path.join(stateDir, "jobs"));
  assert.equal(JSON.parse(fs.readFileSync(path.join(stateDir, "jobs", record!), "utf8")).state, "failed");
});

test("environment.yml without conda on PATH: a clear error that names what to install", async () => {
  const project = writeTree({ "train.py": "print(1)\n", "environment.yml": "name: x\ndependencies:\n  - python=3.11\n  - scikit-learn\n" });
  const { env } = cliEnv({ PATH: `${path.dirname(process.execPath)}:/usr/bin:/bin` });
  const result = await runCli(["fit", "train.py"], { cwd: project, env });
  assert.equal(result.code, 2, result.stderr);
  assert.match(
    result.stderr,
    /error: environment\.yml needs conda to build, and none of micromamba, mamba or conda is on PATH\.\nhint: Install micromamba .*or pass a requirements\.txt with --envfile\./,
  );
});

test("without bubblewrap on PATH: one warning, and the job still runs through the SM_* variables", async () => {
  const python = execFileSync("python3", ["-c", "import os, sys; print(os.path.realpath(sys.executable))"], { encoding: "utf8" }).trim();
  const project = writeTree({ "train.py": "import os\nopen(os.path.join(os.environ['SM_MODEL_DIR'], 'w.txt'), 'w').write('ok')\n", "requirements.txt": "" });
  // A PATH with only Python's folder: no bwrap (the CLI itself is started by its absolute path).
  const { env } = cliEnv({ PATH: path.dirname(python) });
  const result = await runCli(["fit", "train.py", `--config.python=${python}`, "--json"], { cwd: project, env });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stderr.match(/warning: bubblewrap \(bwrap\) is not installed/g)?.length, 1, result.stderr);
  assert.match(
    result.stderr,
    /the job finds its folders through SM_MODEL_DIR, AIP_MODEL_DIR and the other variables only, not at \/opt\/ml, \/gcs or \/kaggle/,
  );
  const job = JSON.parse(result.stdout);
  assert.equal(job.provider.sandbox, "none");
  assert.deepEqual(await archiveEntries(job.model), ["w.txt"]);
});

test("Ctrl-C while the environment is being built: exit 130, the job marked stopped, no half-made environment or lock left", async () => {
  const project = writeTree({ "train.py": "print(1)\n", "requirements.txt": "scipy\n" });
  const { cache } = privateCache();
  const { env, stateDir } = cliEnv({ XDG_CACHE_HOME: cache });
  const envs = path.join(cache, "alekseylearn", "envs");
  const run = startCli(["fit", "train.py"], { cwd: project, env });
  await waitFor(() => run.output().includes("Installing requirements.txt"), "pip to start");
  run.child.kill("SIGINT");
  const result = await run.done;
  assert.equal(result.code, 130, result.stderr);
  assert.match(result.stderr, /Stopped while creating the environment; nothing was kept\./);
  const after = fs
    .readdirSync(envs)
    .filter((name) => !name.endsWith(".install.log"))
    .sort();
  assert.deepEqual(after, [], "neither the environment nor its lock is left");
  const [record] = fs.readdirSync(path.join(stateDir, "jobs"));
  assert.equal(JSON.parse(fs.readFileSync(path.join(stateDir, "jobs", record!), "utf8")).state, "stopped");
});

test("two jobs needing the same new environment at once: one builds it, the other waits and reuses it", async () => {
  const requirements = `# shared ${Date.now()}\n`;
  const projects = [1, 2].map((i) => writeTree({ "train.py": `print('job ${i} ran')\n`, "requirements.txt": requirements }));
  const { cache, envCount } = privateCache();
  const { env } = cliEnv({ XDG_CACHE_HOME: cache });
  const before = envCount();
  const results = await Promise.all(projects.map((cwd) => runCli(["fit", "train.py"], { cwd, env })));
  for (const [i, result] of results.entries()) {
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, new RegExp(`job ${i + 1} ran`));
  }
  assert.equal(envCount(), before + 1, "one environment for both");
  assert.equal(results.filter((r) => /Environment ready/.test(r.stderr)).length, 1, "built once");
  assert.equal(results.filter((r) => /Using the cached environment/.test(r.stderr)).length, 1, "reused once");
});

test("fetch takes a file:// URL of an archive, and status and jobs speak plainly with no jobs yet", async () => {
  const project = writeTree({ "train.py": "open('/opt/ml/model/w.txt', 'w').write('w')\n", "requirements.txt": "" });
  const { env } = cliEnv();
  const none = await runCli(["jobs"], { cwd: project, env });
  assert.equal(none.stdout, "No jobs yet. Start one with `alekseylearn fit ARTIFACT`.\n");
  const status = await runCli(["status"], { cwd: project, env });
  assert.match(status.stderr, /^error: No jobs yet\.\nhint: Start one with `alekseylearn fit ARTIFACT`\./);
  const job = JSON.parse((await runCli(["fit", "train.py", "--json"], { cwd: project, env })).stdout);
  const fetched = await runCli(["fetch", `file://${job.model}`, "--to", "out", "--json"], { cwd: project, env });
  assert.equal(fetched.code, 0, fetched.stderr);
  assert.deepEqual(JSON.parse(fetched.stdout).files, ["w.txt"]);
  fs.writeFileSync(path.join(project, "a-file"), "mine");
  const intoFile = await runCli(["fetch", job.name, "--to", "a-file"], { cwd: project, env });
  assert.equal(intoFile.code, 2);
  assert.match(intoFile.stderr, /^error: a-file is a file, not a folder to fetch into\.\nhint: Pass --to a folder/);
  assert.equal(fs.readFileSync(path.join(project, "a-file"), "utf8"), "mine");
  const kept = await runCli(["fetch", job.name, "--to", "archives", "--no-extract"], { cwd: project, env });
  assert.equal(kept.code, 0, kept.stderr);
  assert.deepEqual(listTree(path.join(project, "archives")), ["model.tar.gz"]);
});

test("a fit killed outright while pip runs: status says so, and the next fit is not stuck behind its lock", async () => {
  const project = writeTree({ "train.py": "print('ran after all')\n", "requirements.txt": `# killed ${Date.now()}\nscipy\n` });
  const { env } = cliEnv();
  const run = startCli(["fit", "train.py", "--json"], { cwd: project, env });
  await waitFor(() => run.output().includes("Installing requirements.txt"), "pip to start");
  const name = /Job (\S+) \(local backend\)/.exec(run.output())![1]!;
  run.child.kill("SIGKILL");
  await run.done;
  const status = JSON.parse((await runCli(["status", name, "--json"], { cwd: project, env })).stdout);
  assert.equal(status.state, "failed");
  assert.equal(status.reason, "the process running the job ended before the job did");
  const again = await runCli(["fit", "train.py"], { cwd: project, env });
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /ran after all/);
});

test("a launcher (pyenv-style shim) is asked for its real Python once, and again when a version file changes", async () => {
  const python = execFileSync("python3", ["-c", "import os, sys; print(os.path.realpath(sys.executable))"], { encoding: "utf8" }).trim();
  const tools = writeTree({});
  const calls = path.join(tools, "calls.log");
  const launcher = path.join(tools, "python3-shim");
  fs.writeFileSync(launcher, `#!/bin/sh\necho asked >> "${calls}"\nexec "${python}" "$@"\n`, { mode: 0o755 });
  const project = writeTree({ "train.py": "print('ok')\n", "requirements.txt": "" });
  const { env } = cliEnv();
  const fit = (): Promise<{ code: number | null; stderr: string }> => runCli(["fit", "train.py", `--config.python=${launcher}`], { cwd: project, env });
  const asked = (): number => (fs.existsSync(calls) ? fs.readFileSync(calls, "utf8").trim().split("\n").length : 0);
  assert.equal((await fit()).code, 0);
  assert.equal((await fit()).code, 0);
  assert.equal(asked(), 1, "asked once for two runs");
  fs.writeFileSync(path.join(project, ".python-version"), "3.11\n");
  assert.equal((await fit()).code, 0);
  assert.equal(asked(), 2, "asked again once the version file changed");
});

/** The fetched model's seen.json of an ARGPARSE_SCRIPT job. */
async function seenBy(
  job: string,
  project: string,
  env: NodeJS.ProcessEnv,
): Promise<{ args: Record<string, unknown>; argv: string[]; env: Record<string, string> }> {
  const to = fs.mkdtempSync(path.join(project, "fetched-"));
  const fetched = await runCli(["fetch", job, "--to", to], { cwd: project, env });
  assert.equal(fetched.code, 0, fetched.stderr);
  return JSON.parse(fs.readFileSync(path.join(to, "seen.json"), "utf8"));
}

test("script mode: a SageMaker-style argparse script gets its hyperparameters as arguments (names with -, _ and one character) and the toolkit's SM_* variables", async () => {
  const project = writeTree({ "train.py": ARGPARSE_SCRIPT, "requirements.txt": "", "data/rows.csv": "1,2\n" });
  const { env } = cliEnv();
  for (const sandbox of ["auto", "none"]) {
    const result = await runCli(["fit", "train.py", ...ARGPARSE_HYPERPARAMETERS, "--input.train=data", `--config.sandbox=${sandbox}`, "--json"], {
      cwd: project,
      env,
    });
    assert.equal(result.code, 0, result.stderr);
    const job = JSON.parse(result.stdout);
    const seen = await seenBy(job.name, project, env);
    const root = sandbox === "auto" ? "/opt/ml" : seen.env.SM_MODEL_DIR!.replace(/\/model$/, "");
    assert.deepEqual(
      seen.args,
      { ...ARGPARSE_EXPECTED, model_dir: `${root}/model`, train: `${root}/input/data/train` },
      "argparse got every hyperparameter, not its defaults",
    );
    assert.deepEqual(seen.argv, ARGPARSE_ARGV);
    assert.deepEqual(JSON.parse(seen.env.SM_USER_ARGS!), ARGPARSE_ARGV);
    assert.equal(seen.env["SM_HP_N-ESTIMATORS"], "7", "named as the toolkit names it");
    assert.equal(seen.env.SM_HP_N_ESTIMATORS, "7", "and as alekseylearn named it before");
    assert.equal(seen.env["SM_HP_LEARNING-RATE"], "0.1");
    assert.equal(seen.env.SM_HP_E, "5");
    assert.deepEqual(JSON.parse(seen.env.SM_HPS!), { "n-estimators": 7, min_samples_leaf: 3, e: 5, "learning-rate": 0.1 });
    assert.equal(seen.env.SM_USER_ENTRY_POINT, "train.py");
    assert.equal(seen.env.SM_MODULE_NAME, "train");
    assert.equal(seen.env.SM_CHANNEL_TRAIN, `${root}/input/data/train`);
    assert.equal(JSON.parse(seen.env.SM_TRAINING_ENV!).job_name, job.name);
  }
});

test("script mode: hyperparameter_args=false keeps arguments from a script that refuses unknown ones; the SM_* variables still carry them", async () => {
  const project = writeTree({ "train.py": ARGPARSE_SCRIPT, "requirements.txt": "" });
  const { env } = cliEnv();
  const refused = await runCli(["fit", "train.py", "--hyperparameter.batch-size=32"], { cwd: project, env });
  assert.equal(refused.code, 1, "argparse refuses an argument it does not know, as on SageMaker");
  assert.match(refused.stderr, /unrecognized arguments: --batch-size 32/);
  const result = await runCli(["fit", "train.py", "--hyperparameter.batch-size=32", "--config.hyperparameter_args=false", "--json"], { cwd: project, env });
  assert.equal(result.code, 0, result.stderr);
  const seen = await seenBy(JSON.parse(result.stdout).name, project, env);
  assert.deepEqual(seen.argv, []);
  assert.equal(seen.args.n_estimators, 100, "the script's defaults");
  assert.equal(seen.env["SM_HP_BATCH-SIZE"], "32");
});

test("fit --dry-run on this machine: the command the script would get, the files it sees, and nothing created", async () => {
  const project = writeTree({ "train.py": ARGPARSE_SCRIPT, "requirements.txt": "", "data/rows.csv": "1,2\n" });
  const { env, stateDir } = cliEnv();
  const result = await runCli(["fit", "train.py", ...ARGPARSE_HYPERPARAMETERS, "--input.train=data", "--dry-run", "--json"], { cwd: project, env });
  assert.equal(result.code, 0, result.stderr);
  const plan = JSON.parse(result.stdout);
  assert.equal(plan.backend, "local");
  assert.deepEqual(plan.files, ["data/rows.csv", "requirements.txt", "train.py"]);
  assert.deepEqual(
    plan.requests.map((r: { api: string; operation: string }) => `${r.api} ${r.operation}`),
    ["local RunTrainingJob"],
  );
  const request = plan.requests[0].request;
  assert.deepEqual(request.command, ["python", "-u", "train.py", ...ARGPARSE_ARGV]);
  assert.deepEqual(
    request.configFiles["hyperparameters.json"],
    { "n-estimators": "7", min_samples_leaf: "3", e: "5", "learning-rate": "0.10" },
    "exactly the text typed",
  );
  assert.equal(request.environment.SM_CHANNEL_TRAIN, "/opt/ml/input/data/train");
  assert.ok(!fs.existsSync(path.join(stateDir, "jobs")) || fs.readdirSync(path.join(stateDir, "jobs")).length === 0, "no job record");
  assert.ok(!fs.existsSync(path.join(project, "alekseylearn-output")), "no output folder");
  const readable = await runCli(["fit", "train.py", "--dry-run"], { cwd: project, env });
  assert.equal(readable.code, 0, readable.stderr);
  assert.match(readable.stdout, /Dry run of job train-\S+ on the local backend: nothing was created/);
  assert.match(readable.stdout, /local RunTrainingJob/);
});

/** A script that starts a daemonised helper (its own session, as `setsid` or a background server does) and saves a checkpoint on SIGTERM. */
function treeScript(marker: string): string {
  return `import os, signal, subprocess, sys, time
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", "${marker}"], start_new_session=True)
def on_term(signum, frame):
    print("checkpointing", flush=True)
    time.sleep(2)
    open(os.path.join(os.environ["SM_MODEL_DIR"], "checkpoint.txt"), "w").write("saved at stop")
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
print("started", flush=True)
if "--quick" in sys.argv:
    sys.exit(0)
time.sleep(120)
`;
}

/** Is a process whose arguments hold `marker` still running? */
function running(marker: string): boolean {
  return execFileSync("ps", ["-eo", "args"], { encoding: "utf8" })
    .split("\n")
    .some((line) => line.includes(marker) && !line.includes("ps -eo"));
}

test("the job's process tree is the job's: a setsid helper ends with it, and Ctrl-C gives every process SIGTERM and packs what the handler saved (bwrap and sandbox=none)", async () => {
  for (const sandbox of ["auto", "none"]) {
    const marker = `alekseylearn-helper-${sandbox}-${process.pid}`;
    const project = writeTree({ "train.py": treeScript(marker), "requirements.txt": "" });
    const { env, stateDir } = cliEnv();
    const quick = await runCli(["fit", "train.py", "--hyperparameter.quick=1", `--config.sandbox=${sandbox}`, "--json"], { cwd: project, env });
    assert.equal(quick.code, 0, quick.stderr);
    const quickName = JSON.parse(quick.stdout).name as string;
    assert.ok(!running(marker), `the helper ended with the job (${sandbox})`);

    const run = startCli(["fit", "train.py", `--config.sandbox=${sandbox}`], { cwd: project, env });
    await waitFor(() => run.output().includes("started"), "the job to start");
    await waitFor(() => running(marker), "the helper to start");
    run.child.kill("SIGINT");
    const result = await run.done;
    assert.equal(result.code, 130, result.stderr);
    assert.match(result.stderr, /checkpointing/, "the training process itself got SIGTERM");
    assert.ok(!running(marker), `nothing of the job is left (${sandbox})`);
    const name = fs
      .readdirSync(path.join(stateDir, "jobs"))
      .map((file) => file.replace(/\.json$/, ""))
      .find((job) => job !== quickName)!;
    const job = JSON.parse(fs.readFileSync(path.join(stateDir, "jobs", `${name}.json`), "utf8"));
    assert.equal(job.state, "stopped");
    const to = path.join(project, "fetched");
    const fetched = await runCli(["fetch", name, "--to", to], { cwd: project, env });
    assert.equal(fetched.code, 0, fetched.stderr);
    assert.match(fetched.stderr, /was stopped before it ended/);
    assert.equal(fs.readFileSync(path.join(to, "checkpoint.txt"), "utf8"), "saved at stop", "model.tar.gz holds what the SIGTERM handler saved");
  }
});

test("files a job leaves in its working folder are named and kept in output.tar.gz under working/, and fetch brings them back", async () => {
  const script =
    "import os, pickle\npickle.dump({'w': 1}, open('model.pkl', 'wb'))\nopen('notes/run.txt', 'w').write('done')\nopen(os.path.join(os.environ['SM_MODEL_DIR'], 'm.txt'), 'w').write('model')\n";
  for (const sandbox of ["auto", "none"]) {
    const project = writeTree({ "train.py": script, "notes/keep.txt": "mine", "requirements.txt": "" });
    const { env } = cliEnv();
    const result = await runCli(["fit", "train.py", `--config.sandbox=${sandbox}`, "--json"], { cwd: project, env });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /the job wrote 2 file\(s\) into .*: model\.pkl, notes\/run\.txt/);
    const job = JSON.parse(result.stdout);
    assert.deepEqual(
      (await archiveEntries(job.output)).filter((entry) => !entry.endsWith("/")),
      ["working/model.pkl", "working/notes/run.txt"],
    );
    const to = path.join(project, "fetched");
    const fetched = await runCli(["fetch", job.name, "--to", to, "--json"], { cwd: project, env });
    assert.equal(fetched.code, 0, fetched.stderr);
    assert.deepEqual(JSON.parse(fetched.stdout).files, ["m.txt", "output/working/model.pkl", "output/working/notes/run.txt"]);
  }
});
