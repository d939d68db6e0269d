/**
 * The library never reads argv, the environment or the console, and the help
 * path stays light (the import layering itself: imports.test.ts).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { REPO } from "../helpers/cli.js";
import { fileTimeLimit } from "../helpers/limit.js";

fileTimeLimit(3, import.meta.url);

const SRC = path.join(REPO, "src");
/** Process entry points: the only places that may read the process. */
const ENTRY_POINTS = new Set(["cli/main.ts", "jobs/supervisor.ts"]);

function sources(): Array<[string, string]> {
  return (fs.readdirSync(SRC, { recursive: true }) as string[])
    .filter((file) => file.endsWith(".ts"))
    .map((file) => [file.split(path.sep).join("/"), fs.readFileSync(path.join(SRC, file), "utf8")]);
}

test("the library reads no argv, environment or console; only entry points do", () => {
  const offenders = sources()
    .filter(([file]) => !ENTRY_POINTS.has(file) && !file.startsWith("cli/"))
    .filter(([, text]) => /process\.(env|argv|stdout|stderr|stdin)\b|console\.\w+\(/.test(text))
    .map(([file]) => file);
  assert.deepEqual(offenders, []);
});

test("the --help path loads no heavy modules (archives, YAML, TOML) before a command runs", () => {
  const main = fs.readFileSync(path.join(SRC, "cli", "main.ts"), "utf8") + fs.readFileSync(path.join(SRC, "cli", "commands.ts"), "utf8");
  const staticImports = [...main.matchAll(/^import .* from "([^"]+)";$/gm)].map((match) => match[1]);
  assert.deepEqual(
    staticImports.filter((spec) => /tar|yaml|toml|backends|jobs|storage|package/.test(spec!)),
    [],
  );
});
