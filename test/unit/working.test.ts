/** What a job leaves in its working folder: the snapshot and its difference (src/package/working.ts). */
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { keepWorkingFiles, leftBehind, snapshot } from "../../src/package/working.js";
import { listTree, writeTree } from "../helpers/tree.js";
import { fileTimeLimit } from "../helpers/limit.js";

fileTimeLimit(3, import.meta.url);

test("new and changed files are what a job left; caches, environments and alekseylearn's own folders are not", () => {
  const dir = writeTree({ "train.py": "x", "data/a.csv": "1", "state/alekseylearn/jobs/j.json": "{}", ".venv/lib/x.py": "" });
  const before = snapshot(dir, [path.join(dir, "state")]);
  fs.writeFileSync(path.join(dir, "model.pkl"), "m");
  fs.writeFileSync(path.join(dir, "data/a.csv"), "changed");
  fs.writeFileSync(path.join(dir, "state/alekseylearn/jobs/k.json"), "{}");
  fs.mkdirSync(path.join(dir, "__pycache__"));
  fs.writeFileSync(path.join(dir, "__pycache__/train.cpython-311.pyc"), "");
  const left = leftBehind(before, snapshot(dir, [path.join(dir, "state")]));
  assert.deepEqual(left, ["data/a.csv", "model.pkl"]);
  const into = writeTree({});
  assert.equal(keepWorkingFiles(dir, left, into), 2);
  assert.deepEqual(listTree(into), ["working/data/a.csv", "working/model.pkl"]);
});
