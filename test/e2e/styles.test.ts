/**
 * One training file, unchanged, on the local backend, whichever platform it
 * was written for (test/helpers/styles.ts): in bubblewrap, the job's /gcs and
 * /kaggle are its own and lead to its folders; without bubblewrap, files
 * written for SageMaker or Vertex AI run through their variables, and a file
 * that names /opt/ml or /kaggle itself is refused before anything runs.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { cliEnv, runCli } from "../helpers/cli.js";
import { archiveText, listTree, writeTree } from "../helpers/tree.js";
import { KAGGLE_DATA, KAGGLE_NOTEBOOK, unpickle, V3_HYPERPARAMETERS, V3_SCRIPT, VERTEX_SCRIPT } from "../helpers/styles.js";
import { fileTimeLimit } from "../helpers/limit.js";

fileTimeLimit(15, import.meta.url);

const LIMIT = { timeout: 5 * 60_000 };

/** The host's contract roots as they were before the tests (the suite may run on a machine that has them). */
const hostRoots = (): Record<string, string[] | null> =>
  Object.fromEntries(["/gcs", "/kaggle", "/opt/ml"].map((root) => [root, fs.existsSync(root) ? listTree(root) : null]));
const before = hostRoots();

/** A PATH with Python's folder only: no bubblewrap (the CLI itself is started by its absolute path). */
function withoutBwrap(): { env: NodeJS.ProcessEnv; python: string } {
  const python = execFileSync("python3", ["-c", "import os, sys; print(os.path.realpath(sys.executable))"], { encoding: "utf8" }).trim();
  return { env: cliEnv({ PATH: path.dirname(python) }).env, python };
}

test(
  "in bubblewrap, a Vertex AI-style script finds AIP_MODEL_DIR (gs://), writes through /gcs into its own model, and sees CLUSTER_SPEC and TF_CONFIG",
  LIMIT,
  async () => {
    const project = writeTree({ "task.py": VERTEX_SCRIPT });
    const { env } = cliEnv();
    const result = await runCli(["fit", "task.py", "--hyperparameter.lr=0.05", "--json"], { cwd: project, env });
    assert.equal(result.code, 0, result.stderr);
    const job = JSON.parse(result.stdout);
    assert.equal(job.provider.sandbox, "bwrap");
    const model = JSON.parse(archiveText(job.model)["model.json"]!);
    assert.deepEqual(model, { lr: 0.05, task: { type: "workerpool0", index: 0 }, chief: ["127.0.0.1:2222"], gs: true });
    assert.match(result.stderr, /saved model to \/gcs\/alekseylearn-job\/task-\S+\/model\//);
    assert.deepEqual(hostRoots(), before, "nothing appeared at this machine's /gcs, /kaggle or /opt/ml, not even a mount point");
  },
);

test(
  "in bubblewrap, a Vertex AI-style script given a gs:// path of its own writes through the job's own /gcs: named, kept in output.tar.gz under gcs/, nothing on this machine's /gcs",
  LIMIT,
  async () => {
    const project = writeTree({ "task.py": VERTEX_SCRIPT });
    const { env } = cliEnv();
    const result = await runCli(["fit", "task.py", "--hyperparameter.model-dir=gs://my-bucket/models/x", "--json"], { cwd: project, env });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /warning: the job wrote 1 file\(s\) through \/gcs \(\/gcs\/my-bucket\/models\/x\/model\.json\)/);
    const job = JSON.parse(result.stdout);
    assert.equal(job.model, undefined, "nothing in /opt/ml/model: the script was told to save elsewhere");
    assert.equal(JSON.parse(archiveText(job.output)["gcs/my-bucket/models/x/model.json"]!).gs, true);
    assert.deepEqual(hostRoots(), before);
  },
);

test("in bubblewrap, a Kaggle-style notebook reads /kaggle/input/data and its /kaggle/working/model.pkl comes back as the model", LIMIT, async () => {
  const project = writeTree({ "kernel.ipynb": KAGGLE_NOTEBOOK, ...KAGGLE_DATA });
  const { env } = cliEnv();
  const result = await runCli(["fit", "kernel.ipynb", "--input.data=data", "--json"], { cwd: project, env });
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, /rows: 3/);
  const job = JSON.parse(result.stdout);
  const model = archiveText(job.model);
  assert.deepEqual(Object.keys(model), ["model.pkl"]);
  assert.deepEqual(unpickle(model["model.pkl"]!), { rows: 3, inputs: ["data"] });
  const to = path.join(project, "fetched");
  assert.equal((await runCli(["fetch", job.name, "--to", to], { cwd: project, env })).code, 0);
  assert.ok(fs.existsSync(path.join(to, "model.pkl")), "fetch returns it");
  assert.deepEqual(hostRoots(), before);
});

