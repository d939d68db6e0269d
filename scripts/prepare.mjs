// npm's `prepare`: build the package (dist/src; `npm test` and `npm run build` build the tests too) with TypeScript.
// npm runs it after `npm ci` or `npm install` in the clone (the development dependencies are there), and for
// `npm install -g .`, which links the global command to this folder without installing any of its dependencies
// (npm 7 and later). So when TypeScript is missing, the folder's dependencies are installed first, exactly as
// package-lock.json says (`npm ci`, scripts off so this does not run again), as a local install of this folder, never
// a global one.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import console from "node:console";
import process from "node:process";

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const tsc = path.join(root, "node_modules", "typescript", "bin", "tsc");

function run(command, args, env = process.env) {
  const result = spawnSync(command, args, { cwd: root, env, stdio: "inherit" });
  if (result.error) throw result.error;
  if (result.status !== 0) process.exit(result.status ?? 1);
}

if (!fs.existsSync(tsc)) {
  console.error("alekseylearn: installing this folder's dependencies to build it (npm ci)…");
  // A global install's settings would make the inner npm install globally, into the global prefix.
  const env = { ...process.env };
  for (const key of Object.keys(env)) if (/^npm_config_(global|location|prefix)$/i.test(key)) delete env[key];
  run(process.platform === "win32" ? "npm.cmd" : "npm", ["ci", "--include=dev", "--ignore-scripts", "--no-audit", "--no-fund"], env);
}
run(process.execPath, [tsc, "-p", "tsconfig.build.json"]);
fs.chmodSync(path.join(root, "dist", "src", "cli", "main.js"), 0o755);
