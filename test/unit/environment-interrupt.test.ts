/**
 * Ctrl-C at any moment of creating an environment (issue 20, item 2) leaves the whole environment or none, and the
 * message says what was kept. A stand-in interpreter (a shell script) plays `python -m venv` and pip: each writes files
 * for a while, and pip leaves a subprocess that goes on writing after pip itself is stopped, as pip's build
 * subprocesses do while they die (what made the cleanup fail with ENOTEMPTY).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { silentReporter, type Context } from "../../src/context.js";
import { UserError } from "../../src/errors.js";
import { ensureEnvironment } from "../../src/package/environment.js";
import { fileTimeLimit } from "../helpers/limit.js";

fileTimeLimit(2, import.meta.url);

const FAKE_PYTHON = `#!/bin/sh
if [ "$1" = "-I" ]; then echo "$0"; exit 0; fi
if [ "$2" = "venv" ]; then
  mkdir -p "$3/bin" "$3/lib"; ln -s "$0" "$3/bin/python"
  for i in 1 2 3 4 5 6; do echo x > "$3/lib/venv$i"; sleep 0.02; done; exit 0
fi
lib="$(dirname "$0")/../lib"
( i=0; while [ $i -lt 1000 ]; do echo y > "$lib/late$i" 2>/dev/null; i=$((i+1)); done ) >/dev/null 2>&1 &
for i in 1 2 3 4 5 6; do echo z > "$lib/pip$i"; sleep 0.02; done
wait
`;

test("Ctrl-C at any moment of environment creation leaves the whole environment or none, and says which", async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "alekseylearn-env-interrupt-"));
  const bin = path.join(root, "bin");
  fs.mkdirSync(bin);
  fs.writeFileSync(path.join(bin, "fakepython"), FAKE_PYTHON, { mode: 0o755 });
  const requirements = path.join(root, "requirements.txt");
  fs.writeFileSync(requirements, "something\n");
  const outcomes = new Set<string>();
  for (const delay of [0, 60, 150, 220, 5000]) {
    const cache = path.join(root, `cache-${delay}`);
    const controller = new AbortController();
    const ctx: Context = {
      cwd: root,
      env: { PATH: `${bin}:${process.env.PATH}` },
      stateDir: root,
      cacheDir: cache,
      reporter: silentReporter,
      signal: controller.signal,
    };
    const request = { file: { kind: "requirements" as const, path: requirements, content: "something\n" }, python: "fakepython", extras: [] };
    const timer = setTimeout(() => controller.abort(), delay);
    let said: string | undefined;
    try {
      await ensureEnvironment(request, ctx);
    } catch (err) {
      assert.ok(err instanceof UserError && err.exitCode === 130, String(err));
      said = err.message;
    }
    clearTimeout(timer);
    await sleep(200); // the late writer has finished by now
    const envs = path.join(cache, "envs");
    const left = fs.readdirSync(envs).filter((name) => !name.endsWith(".install.log"));
    const published = left.filter((name) => !name.includes("."));
    if (said === undefined) {
      outcomes.add("complete");
      assert.equal(published.length, 1);
      assert.ok(fs.existsSync(path.join(envs, published[0]!, ".alekseylearn-ready")), "the environment is whole");
    } else if (/nothing was kept/.test(said)) {
      outcomes.add("none");
      assert.deepEqual(left, [], `delay ${delay}: ${said}`);
    } else {
      outcomes.add("left");
      assert.match(said, /is still being written to and was left \(it is never used/);
      assert.deepEqual(published, [], "nothing that looks like an environment");
    }
  }
  assert.ok(outcomes.has("none") && outcomes.has("complete"), [...outcomes].join());
});
