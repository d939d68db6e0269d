import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { parseDuration, parseValue } from "../../src/spec/values.js";
import { nearest } from "../../src/spec/nearest.js";
import { validateSettings } from "../../src/spec/schema.js";
import { buildSpec, backendForOutputPath } from "../../src/jobs/spec.js";
import { localSchema } from "../../src/backends/local/schema.js";
import { UserError } from "../../src/errors.js";
import { writeTree } from "../helpers/tree.js";
import { fileTimeLimit } from "../helpers/limit.js";

fileTimeLimit(3, import.meta.url);

const SCRIPT = "print('hi')\n";

async function userError(fn: () => unknown): Promise<UserError> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof UserError) return err;
    throw err;
  }
  assert.fail("expected a UserError");
}

/** Everything a UserError says, as a user reads it. */
function said(err: UserError): string {
  return [err.message, ...err.details, err.hint ?? ""].join("\n");
}

test("values are typed: numbers, booleans, lists, and text that keeps '='", () => {
  assert.equal(parseValue("2"), 2);
  assert.equal(parseValue("0.001"), 0.001);
  assert.equal(parseValue("1e-3"), 0.001);
  assert.equal(parseValue("true"), true);
  assert.equal(parseValue("false"), false);
  assert.deepEqual(parseValue("[a,b]"), ["a", "b"]);
  assert.deepEqual(parseValue("1,2,3"), [1, 2, 3]);
  assert.deepEqual(parseValue("[]"), []);
  assert.equal(parseValue("a=b=c"), "a=b=c");
  assert.equal(parseValue("adam"), "adam");
});

test("durations read as seconds", () => {
  assert.equal(parseDuration("90"), 90);
  assert.equal(parseDuration("2h"), 7200);
  assert.equal(parseDuration("1h30m"), 5400);
  assert.equal(parseDuration("1d"), 86400);
  assert.equal(parseDuration("soon"), undefined);
  assert.equal(parseDuration(""), undefined);
});

test("nearest names a plausible typo and nothing for unrelated words", () => {
  assert.equal(nearest("ouput_path", ["output_path", "python", "sandbox"]), "output_path");
  assert.equal(nearest("pyhton", ["output_path", "python", "sandbox"]), "python");
  assert.equal(nearest("zzzzzz", ["output_path", "python", "sandbox"]), undefined);
});

test("settings: flag text is typed by the schema, defaults fill in, aliases map", () => {
  const { settings, problems } = validateSettings(localSchema, { train_instance_count: "1", stop_timeout: "2m", python: "3" }, "the local backend");
  assert.deepEqual(problems, []);
  assert.equal(settings.instance_count, 1);
  assert.equal(settings.stop_timeout, 120);
  assert.equal(settings.python, "3", "a text setting keeps digits as text");
  assert.equal(settings.output_path, "./alekseylearn-output");
  assert.equal(settings.sandbox, "auto");
});

test("settings: every problem is reported at once, with the nearest key", () => {
  const { problems } = validateSettings(localSchema, { ouput_path: "x", instance_count: "two", sandbox: "docker" }, "the local backend");
  assert.equal(problems.length, 3);
  assert.match(problems[0]!, /config\.ouput_path is not a setting of the local backend; did you mean config\.output_path\?/);
  assert.match(problems[1]!, /config\.instance_count must be a whole number ≥ 1, got "two"/);
  assert.match(problems[2]!, /config\.sandbox must be one of auto, bwrap, none/);
});

test("the backend follows the output path's scheme", () => {
  assert.equal(backendForOutputPath("s3://bucket/sagemaker/runs"), "sagemaker");
  assert.equal(backendForOutputPath("gs://bucket/runs"), "vertex");
  assert.equal(backendForOutputPath("./runs"), "local");
  assert.equal(backendForOutputPath(undefined), "local");
});

test("a script with requirements.txt becomes a local job spec with defaults", async () => {
  const dir = writeTree({ "train.py": SCRIPT, "requirements.txt": "joblib\n" });
  const spec = await buildSpec({ artifact: "train.py", hyperparameters: { epochs: 3 } }, dir);
  assert.equal(spec.backend, "local");
  assert.deepEqual(spec.artifact, { kind: "script", dir, entry: "train.py", isFolder: false });
  assert.equal(spec.environment?.kind, "requirements");
  assert.equal(spec.environment?.content, "joblib\n");
  assert.equal(spec.outputPath, path.join(dir, "alekseylearn-output"));
  assert.deepEqual(spec.hyperparameters, { epochs: "3" });
});

test("a folder with --entry runs the entry inside it", async () => {
  const dir = writeTree({ "project/src/train.py": SCRIPT, "project/requirements.txt": "" });
  const spec = await buildSpec({ artifact: "project", entry: "src/train.py" }, dir);
  assert.equal(spec.artifact.dir, path.join(fs.realpathSync(dir), "project"));
  assert.equal(spec.artifact.entry, "src/train.py");
  assert.equal(spec.artifact.isFolder, true);
});

