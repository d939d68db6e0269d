/**
 * The script-mode contract, checked against SageMaker's training toolkit
 * (github:aws/sagemaker-training-toolkit at 3383937): `mapping.py`
 * (`to_cmd_args`, `to_env_vars`), `environment.py` (`read_hyperparameters`:
 * each value `json.loads`ed, else kept as text; `Environment.to_env_vars`:
 * the list of SM_* variables) and `ENVIRONMENT_VARIABLES.md`. The expected
 * forms below are what the toolkit's own mapping.py returns for the same
 * input (run once by hand against that commit; the toolkit is not installable
 * here). Our Python runs for real, with this machine's python3.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { contractConfigFiles, hyperparameterStrings } from "../../src/package/contract.js";
import { TOOLKIT_SOURCE } from "../../src/package/toolkit.js";
import { bwrapArgs } from "../../src/backends/local/sandbox.js";
import { writeTree } from "../helpers/tree.js";

/** Run `body` (Python, after the toolkit's functions) and parse what it prints as JSON. */
function python(body: string): unknown {
  const dir = writeTree({ "run.py": `${TOOLKIT_SOURCE}\nimport json, sys\n${body}\n` });
  const result = spawnSync("python3", [path.join(dir, "run.py")], { encoding: "utf8" });
  assert.equal(result.status, 0, result.stderr);
  return JSON.parse(result.stdout);
}

/** Hyperparameters as SageMaker writes them to hyperparameters.json: strings, as typed. */
const TYPED = {
  "learning-rate": "0.10",
  min_samples_leaf: "3",
  n: "5",
  flag: "true",
  layers: "[1,2]",
  opt: "adam",
  big: "12345678901234567890",
  zero: "007",
  mapping: '{"b": 2, "a": "x"}',
  f: "1e5",
};

test("hyperparameters become arguments exactly as the toolkit's mapping.to_cmd_args forms them", () => {
  const args = python(`print(json.dumps(to_cmd_args(_al_decode_hyperparameters(json.loads(${JSON.stringify(JSON.stringify(TYPED))})))))`);
  // Sorted by name; -K for a one-character name; each value json.loads'ed then str()'d (0.10 → 0.1, true → True, [1,2] → [1, 2]);
  // a mapping as k=v pairs sorted by key; text that is not JSON (007, adam) kept as it is; integers of any size exact.
  assert.deepEqual(args, [
    "--big",
    "12345678901234567890",
    "-f",
    "100000.0",
    "--flag",
    "True",
    "--layers",
    "[1, 2]",
    "--learning-rate",
    "0.1",
    "--mapping",
    "a=x,b=2",
    "--min_samples_leaf",
    "3",
    "-n",
    "5",
    "--opt",
    "adam",
    "--zero",
    "007",
  ]);
});

test("SM_HP_<KEY> and SM_HPS are named and formed as the toolkit's mapping.to_env_vars does", () => {
  const env = python(`d = _al_decode_hyperparameters(json.loads(${JSON.stringify(JSON.stringify(TYPED))}))
e = {"hp_%s" % k: v for k, v in d.items()}
e["hps"] = d
print(json.dumps(to_env_vars(e)))`) as Record<string, string>;
  // The key upper-cased as it is (learning-rate → SM_HP_LEARNING-RATE); text as it is; anything else compact JSON with sorted keys.
  assert.equal(env["SM_HP_LEARNING-RATE"], "0.1");
  assert.equal(env.SM_HP_MIN_SAMPLES_LEAF, "3");
  assert.equal(env.SM_HP_N, "5");
  assert.equal(env.SM_HP_FLAG, "true");
  assert.equal(env.SM_HP_LAYERS, "[1,2]");
  assert.equal(env.SM_HP_OPT, "adam");
  assert.equal(env.SM_HP_ZERO, "007");
  assert.equal(env.SM_HP_MAPPING, '{"a":"x","b":2}');
  assert.equal(env.SM_HP_F, "100000.0");
  assert.equal(
    env.SM_HPS,
    '{"big":12345678901234567890,"f":100000.0,"flag":true,"layers":[1,2],"learning-rate":0.1,"mapping":{"a":"x","b":2},"min_samples_leaf":3,"n":5,"opt":"adam","zero":"007"}',
  );
});