test(
  "a SageMaker SDK v3 ModelTrainer script gets its arguments in v3's JSON form with hyperparameter_format=json, with bubblewrap and without",
  LIMIT,
  async () => {
    const project = writeTree({ "train.py": V3_SCRIPT });
    for (const { env, extra } of [
      { env: cliEnv().env, extra: [] as string[] },
      { env: withoutBwrap().env, extra: [`--config.python=${withoutBwrap().python}`] },
    ]) {
      const result = await runCli(["fit", "train.py", ...V3_HYPERPARAMETERS, "--config.hyperparameter_format=json", ...extra, "--json"], { cwd: project, env });
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stderr, /All hyperparameter validations passed!/);
      assert.equal(JSON.parse(archiveText(JSON.parse(result.stdout).model)["results.json"]!).status, "success");
    }
    // In the classic toolkit's form (the default), the same script's json.loads refuses `True`: the setting is what makes it run.
    const classic = await runCli(["fit", "train.py", ...V3_HYPERPARAMETERS], { cwd: project, env: cliEnv().env });
    assert.equal(classic.code, 1);
    assert.match(classic.stderr, /failed: .*error: argument --boolean: invalid <lambda> value: 'True'/);
    const plan = await runCli(["fit", "train.py", ...V3_HYPERPARAMETERS, "--config.hyperparameter_format=json", "--dry-run", "--json"], {
      cwd: project,
      env: cliEnv().env,
    });
    assert.equal(plan.code, 0, plan.stderr);
    const command = JSON.parse(plan.stdout).requests[0].request.command as string[];
    assert.deepEqual(command.slice(command.indexOf("--boolean"), command.indexOf("--boolean") + 2), ["--boolean", "true"], "the dry run shows v3's form too");
    assert.deepEqual(command.slice(command.indexOf("--dict"), command.indexOf("--dict") + 2), ["--dict", '{"a": 1, "b": [true]}']);
  },
);

test("without bubblewrap, a Vertex AI-style script runs through AIP_MODEL_DIR naming the job's own folder: no gs:// to turn into /gcs", LIMIT, async () => {
  const project = writeTree({ "task.py": VERTEX_SCRIPT });
  const { env, python } = withoutBwrap();
  const result = await runCli(["fit", "task.py", `--config.python=${python}`, "--json"], { cwd: project, env });
  assert.equal(result.code, 0, result.stderr);
  const model = JSON.parse(archiveText(JSON.parse(result.stdout).model)["model.json"]!);
  assert.equal(model.gs, false);
  assert.deepEqual(hostRoots(), before);
});

test(
  "without bubblewrap, a file that names /kaggle or /opt/ml itself is refused before anything runs, naming the line and the ways out; sandbox=none runs it anyway",
  LIMIT,
  async () => {
    const { env, python } = withoutBwrap();
    const kaggle = writeTree({ "kernel.ipynb": KAGGLE_NOTEBOOK, ...KAGGLE_DATA });
    const refused = await runCli(["fit", "kernel.ipynb", "--input.data=data", `--config.python=${python}`], { cwd: kaggle, env });
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(
      refused.stderr,
      /kernel\.ipynb line 2 names \/kaggle\/input\/data\/train\.csv \(and 3 more lines\), but bubblewrap \(bwrap\) is not installed/,
    );
    assert.match(refused.stderr, /apt-get install bubblewrap/);
    assert.match(refused.stderr, /--config\.runner=docker/);
    assert.doesNotMatch(refused.stderr, /Creating|Installing|cell 1/, "nothing was built or run");

    const sagemaker = writeTree({
      "train.py":
        "import json, os\nhps = json.load(open('/opt/ml/input/config/hyperparameters.json'))\nopen(os.path.join(os.environ['SM_MODEL_DIR'], 'c.txt'), 'w').write(hps['C'])\n",
    });
    const refusedToo = await runCli(["fit", "train.py", "--hyperparameter.C=0.05", `--config.python=${python}`], { cwd: sagemaker, env });
    assert.equal(refusedToo.code, 1);
    assert.match(refusedToo.stderr, /train\.py line 2 names \/opt\/ml\/input\/config\/hyperparameters\.json/);

    // Asked for explicitly, it runs, with the warning: the script reads this machine's /opt/ml (it has none here) and fails in its own words.
    const anyway = await runCli(["fit", "train.py", "--hyperparameter.C=0.05", `--config.python=${python}`, "--config.sandbox=none"], { cwd: sagemaker, env });
    assert.match(anyway.stderr, /warning: train\.py line 2 names \/opt\/ml\/input\/config\/hyperparameters\.json; with config\.sandbox=none/);
    if (!fs.existsSync("/opt/ml/input/config/hyperparameters.json")) assert.match(anyway.stderr, /failed: FileNotFoundError/);
  },
);
