/**
 * The published package carries the job runtime: every job on every backend
 * runs its files, so a file missing from the package would break every job of
 * an installed alekseylearn while the repository's tests still pass.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { RUNTIME_DIR, runtimeFiles } from "../../src/package/runtime.js";
import { fileTimeLimit } from "../helpers/limit.js";

fileTimeLimit(3, import.meta.url);

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

test("npm pack ships every file of the job runtime (the entrypoint, the package, the Kaggle bootstrap) and none of its tests", () => {
  const packed = spawnSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: ROOT, encoding: "utf8" });
  assert.equal(packed.status, 0, packed.stderr);
  const files = new Set((JSON.parse(packed.stdout) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((file) => file.path));
  const runtime = path.relative(ROOT, RUNTIME_DIR).split(path.sep).join("/");
  const wanted = [...Object.keys(runtimeFiles()), "kaggle_bootstrap.py"].map((name) => `${runtime}/${name}`);
  assert.ok(wanted.length > 10, wanted.join(", "));
  for (const name of wanted) assert.ok(files.has(name), `${name} is not in the package`);
  assert.deepEqual(
    [...files].filter((name) => name.startsWith(`${runtime}/`) && (name.includes("/tests/") || name.includes("__pycache__"))),
    [],
  );
});
