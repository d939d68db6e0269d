/**
 * The library never reads argv, the environment or the console, and the help
 * path stays light (the import layering itself: imports.test.ts).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
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

/** The builtin modules (`NativeModule zlib`, …) a fresh Node has loaded once it has imported `files` (compiled modules under dist/src). */
function builtinsAfterImporting(...files: string[]): string[] {
  const imports = files.map((file) => `await import(${JSON.stringify(path.join(REPO, "dist", "src", file))});`).join("\n");
  const result = spawnSync(process.execPath, ["--input-type=module", "-e", `${imports}\nconsole.log(JSON.stringify(process.moduleLoadList));`], {
    encoding: "utf8",
  });
  assert.equal(result.status, 0, result.stderr);
  return (JSON.parse(result.stdout) as string[]).filter((name) => name.startsWith("NativeModule "));
}

test("a local `fit` loads no packer (zlib, node-tar, the archive code) before its job starts: that waits until the job runs", () => {
  // What `fit` loads before the local backend spawns the job: the command, the lifecycle and the local backend's modules.
  const loaded = builtinsAfterImporting("cli/commands/fit.js", "backends/local/index.js");
  assert.deepEqual(
    loaded.filter((name) => /^NativeModule (zlib|internal\/deps\/)/.test(name)),
    [],
    "zlib is loaded by the packer only, once the job runs",
  );
  assert.ok(builtinsAfterImporting("storage/archive.js").includes("NativeModule zlib"), "the check sees zlib when the archive code is loaded");
});
