/**
 * The image's entrypoint on Vertex AI, run with this machine's Python as the
 * image runs it (`train --KEY VALUE …`), with folders standing in for the
 * Cloud Storage FUSE mounts under /gcs: the script sees SageMaker's contract
 * (channels, hyperparameters, SM_* variables), and the model is packed to
 * OUTPUT_PATH/JOB/output/model.tar.gz and copied to $AIP_MODEL_DIR.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import * as tar from "tar";
import { ENTRYPOINT_SOURCE } from "../../src/package/entrypoint.js";
import { writeTree, listTree } from "../helpers/tree.js";

const SCRIPT = `import json, os, sys
seen = {
    "argv": sys.argv[1:],
    "hps": json.loads(os.environ["SM_HPS"]),
    "channels": json.loads(os.environ["SM_CHANNELS"]),
    "train": sorted(os.listdir(os.environ["SM_CHANNEL_TRAIN"])),
    "one": sorted(os.listdir(os.environ["SM_CHANNEL_ONE"])),
    "host": os.environ["SM_CURRENT_HOST"],
    "type": os.environ["SM_CURRENT_INSTANCE_TYPE"],
    "hosts": json.loads(os.environ["SM_HOSTS"]),
}
open(os.path.join(os.environ["SM_MODEL_DIR"], "seen.json"), "w").write(json.dumps(seen))
os.makedirs(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"]), exist_ok=True)
open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "metrics.txt"), "w").write("ok")
`;

test("on Vertex the entrypoint writes SageMaker's config from its arguments, lays /gcs inputs out as channels, and packs the model where fetch and Vertex look", () => {
  const root = writeTree({
    "code/train.py": SCRIPT,
    "gcs/data/train/a.csv": "1\n",
    "gcs/data/train/b.csv": "2\n",
    "gcs/data/one.csv": "3\n",
    "gcs/ckpt/step-1": "saved",
  });
  const entrypoint = path.join(root, "alekseylearn_entrypoint.py");
  fs.writeFileSync(entrypoint, ENTRYPOINT_SOURCE);
  const out = path.join(root, "gcs/bucket/runs/j/output");
  const modelDir = path.join(root, "gcs/bucket/runs/j/model");
  const run = spawnSync("python3", [entrypoint, "train", "--epochs", "3", "--lr", "0.1"], {
    cwd: path.join(root, "code"),
    encoding: "utf8",
    env: {
      PATH: process.env.PATH,
      SAGEMAKER_BASE_DIR: path.join(root, "ml"),
      ALEKSEYLEARN_ENTRY: "train.py",
      ALEKSEYLEARN_KIND: "script",
      TRAINING_JOB_NAME: "j",
      ALEKSEYLEARN_MACHINE_TYPE: "n1-standard-4",
      ALEKSEYLEARN_OUTPUT_DIR: out,
      ALEKSEYLEARN_INPUTS: JSON.stringify({ train: path.join(root, "gcs/data/train"), one: path.join(root, "gcs/data/one.csv") }),
      ALEKSEYLEARN_CHECKPOINTS: path.join(root, "gcs/ckpt"),
      AIP_MODEL_DIR: modelDir,
      CLUSTER_SPEC: JSON.stringify({ cluster: { workerpool0: ["h0:2222"], workerpool1: ["h1:2222", "h2:2222"] }, task: { type: "workerpool0", index: 0 } }),
    },
  });
  assert.equal(run.status, 0, run.stderr);
  const seen = JSON.parse(fs.readFileSync(path.join(root, "ml/model/seen.json"), "utf8"));
  assert.deepEqual(seen.argv, ["--epochs", "3", "--lr", "0.1"]);
  assert.deepEqual(seen.hps, { epochs: 3, lr: 0.1 });
  assert.deepEqual(seen.channels, ["one", "train"]);
  assert.deepEqual(seen.train, ["a.csv", "b.csv"]);
  assert.deepEqual(seen.one, ["one.csv"], "a single object lands as a file inside its channel's folder");
  assert.equal(seen.host, "algo-1");
  assert.equal(seen.type, "n1-standard-4");
  assert.deepEqual(seen.hosts, ["algo-1", "algo-2", "algo-3"]);
  assert.ok(fs.existsSync(path.join(root, "ml/checkpoints/step-1")), "the checkpoints were restored before the script ran");
  const entries: string[] = [];
  tar.list({ file: path.join(out, "model.tar.gz"), sync: true, onReadEntry: (entry) => void entries.push(entry.path) });
  assert.deepEqual(entries, ["seen.json"]);
  const data: string[] = [];
  tar.list({ file: path.join(out, "output.tar.gz"), sync: true, onReadEntry: (entry) => void data.push(entry.path) });
  assert.ok(data.includes("metrics.txt"), data.join(","));
  assert.deepEqual(listTree(modelDir), ["seen.json"], "the model folder is in $AIP_MODEL_DIR too");
});

test("on SageMaker (no Vertex variables) nothing of this happens: the entrypoint writes no config and packs nothing itself", () => {
  const root = writeTree({ "code/train.py": "import os\nopen(os.path.join(os.environ['SM_MODEL_DIR'], 'm'), 'w').write('x')\n" });
  const entrypoint = path.join(root, "alekseylearn_entrypoint.py");
  fs.writeFileSync(entrypoint, ENTRYPOINT_SOURCE);
  const run = spawnSync("python3", [entrypoint, "train"], {
    cwd: path.join(root, "code"),
    encoding: "utf8",
    env: { PATH: process.env.PATH, SAGEMAKER_BASE_DIR: path.join(root, "ml"), ALEKSEYLEARN_ENTRY: "train.py", ALEKSEYLEARN_KIND: "script" },
  });
  assert.equal(run.status, 0, run.stderr);
  assert.deepEqual(listTree(path.join(root, "ml/input/config")), []);
  assert.deepEqual(listTree(path.join(root, "ml/model")), ["m"]);
});