test("the project config file supplies defaults and flags win", async () => {
  const dir = writeTree({
    "train.py": SCRIPT,
    "alekseylearn.yml": "config:\n  output_path: runs\n  stop_timeout: 30s\nhyperparameters:\n  epochs: 5\n  lr: 0.1\ninputs:\n  train: data\n",
    "data/x.csv": "1,2\n",
  });
  const spec = await buildSpec({ artifact: "train.py", config: { stop_timeout: "5" }, hyperparameters: { epochs: 7 } }, dir);
  assert.equal(spec.outputPath, path.join(dir, "runs"), "a relative path in the file is relative to the file");
  assert.equal(spec.settings.stop_timeout, 5);
  assert.deepEqual(spec.hyperparameters, { epochs: "7", lr: "0.1" });
  assert.deepEqual(spec.inputs, { train: path.join(dir, "data") });
  assert.equal(spec.configFile, path.join(dir, "alekseylearn.yml"));
});

test("[tool.alekseylearn] in pyproject.toml is read too", async () => {
  const dir = writeTree({ "train.py": SCRIPT, "pyproject.toml": '[project]\nname = "x"\n\n[tool.alekseylearn.config]\noutput_path = "out"\n' });
  assert.equal((await buildSpec({ artifact: "train.py" }, dir)).outputPath, path.join(dir, "out"));
});

/** Values a JavaScript number would change (SageMaker keeps every hyperparameter as the text it is given). */
const EXACT = { id: "12345678901234567890", lr: "0.10", huge: "1e400", zero: "007", list: "[1, 2]", flag: "true", name: "adam" };

test("hyperparameters keep the text typed, from flags, alekseylearn.yml and pyproject.toml alike", async () => {
  const flags = writeTree({ "train.py": SCRIPT });
  assert.deepEqual((await buildSpec({ artifact: "train.py", hyperparameters: EXACT }, flags)).hyperparameters, EXACT);
  const yaml = writeTree({
    "train.py": SCRIPT,
    "alekseylearn.yml": 'hyperparameters:\n  id: 12345678901234567890\n  lr: 0.10\n  huge: 1e400\n  zero: 007\n  list: [1, 2]\n  flag: true\n  name: "adam"\n',
  });
  assert.deepEqual((await buildSpec({ artifact: "train.py" }, yaml)).hyperparameters, EXACT);
  const toml = writeTree({
    "train.py": SCRIPT,
    "pyproject.toml":
      '[tool.alekseylearn.hyperparameters]\nid = 12345678901234567890\nlr = 0.10 # the usual\nhuge = 1e400\nflag = true\nname = "adam"\n\n[tool.other]\nlr = 5\n',
  });
  assert.deepEqual((await buildSpec({ artifact: "train.py" }, toml)).hyperparameters, { id: EXACT.id, lr: "0.10", huge: "1e400", flag: "true", name: "adam" });
  const inline = writeTree({ "train.py": SCRIPT, "pyproject.toml": "[tool.alekseylearn]\nhyperparameters = { lr = 0.10, epochs = 5 }\n" });
  assert.deepEqual((await buildSpec({ artifact: "train.py" }, inline)).hyperparameters, { lr: "0.10", epochs: "5" });
});

test("an unknown key in the project config names the nearest valid one", async () => {
  const dir = writeTree({ "train.py": SCRIPT, "alekseylearn.yml": "hyperparameter:\n  epochs: 5\n" });
  assert.match(said(await userError(() => buildSpec({ artifact: "train.py" }, dir))), /unknown key `hyperparameter`; did you mean `hyperparameters`\?/);
});

test("error: missing artifact", async () => {
  const err = await userError(() => buildSpec({ artifact: "nope.py" }, writeTree({})));
  assert.match(err.message, /Training artifact nope\.py does not exist/);
  assert.equal(err.exitCode, 2);
});

test("error: unsupported extension", async () => {
  const dir = writeTree({ "train.R": "x <- 1\n" });
  const err = await userError(() => buildSpec({ artifact: "train.R" }, dir));
  assert.match(err.message, /Cannot run .*train\.R: alekseylearn runs Python scripts \(\.py\) and Jupyter notebooks \(\.ipynb\)/);
});

test("error: both environment files, without --envfile", async () => {
  const dir = writeTree({ "train.py": SCRIPT, "requirements.txt": "", "environment.yml": "dependencies: [python]\n" });
  const err = await userError(() => buildSpec({ artifact: "train.py" }, dir));
  assert.match(err.message, /Both requirements\.txt and environment\.yml are in .*: which one describes the environment\?/);
  assert.match(err.hint!, /--envfile/);
  // and --envfile settles it
  assert.equal((await buildSpec({ artifact: "train.py", envfile: "environment.yml" }, dir)).environment?.kind, "conda");
});

