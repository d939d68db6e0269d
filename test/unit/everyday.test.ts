/** The small pure pieces of the everyday experience: reading pip's output. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { fileTimeLimit } from "../helpers/limit.js";
import { readPipLine, unreachableIndexMessage } from "../../src/package/pip-progress.js";

fileTimeLimit(2, import.meta.url);

test("pip's lines become progress: collected, downloaded with its size, built, installed", () => {
  assert.deepEqual(readPipLine("Collecting scikit-learn (from -r requirements.txt (line 1))"), { detail: "collecting scikit-learn" });
  assert.deepEqual(readPipLine("  Downloading numpy-2.3.1-cp311-cp311-manylinux_2_28_x86_64.whl (16.9 MB)"), {
    detail: "downloading numpy-2.3.1-cp311-cp311-manylinux_2_28_x86_64.whl (16.9 MB)",
  });
  assert.deepEqual(readPipLine("Downloading https://files.example/packages/ab/pandas-2.0.tar.gz (5.2MB)"), { detail: "downloading pandas-2.0.tar.gz (5.2MB)" });
  assert.deepEqual(readPipLine("  Building wheel for lightgbm (pyproject.toml): started"), { detail: "building lightgbm" });
  assert.deepEqual(readPipLine("Installing collected packages: a, b, c"), { detail: "installing 3 packages: a, b, c" });
  assert.deepEqual(readPipLine("  Requirement already satisfied: pip in ./lib"), {});
});

test("pip's first retry of an unreachable index is read with its reason, and the message names the fixes and the log", () => {
  const indexes = readPipLine("Looking in indexes: http://127.0.0.1:1/simple, file:///opt/pypi/simple").indexes;
  assert.deepEqual(indexes, ["http://127.0.0.1:1/simple", "file:///opt/pypi/simple"]);
  const retry = readPipLine(
    "WARNING: Retrying (Retry(total=4, connect=None, read=None, redirect=None, status=None)) after connection broken by " +
      "'NewConnectionError('<pip._vendor.urllib3.connection.HTTPConnection object at 0x7f>: Failed to establish a new connection: [Errno 111] Connection refused')': /simple/numpy/",
  );
  assert.equal(retry.retrying, "[Errno 111] Connection refused, asking for /simple/numpy/");
  const message = unreachableIndexMessage(indexes!, retry.retrying!, "/cache/envs/abc.install.log");
  assert.match(message, /http:\/\/127\.0\.0\.1:1\/simple/);
  assert.match(message, /PIP_INDEX_URL=URL/);
  assert.match(message, /pip config set global\.index-url URL/);
  assert.match(message, /\/cache\/envs\/abc\.install\.log/);
});

test("a push's summary: the layers sent of all, their bytes as the registry stores them, the rest already there", async () => {
  const { pushSummary } = await import("../../src/package/registry.js");
  const layers = [
    { diffId: `sha256:${"a".repeat(64)}`, size: 3 * 1024 * 1024 },
    { diffId: `sha256:${"b".repeat(64)}`, size: 2048 },
    { diffId: `sha256:${"c".repeat(64)}`, size: 100 },
  ];
  // docker push names each layer by the first 12 hex digits of its diff ID.
  assert.equal(pushSummary(["bbbbbbbbbbbb", "cccccccccccc"], 1, layers), "2 of 3 layer(s) sent (2.1 KiB of 3.0 MiB), 1 already there");
  assert.equal(pushSummary([], 3, layers), "0 of 3 layer(s) sent (0 bytes of 3.0 MiB), 3 already there");
  assert.equal(pushSummary(["aaaaaaaaaaaa"], 0, []), "1 of 1 layer(s) sent, 0 already there", "no sizes when the registry gave none");
});
