/**
 * The README's way to put the command on PATH: `npm install -g .` in a fresh
 * clone. npm links the global command to the folder and runs its `prepare`
 * without installing any of its dependencies, so the folder must build itself
 * (scripts/prepare.mjs). Here into a private prefix, from a copy of the
 * repository's files as a clone has them (no node_modules, no dist), with npm's
 * cache (`npm test` filled it) and the npm registry as the only network.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { REPO } from "../helpers/cli.js";
import { fileTimeLimit } from "../helpers/limit.js";

fileTimeLimit(6, import.meta.url);

const run = promisify(execFile);

/** The repository's files as a fresh clone has them: tracked and not ignored, none of the build or install. */
function freshClone(): string {
  const clone = fs.mkdtempSync(path.join(os.tmpdir(), "alekseylearn-clone-"));
  const listed = execFileSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], { cwd: REPO, encoding: "utf8" });
  for (const name of listed.split("\0").filter(Boolean)) {
    const from = path.join(REPO, name);
    if (!fs.existsSync(from)) continue; // deleted in the working tree
    fs.mkdirSync(path.dirname(path.join(clone, name)), { recursive: true });
    fs.cpSync(from, path.join(clone, name), { verbatimSymlinks: true });
  }
  return clone;
}

test("npm install -g . in a fresh clone (no node_modules, no dist) gives a working alekseylearn: --help, and fit --dry-run on examples/iris", async () => {
  const clone = freshClone();
  assert.ok(!fs.existsSync(path.join(clone, "node_modules")) && !fs.existsSync(path.join(clone, "dist")), "nothing installed or built");
  const prefix = fs.mkdtempSync(path.join(os.tmpdir(), "alekseylearn-prefix-"));
  const env: NodeJS.ProcessEnv = { ...process.env, npm_config_prefer_offline: "true", npm_config_audit: "false", npm_config_fund: "false" };
  // Settings of an npm that started this test (`npm test`) are not the user's: the install is a plain global one.
  for (const key of Object.keys(env)) if (/^npm_config_(global|location|prefix)$/i.test(key) || key === "NODE_TEST_CONTEXT") delete env[key];
  try {
    const installed = await run("npm", ["install", "-g", "--prefix", prefix, "."], { cwd: clone, env, encoding: "utf8", timeout: 240_000 });
    const bin = path.join(prefix, "bin", "alekseylearn");
    assert.ok(fs.existsSync(bin), `${bin} exists after the install:\n${installed.stdout}\n${installed.stderr}`);

    const help = await run(bin, ["--help"], { cwd: os.tmpdir(), env, encoding: "utf8" });
    assert.match(help.stdout, /^Usage: alekseylearn COMMAND \[options\]$/m);
    // Outside every checkout, so nothing but the clone's own node_modules can serve its imports.
    const project = fs.mkdtempSync(path.join(os.tmpdir(), "alekseylearn-iris-"));
    fs.cpSync(path.join(clone, "examples", "iris"), project, { recursive: true });
    const dry = await run(bin, ["fit", "train.py", "--dry-run", "--json"], { cwd: project, env: { ...env, XDG_STATE_HOME: project }, encoding: "utf8" });
    const plan = JSON.parse(dry.stdout) as { backend: string; files: string[] };
    assert.equal(plan.backend, "local");
    assert.deepEqual(plan.files.sort(), ["requirements.txt", "train.py"]);
  } finally {
    fs.rmSync(prefix, { recursive: true, force: true });
    fs.rmSync(clone, { recursive: true, force: true });
  }
});