test("error: unparseable environment.yml", async () => {
  const dir = writeTree({ "train.py": SCRIPT, "environment.yml": "name: x\ndependencies:\n  - python\n - [oops\n" });
  const err = await userError(() => buildSpec({ artifact: "train.py" }, dir));
  assert.match(err.message, /environment\.yml is not valid YAML/);
});

test("error: unknown config key names the nearest one", async () => {
  const dir = writeTree({ "train.py": SCRIPT });
  const err = await userError(() => buildSpec({ artifact: "train.py", config: { ouput_path: "x" } }, dir));
  assert.match(err.message, /config\.ouput_path is not a setting of the local backend; did you mean config\.output_path\?/);
  assert.equal(err.exitCode, 2);
});

test("error: non-numeric count", async () => {
  const dir = writeTree({ "train.py": SCRIPT });
  const err = await userError(() => buildSpec({ artifact: "train.py", config: { instance_count: "two" } }, dir));
  assert.match(err.message, /config\.instance_count must be a whole number ≥ 1, got "two"/);
});

test("error: output path of an unknown scheme", async () => {
  const dir = writeTree({ "train.py": SCRIPT });
  const err = await userError(() => buildSpec({ artifact: "train.py", config: { output_path: "ftp://host/runs" } }, dir));
  assert.match(err.message, /The output path ftp:\/\/host\/runs has an unknown scheme ftp:\/\//);
  assert.match(err.message, /local folder, file:\/\/, s3:\/\/ .*gs:\/\//);
});

test("error: --entry outside the folder", async () => {
  const dir = writeTree({ "project/train.py": SCRIPT, "elsewhere.py": SCRIPT });
  const err = await userError(() => buildSpec({ artifact: "project", entry: "../elsewhere.py" }, dir));
  assert.match(err.message, /--entry \.\.\/elsewhere\.py is outside the folder project/);
  const viaLink = writeTree({ "project/train.py": SCRIPT, "secret.py": SCRIPT });
  fs.symlinkSync(path.join(viaLink, "secret.py"), path.join(viaLink, "project", "link.py"));
  assert.match((await userError(() => buildSpec({ artifact: "project", entry: "link.py" }, viaLink))).message, /is outside the folder/);
});

test("error: a folder without --entry lists what it could run", async () => {
  const dir = writeTree({ "project/train.py": SCRIPT, "project/eval.py": SCRIPT });
  const err = await userError(() => buildSpec({ artifact: "project" }, dir));
  assert.match(err.message, /project is a folder: say which file in it to run with --entry FILE/);
  assert.match(err.hint!, /eval\.py, train\.py/);
});

test("error: more than one instance in one container on the local backend, and inputs that do not exist, reported together", async () => {
  const dir = writeTree({ "train.py": SCRIPT });
  const err = await userError(() =>
    buildSpec({ artifact: "train.py", config: { instance_count: "2", runner: "docker" }, inputs: { train: "missing-data" } }, dir),
  );
  assert.match(err.message, /2 problems/);
  assert.match(said(err), /config\.instance_count > 1 runs one process per host on this machine \(runner=process\)/);
  assert.match(said(err), /input train: .*missing-data does not exist/);
});

test("error: torchrun with a notebook, and processes_per_host without torchrun", async () => {
  const dir = writeTree({ "train.ipynb": JSON.stringify({ cells: [], metadata: {}, nbformat: 4, nbformat_minor: 5 }), "train.py": SCRIPT });
  assert.match(said(await userError(() => buildSpec({ artifact: "train.ipynb", config: { distribution: "torchrun" } }, dir))), /torchrun launches a script/);
  assert.match(
    said(await userError(() => buildSpec({ artifact: "train.py", config: { processes_per_host: "2" } }, dir))),
    /processes_per_host applies with config\.distribution=torchrun/,
  );
  assert.match(said(await userError(() => buildSpec({ artifact: "train.py", config: { distribution: "mpi" } }, dir))), /distribution/);
});

test("the output path picks the backend (gs:// → vertex, which then needs it), and a typo names the nearest", async () => {
  const dir = writeTree({ "train.py": SCRIPT });
  assert.match(
    said(await userError(() => buildSpec({ artifact: "train.py", backend: "vertex" }, dir))),
    /config\.output_path is required by the vertex backend/,
  );
  assert.equal((await buildSpec({ artifact: "train.py", config: { output_path: "gs://bucket/runs", project: "my-proj" } }, dir)).backend, "vertex");
  assert.equal((await buildSpec({ artifact: "train.py", config: { output_path: "s3://bucket/sagemaker" } }, dir)).backend, "sagemaker");
  assert.match(said(await userError(() => buildSpec({ artifact: "train.py", backend: "locl" }, dir))), /Did you mean local\?/);
});
