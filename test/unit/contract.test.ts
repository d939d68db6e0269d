/**
 * What TypeScript still knows of the contract: hyperparameters as SageMaker
 * stores them (strings, as typed), the runtime's arguments built from them,
 * and the sandbox that keeps every contract root private. The contract itself
 * (config files, SM_* variables, arguments) is the job runtime's, tested with
 * pytest in runtime/tests/ against the training toolkit's own forms.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { hyperparameterStrings } from "../../src/package/contract.js";
import { trainArgs } from "../../src/package/runtime.js";
import { bwrapArgs } from "../../src/backends/local/sandbox.js";
import { fileTimeLimit } from "../helpers/limit.js";

fileTimeLimit(3, import.meta.url);

test("hyperparameters.json holds every value as a string, as the CreateTrainingJob API does; the runtime gets them as typed, sorted", () => {
  assert.deepEqual(hyperparameterStrings({ epochs: 3, fast: true, name: "x", sizes: [1, 2], lr: "0.10" }), {
    epochs: "3",
    fast: "true",
    name: "x",
    sizes: "[1,2]",
    lr: "0.10",
  });
  assert.deepEqual(trainArgs({ lr: "0.10", epochs: 3, "a-b": "x" }), ["train", "--a-b", "x", "--epochs", "3", "--lr", "0.10"]);
});

test("bwrap: the host's / shown again entry by entry, /opt, /gcs and /kaggle the job's own; its own PID namespace with the runtime as PID 1; inputs read-only", () => {
  const args = bwrapArgs(
    { ml: "/state/runs/j/ml", gcs: "/state/runs/j/gcs", kaggle: "/state/runs/j/kaggle" },
    [{ host: "/data", inside: "/opt/ml/input/data/train", readOnly: true }],
    [
      { name: "bin", kind: "link", target: "usr/bin" },
      { name: "dev", kind: "dir" },
      { name: "gcs", kind: "dir" },
      { name: "kaggle", kind: "dir" },
      { name: "opt", kind: "dir" },
      { name: "proc", kind: "dir" },
      { name: "usr", kind: "dir" },
      { name: "swapfile", kind: "file" },
    ],
    ["ml", "wheels"],
    ["python", "-u", "train.py"],
    3,
  );
  assert.deepEqual(args, [
    "--symlink",
    "usr/bin",
    "/bin",
    "--dev-bind",
    "/usr",
    "/usr",
    "--ro-bind",
    "/swapfile",
    "/swapfile",
    "--dev-bind",
    "/dev",
    "/dev",
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
    "--bind",
    "/state/runs/j/gcs",
    "/gcs",
    "--bind",
    "/state/runs/j/kaggle",
    "/kaggle",
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
