/** Every test file sets its own time limit (test/helpers/limit.ts), well under CI's 90 minutes. */
import { fileTimeLimit } from "../helpers/limit.js";
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

fileTimeLimit(1, import.meta.url);

const TESTS = fileURLToPath(new URL("../", import.meta.url));

function testFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    return entry.isDirectory() ? testFiles(full) : entry.name.endsWith(".test.js") ? [full] : [];
  });
}

test("every test file calls fileTimeLimit with a limit of at most 30 minutes", () => {
  const files = testFiles(TESTS);
  assert.ok(files.length > 20, files.join(", "));
  const missing: string[] = [];
  for (const file of files) {
    const match = /fileTimeLimit\((\d+(?:\.\d+)?),\s*import\.meta\.url\)/.exec(fs.readFileSync(file, "utf8"));
    if (!match || Number(match[1]) > 30) missing.push(path.relative(TESTS, file));
  }
  assert.deepEqual(missing, []);
});
