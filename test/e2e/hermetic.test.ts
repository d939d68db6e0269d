/**
 * Hermetic with respect to this machine (issue 12, item 8): on a machine whose
 * /opt/ml already holds files (a SageMaker notebook instance's metadata, or a
 * job that once wrote there), no job and no test server sees or writes them.
 * The test makes such a machine in a private mount namespace (bubblewrap) and
 * runs a local job and a Kaggle kernel in it (hermetic-inside.ts).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { hostOptEntries, hostRootEntries } from "../../src/backends/local/sandbox.js";
import { listTree, writeTree } from "../helpers/tree.js";
import { fileTimeLimit } from "../helpers/limit.js";

fileTimeLimit(10, import.meta.url);

/** path → content of every file under `dir`. */
function contents(dir: string): Record<string, string> {
  return Object.fromEntries(listTree(dir).map((file) => [file, fs.readFileSync(path.join(dir, file), "utf8")]));
}

test("hermetic: with files in this machine's /opt/ml, /gcs and /kaggle, a local job and a Kaggle kernel neither see nor change them, and still leave their models", () => {
  const canary = randomBytes(8).toString("hex");
  const hostMl = writeTree({
    "metadata/resource-metadata.json": `{"ResourceName": "notebook-${canary}"}`,
    "model/old-model.bin": `old ${canary}`,
    "input/config/hyperparameters.json": `{"canary": "${canary}"}`,
  });
  // A machine with Cloud Storage FUSE mounted at /gcs, and one that once ran Kaggle's image, with its /kaggle.
  const hostGcs = writeTree({ [`alekseylearn-job/x/model/old.txt`]: `old ${canary}`, "bucket/data.csv": canary });
  const hostKaggle = writeTree({ "input/data/train.csv": canary, "working/old.txt": canary });
  const before = [hostMl, hostGcs, hostKaggle].map(contents);
  const inside = path.join(path.dirname(fileURLToPath(import.meta.url)), "hermetic-inside.js");
  // That machine, in a private mount namespace: this machine's / entry by entry, with those three folders added.
  const root = hostRootEntries()
    .filter((entry) => !["opt", "gcs", "kaggle", "proc", "dev"].includes(entry.name))
    .flatMap((entry) => (entry.kind === "link" ? ["--symlink", entry.target, `/${entry.name}`] : ["--dev-bind", `/${entry.name}`, `/${entry.name}`]));
  const binds = hostOptEntries().flatMap((entry) => ["--dev-bind", `/opt/${entry}`, `/opt/${entry}`]);
  const run = spawnSync(
    "bwrap",
    [
      ...root,
      "--dev-bind",
      "/dev",
      "/dev",
      "--proc",
      "/proc",
      "--tmpfs",
      "/opt",
      ...binds,
      "--bind",
      hostMl,
      "/opt/ml",
      "--bind",
      hostGcs,
      "/gcs",
      "--bind",
      hostKaggle,
      "/kaggle",
      "--",
      process.execPath,
      inside,
      canary,
      ...Object.keys(before[0]!),
    ],
    {
      encoding: "utf8",
      env: process.env,
      timeout: 300_000,
    },
  );
  assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`);
  assert.match(run.stdout, /hermetic ok/);
  assert.deepEqual([hostMl, hostGcs, hostKaggle].map(contents), before, "the machine's /opt/ml, /gcs and /kaggle are exactly as they were");
});

test("the /opt entries a sandbox binds again leave out ml, and any link that leads into it", () => {
  const opt = writeTree({ "ml/model/x": "", "tools/bin/t": "" });
  fs.symlinkSync("ml", path.join(opt, "sagemaker"));
  fs.symlinkSync(path.join(opt, "ml", "model"), path.join(opt, "models"));
  fs.symlinkSync("tools", path.join(opt, "tools-link"));
  assert.deepEqual(hostOptEntries(opt), ["tools", "tools-link"]);
});
