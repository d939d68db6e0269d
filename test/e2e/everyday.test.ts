/**
 * End to end through the CLI: the everyday experience. Long steps say what
 * they do (an unreachable pip index is named with its fix before pip gives up),
 * every command's --json parses, hints are spelled as the user started the command.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { cliEnv, runCli } from "../helpers/cli.js";
import { fileTimeLimit } from "../helpers/limit.js";
import { writeTree } from "../helpers/tree.js";

fileTimeLimit(5, import.meta.url);

test("fit with a pip index that refuses connections says so, with PIP_INDEX_URL and pip config, before pip gives up", async () => {
  // A requirement no index has, so pip asks the refusing index (and retries) before it fails.
  const dir = writeTree({ "train.py": "print('never runs')\n", "requirements.txt": "alekseylearn-no-such-package-23\n" });
  // A cache of its own: the failed environment must not touch the shared one.
  const { env } = cliEnv({ PIP_INDEX_URL: "http://127.0.0.1:1/simple", XDG_CACHE_HOME: fs.mkdtempSync(path.join(os.tmpdir(), "cache-")) });
  const result = await runCli(["fit", "train.py"], { cwd: dir, env });
  assert.equal(result.code, 1, result.stderr);
  const said = result.stderr.indexOf("pip cannot reach its package index (http://127.0.0.1:1/simple)");
  assert.ok(said >= 0, result.stderr);
  // Said while pip still ran: the warning comes before the failure that ends the step (printed when pip gave up).
  assert.ok(said < result.stderr.indexOf("error: Creating the environment failed"), result.stderr);
  const message = result.stderr.slice(said).split("\n")[0]!;
  assert.match(message, /PIP_INDEX_URL=URL/);
  assert.match(message, /pip config set global\.index-url URL/);
  assert.match(result.stderr, /hint: pip could not reach its package index.*The full output is in \S+\.install\.log/);
});
