/**
 * Run by hermetic.test.ts inside a private mount namespace whose /opt/ml, /gcs
 * and /kaggle hold canary files (those of /opt/ml named in argv): a local job (bubblewrap) and a Kaggle kernel
 * (the Kaggle API test server) must neither see them nor write beside them.
 * Not a test file itself: it prints "hermetic ok" and exits 0, or fails.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { cliEnv, runCli } from "../helpers/cli.js";
import { listTree, writeTree } from "../helpers/tree.js";
import { startKaggleServer, USER } from "../servers/kaggle-api.js";

const [canary, ...files] = process.argv.slice(2);
assert.ok(
  canary && files.length && files.every((file) => fs.readFileSync(path.join("/opt/ml", file), "utf8").includes(canary)),
  "the namespace's /opt/ml holds the canary files",
);

/** A job that fails unless its /opt/ml, /gcs and /kaggle are its own, then leaves a model (through /gcs where it is the job's). */
const SCRIPT = `import json, os, sys
seen = sorted(os.path.join(d, f) for root in ("/opt/ml", "/gcs", "/kaggle") for d, _, fs in os.walk(root, followlinks=True) for f in fs)
leaked = [f for f in seen if ${JSON.stringify(canary)} in open(f, errors="replace").read()]
assert not leaked, "the host's /opt/ml, /gcs or /kaggle is visible: %s" % leaked
os.makedirs("/opt/ml/model", exist_ok=True)
open("/opt/ml/model/model.txt", "w").write("mine")
aip = os.environ["AIP_MODEL_DIR"]
open(os.path.join(aip.replace("gs://", "/gcs/"), "aip.txt"), "w").write("through " + aip)
print("own /opt/ml, /gcs, /kaggle:", seen, flush=True)
`;

const project = path.join(writeTree({ "hermetic/train.py": SCRIPT }), "hermetic");
const home = fs.mkdtempSync(path.join(os.tmpdir(), "hermetic-home-"));

const local = await runCli(["fit", "train.py", "--config.sandbox=bwrap", "--json"], { cwd: project, env: cliEnv().env });
assert.equal(local.code, 0, local.stderr);
const to = fs.mkdtempSync(path.join(os.tmpdir(), "hermetic-local-"));
const fetched = await runCli(["fetch", JSON.parse(local.stdout).name, "--to", to], { cwd: project, env: cliEnv().env });
assert.deepEqual(listTree(to), [], "a fetch in another state folder knows no such job");
assert.notEqual(fetched.code, 0);
const model = fs.mkdtempSync(path.join(os.tmpdir(), "hermetic-local-model-"));
execFileSync("tar", ["-xzf", JSON.parse(local.stdout).model, "-C", model]);
assert.deepEqual(listTree(model), ["aip.txt", "model.txt"], "what the job wrote through its own /gcs is its model");

const server = await startKaggleServer(execFileSync("python3", ["-c", "import sys; print(sys.executable)"], { encoding: "utf8" }).trim());
try {
  const { env } = cliEnv({ KAGGLE_API_ENDPOINT: server.url, KAGGLE_API_TOKEN: USER.token, HOME: home });
  const kaggle = await runCli(["fit", "train.py", "--backend", "kaggle", "--config.poll_interval=0.1"], { cwd: project, env });
  assert.equal(kaggle.code, 0, kaggle.stderr);
  const model = fs.mkdtempSync(path.join(os.tmpdir(), "hermetic-kaggle-"));
  const got = await runCli(["fetch", "kaggle://tester/hermetic-train", "--to", model], { cwd: project, env });
  assert.equal(got.code, 0, got.stderr);
  assert.equal(fs.readFileSync(path.join(model, "model.txt"), "utf8"), "mine", "the kernel wrote its model where Kaggle keeps it, not into the host's /opt/ml");
} finally {
  await server.close();
}
console.log("hermetic ok");
