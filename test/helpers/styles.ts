/**
 * Training files written for each platform, the way its own samples write
 * them, to show that one file runs unchanged on every backend:
 * - Vertex AI's: the model directory from `AIP_MODEL_DIR` (a `gs://` URI), turned into a
 *   `/gcs/` path by the script itself, and the cluster from `CLUSTER_SPEC` and `TF_CONFIG`
 *   (as GoogleCloudPlatform/vertex-ai-samples' custom-training scripts do, e.g.
 *   notebooks/official/training/get_started_vertex_training_lightgbm.ipynb's task.py);
 * - Kaggle's: a notebook that reads `/kaggle/input/<dataset>/…` and writes `/kaggle/working/…`
 *   (as Kaggle's notebook template and its Titanic starters do);
 * - SageMaker SDK v3 `ModelTrainer`'s: argparse with `json.loads` for booleans, lists and mappings,
 *   checked against `SM_HPS` (aws/sagemaker-python-sdk's hyperparameter example, train.py).
 * Standard library only, so they run in any environment.
 */

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { runCli } from "./cli.js";
import { listTree, writeTree } from "./tree.js";

/** Vertex AI style: `--model-dir` defaults to $AIP_MODEL_DIR; gs:// becomes /gcs/; the hyperparameter `lr` as an argument. */
export const VERTEX_SCRIPT = `import argparse
import json
import os

parser = argparse.ArgumentParser()
parser.add_argument("--model-dir", dest="model_dir", default=os.getenv("AIP_MODEL_DIR"), type=str, help="Model dir.")
parser.add_argument("--lr", dest="lr", default=0.5, type=float)
args, _ = parser.parse_known_args()

# As Google's samples do: Cloud Storage FUSE serves gs://BUCKET/PATH at /gcs/BUCKET/PATH.
model_dir = args.model_dir
if model_dir.startswith("gs://"):
    model_dir = model_dir.replace("gs://", "/gcs/")
os.makedirs(model_dir, exist_ok=True)
cluster = json.loads(os.environ["CLUSTER_SPEC"])
tf_config = json.loads(os.environ["TF_CONFIG"])
with open(os.path.join(model_dir, "model.json"), "w") as f:
    json.dump({"lr": args.lr, "task": cluster["task"], "chief": tf_config["cluster"]["chief"], "gs": args.model_dir.startswith("gs://")}, f)
print("saved model to", model_dir)
`;

/** A notebook's JSON from its code cells (nbformat 4). */
export function notebookOf(...cells: string[]): string {
  return JSON.stringify({
    cells: cells.map((source) => ({ cell_type: "code", metadata: {}, execution_count: null, outputs: [], source: source.split(/(?<=\n)/) })),
    metadata: { kernelspec: { name: "python3", display_name: "Python 3", language: "python" } },
    nbformat: 4,
    nbformat_minor: 5,
  });
}

/** Kaggle style: reads the attached dataset `data` at /kaggle/input/data, writes its model to /kaggle/working. */
export const KAGGLE_NOTEBOOK = notebookOf(
  "import csv, os, pickle\nrows = list(csv.reader(open('/kaggle/input/data/train.csv')))\nprint('rows:', len(rows))\n",
  "model = {'rows': len(rows), 'inputs': sorted(os.listdir('/kaggle/input'))}\nwith open('/kaggle/working/model.pkl', 'wb') as f:\n    pickle.dump(model, f)\nprint('saved /kaggle/working/model.pkl')\n",
);

/** The Kaggle-style notebook's data: channel `data` holds train.csv. */
export const KAGGLE_DATA = { "data/train.csv": "a,b\n1,2\n3,4\n" };

/** SageMaker SDK v3 style: each value as ModelTrainer's drivers pass it (json.dumps), parsed back with json.loads. */
export const V3_SCRIPT = `import argparse
import json
import os

parser = argparse.ArgumentParser(description="Test Hyperparameters")
parser.add_argument("--string", type=str, required=True)
parser.add_argument("--integer", type=int, required=True)
parser.add_argument("--float", type=float, required=True)
parser.add_argument("--boolean", type=lambda x: json.loads(x), required=True)
parser.add_argument("--list", type=lambda x: json.loads(x), required=True)
parser.add_argument("--dict", type=lambda x: json.loads(x), required=True)
args = parser.parse_args()
expected = {"string": "Hello World", "integer": 1, "float": 3.14, "boolean": True, "list": [1, 2, 3], "dict": {"a": 1, "b": [True]}}
got = {"string": args.string, "integer": args.integer, "float": args.float, "boolean": args.boolean, "list": args.list, "dict": args.dict}
assert got == expected, got
assert json.loads(os.environ["SM_HPS"]) == expected, os.environ["SM_HPS"]
model_dir = os.environ.get("SM_MODEL_DIR", "/opt/ml/model")
with open(os.path.join(model_dir, "results.json"), "w") as f:
    json.dump({"status": "success", "hyperparameters": got}, f)
print("All hyperparameter validations passed!")
`;

/** The hyperparameters V3_SCRIPT expects, as flags (as a user types them). */
export const V3_HYPERPARAMETERS = [
  "--hyperparameter.string=Hello World",
  "--hyperparameter.integer=1",
  "--hyperparameter.float=3.14",
  "--hyperparameter.boolean=true",
  "--hyperparameter.list=[1,2,3]",
  '--hyperparameter.dict={"a": 1, "b": [true]}',
];

/** A Python pickle (as archiveText gives it: latin1 text) read back by python3, as JSON. */
export function unpickle(latin1: string): unknown {
  const out = execFileSync("python3", ["-c", "import json, pickle, sys; print(json.dumps(pickle.loads(sys.stdin.buffer.read())))"], {
    input: Buffer.from(latin1, "latin1"),
    encoding: "utf8",
  });
  return JSON.parse(out);
}

/** One project per style, each with an empty requirements.txt, under one new folder: `vertex/task.py`, `kaggle/kernel.ipynb` (and its `data/`), `v3/train.py`. */
export function styleProjects(): string {
  return writeTree({
    "vertex/task.py": VERTEX_SCRIPT,
    "vertex/requirements.txt": "",
    "kaggle/kernel.ipynb": KAGGLE_NOTEBOOK,
    "kaggle/requirements.txt": "",
    ...Object.fromEntries(Object.entries(KAGGLE_DATA).map(([name, text]) => [`kaggle/${name}`, text])),
    "v3/train.py": V3_SCRIPT,
    "v3/requirements.txt": "",
  });
}

/** `fit ARGS` in `dir`, then `fetch` of that job: the model's files, by name, as text (latin1). */
export async function fitAndFetch(dir: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<Record<string, string>> {
  const result = await runCli(["fit", ...args, "--json"], { cwd: dir, env });
  assert.equal(result.code, 0, result.stderr);
  const to = fs.mkdtempSync(path.join(os.tmpdir(), "fetched-"));
  const fetched = await runCli(["fetch", JSON.parse(result.stdout).name, "--to", to], { cwd: dir, env });
  assert.equal(fetched.code, 0, fetched.stderr);
  return Object.fromEntries(listTree(to).map((name) => [name, fs.readFileSync(path.join(to, name), "latin1")]));
}
