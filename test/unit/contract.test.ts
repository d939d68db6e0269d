import { test } from "node:test";
import assert from "node:assert/strict";
import { contractConfigFiles, contractEnv, hyperparameterStrings } from "../../src/package/contract.js";
import { bwrapArgs } from "../../src/backends/local/sandbox.js";

test("SM_* variables are set as SageMaker's training toolkit sets them", () => {
  const env = contractEnv({ root: "/opt/ml", hyperparameters: { epochs: 3, "learning-rate": 0.1, optimizer: "adam", layers: [64, 32] }, channels: ["train", "validation"], numCpus: 8, numGpus: 0 });
  assert.equal(env.SM_MODEL_DIR, "/opt/ml/model");
  assert.equal(env.SM_OUTPUT_DATA_DIR, "/opt/ml/output/data");
  assert.equal(env.SM_CHANNEL_TRAIN, "/opt/ml/input/data/train");
  assert.equal(env.SM_CHANNEL_VALIDATION, "/opt/ml/input/data/validation");
  assert.deepEqual(JSON.parse(env.SM_CHANNELS!), ["train", "validation"]);
  assert.deepEqual(JSON.parse(env.SM_HPS!), { epochs: 3, "learning-rate": 0.1, optimizer: "adam", layers: [64, 32] });
  assert.equal(env.SM_HP_EPOCHS, "3");
  assert.equal(env.SM_HP_LEARNING_RATE, "0.1");
  assert.equal(env.SM_HP_OPTIMIZER, "adam");
  assert.equal(env.SM_HP_LAYERS, "[64,32]");
  assert.equal(env.SM_NUM_CPUS, "8");
  assert.equal(env.SM_NUM_GPUS, "0");
  assert.equal(env.SM_CURRENT_HOST, "algo-1");
  assert.deepEqual(JSON.parse(env.SM_HOSTS!), ["algo-1"]);
});

test("hyperparameters.json holds every value as a string, as the CreateTrainingJob API does", () => {
  assert.deepEqual(hyperparameterStrings({ epochs: 3, fast: true, name: "x", sizes: [1, 2] }), { epochs: "3", fast: "true", name: "x", sizes: "[1,2]" });
  const files = contractConfigFiles({ hyperparameters: { epochs: 3 }, channels: ["train"] });
  assert.deepEqual(files["hyperparameters.json"], { epochs: "3" });
  assert.deepEqual(files["resourceconfig.json"], { current_host: "algo-1", hosts: ["algo-1"] });
  assert.deepEqual(files["inputdataconfig.json"], { train: { TrainingInputMode: "File" } });
});

test("bwrap keeps the host's /opt entries, mounts the job folder at /opt/ml and inputs read-only", () => {
  const args = bwrapArgs("/state/runs/j/ml", [{ host: "/data", inside: "/opt/ml/input/data/train", readOnly: true }], ["ml", "wheels"], ["python", "-u", "train.py"]);
  assert.deepEqual(args, [
    "--dev-bind", "/", "/",
    "--tmpfs", "/opt",
    "--dev-bind", "/opt/wheels", "/opt/wheels",
    "--bind", "/state/runs/j/ml", "/opt/ml",
    "--ro-bind", "/data", "/opt/ml/input/data/train",
    "--die-with-parent",
    "--", "python", "-u", "train.py",
  ]);
});