test("training_environment sets every SM_* variable of the toolkit's Environment.to_env_vars, from the config files", () => {
  const root = writeTree({});
  const files = contractConfigFiles({ hyperparameters: { "min-samples-leaf": "3", sagemaker_program: "train.py", lr: 0.1 }, channels: ["train", "test-set"] });
  fs.mkdirSync(path.join(root, "input", "config"), { recursive: true });
  for (const [name, content] of Object.entries(files)) fs.writeFileSync(path.join(root, "input", "config", name), JSON.stringify(content));
  const [env, args] = python(`print(json.dumps(training_environment(${JSON.stringify(root)}, "/opt/ml/code", "src/train.py", "job-1")))`) as [
    Record<string, string>,
    string[],
  ];
  assert.deepEqual(args, ["--lr", "0.1", "--min-samples-leaf", "3"], "sagemaker_* hyperparameters are the toolkit's own, not the script's");
  assert.deepEqual(JSON.parse(env.SM_USER_ARGS!), args);
  assert.equal(env["SM_HP_MIN-SAMPLES-LEAF"], "3", "the toolkit's name");
  assert.equal(env.SM_HP_MIN_SAMPLES_LEAF, "3", "alekseylearn's earlier name stays");
  assert.equal(env.SM_HP_SAGEMAKER_PROGRAM, undefined);
  assert.equal(env.SM_FRAMEWORK_PARAMS, "{}");
  assert.deepEqual(JSON.parse(env.SM_HPS!), { lr: 0.1, "min-samples-leaf": 3 });
  assert.equal(env.SM_MODEL_DIR, `${root}/model`);
  assert.equal(env.SM_INPUT_DIR, `${root}/input`);
  assert.equal(env.SM_INPUT_CONFIG_DIR, `${root}/input/config`);
  assert.equal(env.SM_OUTPUT_DIR, `${root}/output`);
  assert.equal(env.SM_OUTPUT_DATA_DIR, `${root}/output/data`);
  assert.equal(env.SM_OUTPUT_INTERMEDIATE_DIR, `${root}/output/intermediate`);
  assert.equal(env.SM_CHANNEL_TRAIN, `${root}/input/data/train`);
  assert.equal(env["SM_CHANNEL_TEST-SET"], `${root}/input/data/test-set`);
  assert.equal(env.SM_CHANNEL_TEST_SET, `${root}/input/data/test-set`);
  assert.equal(env.SM_CHANNELS, '["test-set","train"]');
  assert.equal(env.SM_CURRENT_HOST, "algo-1");
  assert.equal(env.SM_HOSTS, '["algo-1"]');
  assert.equal(env.SM_CURRENT_INSTANCE_TYPE, "local");
  assert.equal(env.SM_CURRENT_INSTANCE_GROUP, "homogeneousCluster");
  assert.equal(env.SM_NETWORK_INTERFACE_NAME, "eth0");
  assert.equal(env.SM_LOG_LEVEL, "20");
  assert.equal(env.SM_USER_ENTRY_POINT, "src/train.py");
  assert.equal(env.SM_MODULE_NAME, "src/train");
  assert.equal(env.SM_MODULE_DIR, "/opt/ml/code");
  assert.equal(env.SM_FRAMEWORK_MODULE, "");
  assert.equal(env.SM_NUM_NEURONS, "0");
  assert.match(env.SM_NUM_CPUS!, /^[1-9]\d*$/);
  assert.match(env.SM_NUM_GPUS!, /^\d+$/);
  assert.deepEqual(JSON.parse(env.SM_RESOURCE_CONFIG!), files["resourceconfig.json"]);
  assert.deepEqual(JSON.parse(env.SM_INPUT_DATA_CONFIG!), files["inputdataconfig.json"]);
  const training = JSON.parse(env.SM_TRAINING_ENV!) as Record<string, unknown>;
  assert.equal(training.job_name, "job-1");
  assert.equal(training.module_dir, "/opt/ml/code");
  assert.deepEqual(training.hyperparameters, { lr: 0.1, "min-samples-leaf": 3 });
  assert.deepEqual(training.channel_input_dirs, { train: `${root}/input/data/train`, "test-set": `${root}/input/data/test-set` });
  for (const key of Object.keys(env)) assert.match(key, /^SM_[A-Z0-9_-]+$/, key);
});

test("hyperparameters.json holds every value as a string, as the CreateTrainingJob API does; config files as SageMaker writes them", () => {
  assert.deepEqual(hyperparameterStrings({ epochs: 3, fast: true, name: "x", sizes: [1, 2], lr: "0.10" }), {
    epochs: "3",
    fast: "true",
    name: "x",
    sizes: "[1,2]",
    lr: "0.10",
  });
  const files = contractConfigFiles({ hyperparameters: { epochs: "3" }, channels: ["train"] });
  assert.deepEqual(files["hyperparameters.json"], { epochs: "3" });
  assert.deepEqual(files["resourceconfig.json"], {
    current_host: "algo-1",
    current_instance_type: "local",
    current_group_name: "homogeneousCluster",
    hosts: ["algo-1"],
    instance_groups: [{ instance_group_name: "homogeneousCluster", instance_type: "local", hosts: ["algo-1"] }],
    network_interface_name: "eth0",
  });
  assert.deepEqual(files["inputdataconfig.json"], { train: { TrainingInputMode: "File", S3DistributionType: "FullyReplicated", RecordWrapperType: "None" } });
});

test("bwrap: the job's own PID namespace with the entrypoint as PID 1; the host's /opt entries kept, the job folder at /opt/ml, inputs read-only", () => {
  const args = bwrapArgs(
    "/state/runs/j/ml",
    [{ host: "/data", inside: "/opt/ml/input/data/train", readOnly: true }],
    ["ml", "wheels"],
    ["python", "-u", "train.py"],
    3,
  );
  assert.deepEqual(args, [
    "--dev-bind",
    "/",
    "/",
    "--unshare-pid",
    "--as-pid-1",
    "--proc",
    "/proc",
    "--tmpfs",
    "/opt",
    "--dev-bind",
    "/opt/wheels",
    "/opt/wheels",
    "--bind",
    "/state/runs/j/ml",
    "/opt/ml",
    "--ro-bind",
    "/data",
    "/opt/ml/input/data/train",
    "--die-with-parent",
    "--info-fd",
    "3",
    "--",
    "python",
    "-u",
    "train.py",
  ]);
});
