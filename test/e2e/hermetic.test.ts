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
import { hostOptEntries } from "../../src/backends/local/sandbox.js";
import { listTree, writeTree } from "../helpers/tree.js";

/** path → content of every file under `dir`. */
function contents(dir: string): Record<string, string> {
  return Object.fromEntries(listTree(dir).map((file) => [file, fs.readFileSync(path.join(dir, file), "utf8")]));
}

test("hermetic: with files in this machine's /opt/ml, a local job and a Kaggle kernel neither see nor change them, and still leave their models", () => {
  const canary = randomBytes(8).toString("hex");
  const hostMl = writeTree({
    "metadata/resource-metadata.json": `{"ResourceName": "notebook-${canary}"}`,
    "model/old-model.bin": `old ${canary}`,
    "input/config/hyperparameters.json": `{"canary": "${canary}"}`,
  });
  const before = contents(hostMl);
  const inside = path.join(path.dirname(fileURLToPath(import.meta.url)), "hermetic-inside.js");
  const binds = hostOptEntries().flatMap((entry) => ["--dev-bind", `/opt/${entry}`, `/opt/${entry}`]);
  const run = spawnSync(
    "bwrap",
    ["--dev-bind", "/", "/", "--tmpfs", "/opt", ...binds, "--bind", hostMl, "/opt/ml", "--", process.execPath, inside, canary, ...Object.keys(before)],
    {
      encoding: "utf8",
      env: process.env,
      timeout: 300_000,
    },
  );
  assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`);
  assert.match(run.stdout, /hermetic ok/);
  assert.deepEqual(contents(hostMl), before, "the machine's /opt/ml is exactly as it was");
});

test("the /opt entries a sandbox binds again leave out ml, and any link that leads into it", () => {
  const opt = writeTree({ "ml/model/x": "", "tools/bin/t": "" });
  fs.symlinkSync("ml", path.join(opt, "sagemaker"));
  fs.symlinkSync(path.join(opt, "ml", "model"), path.join(opt, "models"));
  fs.symlinkSync("tools", path.join(opt, "tools-link"));
  assert.deepEqual(hostOptEntries(opt), ["tools", "tools-link"]);
});
