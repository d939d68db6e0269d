/**
 * Benchmarks of the local backend, printed as comparisons measured side by side in one run:
 *   - `alekseylearn --help` start-up against a bare `node -e 0` (target ≤ 1.5 ×);
 *   - `alekseylearn fit examples/iris/train.py` with its environment cached, against the same
 *     script run directly by that environment's Python (target: ≤ +150 ms over, median of alternating runs); the
 *     overhead is the median of each round's own difference (fit minus direct Python, run back to back), which this
 *     machine's drift from one round to the next moves far less than a difference of the two medians.
 * Run with `npm run bench`. Nothing here asserts: it measures and prints.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const cli = path.join(repo, "dist", "src", "cli", "main.js");
const runs = Number(process.env.BENCH_RUNS ?? 7);

function time(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): number {
  const start = process.hrtime.bigint();
  const result = spawnSync(command, args, { ...options, stdio: ["ignore", "ignore", "pipe"], encoding: "utf8" });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (result.status !== 0) throw new Error(`${command} ${args.join(" ")} failed: ${result.stderr}`);
  return seconds;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Run `a` and `b` alternately `runs` times (so drift hits both alike); their medians, and the median of each round's `a` − `b`. */
function compare(a: () => number, b: () => number): [number, number, number] {
  const as: number[] = [];
  const bs: number[] = [];
  for (let i = 0; i < runs; i++) {
    as.push(a());
    bs.push(b());
  }
  return [median(as), median(bs), median(as.map((value, i) => value - bs[i]!))];
}

const ms = (seconds: number): string => `${(seconds * 1000).toFixed(0)} ms`;

// Start-up.
const [help, bare] = compare(
  () => time(process.execPath, [cli, "--help"]),
  () => time(process.execPath, ["-e", "0"]),
);

// Local backend overhead, environment cached.
const project = fs.mkdtempSync(path.join(os.tmpdir(), "alekseylearn-bench-"));
fs.cpSync(path.join(repo, "examples", "iris"), project, { recursive: true });
const state = fs.mkdtempSync(path.join(os.tmpdir(), "alekseylearn-bench-state-"));
const env = { ...process.env, XDG_STATE_HOME: state, XDG_CACHE_HOME: process.env.ALEKSEYLEARN_BENCH_CACHE ?? path.join(repo, ".cache", "bench") };
const warm = spawnSync(process.execPath, [cli, "fit", "train.py", "--json"], { cwd: project, env, encoding: "utf8" });
if (warm.status !== 0) throw new Error(`warm-up run failed: ${warm.stderr}`);
const python = path.join(JSON.parse(warm.stdout).provider.environment, "bin", "python");
const modelDir = fs.mkdtempSync(path.join(os.tmpdir(), "alekseylearn-bench-model-"));
/** The baseline of every local comparison: the script run directly by its environment's Python. */
const directPython = (): number => time(python, ["train.py"], { cwd: project, env: { ...process.env, SM_MODEL_DIR: modelDir } });
// Node 20 parses NODE_EXTRA_CA_CERTS at every start-up, before any of alekseylearn's code (this machine sets it, to the
// whole system bundle, for every process): each comparison is run again without it, as on a machine that does not set it.
const withoutCa: NodeJS.ProcessEnv | undefined = process.env.NODE_EXTRA_CA_CERTS
  ? Object.fromEntries(Object.entries(env).filter(([name]) => name !== "NODE_EXTRA_CA_CERTS"))
  : undefined;
const [fit, direct, over] = compare(() => time(process.execPath, [cli, "fit", "train.py"], { cwd: project, env }), directPython);

console.log(`alekseylearn local benchmarks (median of ${runs} alternating runs, ${os.cpus().length} cores)`);
console.log("");
console.log("what                                   alekseylearn   baseline       result      target");
console.log(`--help start-up vs node -e 0           ${ms(help).padEnd(15)}${ms(bare).padEnd(15)}${(help / bare).toFixed(2)} ×      ≤ 1.5 ×`);
console.log(
  `fit iris (env cached) vs direct python ${ms(fit).padEnd(15)}${ms(direct).padEnd(15)}+${ms(over).padEnd(10)} ≤ +150 ms  ${over <= 0.15 ? "met" : "NOT met"}`,
);
if (withoutCa) {
  const [fitWithout, directWithout, overWithout] = compare(
    () => time(process.execPath, [cli, "fit", "train.py"], { cwd: project, env: withoutCa }),
    directPython,
  );
  const [bareWith, bareWithout] = compare(
    () => time(process.execPath, ["-e", "0"]),
    () => time(process.execPath, ["-e", "0"], { env: withoutCa }),
  );
  console.log(
    `  the same without NODE_EXTRA_CA_CERTS  ${ms(fitWithout).padEnd(15)}${ms(directWithout).padEnd(15)}+${ms(overWithout).padEnd(10)} ≤ +150 ms  ${overWithout <= 0.15 ? "met" : "NOT met"}`,
  );
  console.log(`  (node -e 0: ${ms(bareWith)} with this machine's NODE_EXTRA_CA_CERTS, ${ms(bareWithout)} without)`);
}
// The floor under any design that starts Node for each run and keeps the job's init (the runtime that gives the script
// every platform's contract) in its own sandboxed interpreter: a Node process that does nothing but start bubblewrap
// running an interpreter that does nothing (`python -S -c pass`, the init's bare start-up, with fewer bwrap options
// than a job's), then the script. What `fit` takes over this is alekseylearn's own work.
const bwrap = spawnSync("bwrap", ["--version"]).status === 0;
if (bwrap) {
  const floorProgram = [
    'const { spawnSync } = require("node:child_process");',
    "const [python, modelDir] = process.argv.slice(1);",
    'spawnSync("bwrap", ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-pid", "--as-pid-1", "--die-with-parent", python, "-S", "-c", "pass"], { stdio: "inherit" });',
    'process.exitCode = spawnSync(python, ["train.py"], { stdio: "inherit", env: { ...process.env, SM_MODEL_DIR: modelDir } }).status;',
  ].join("\n");
  const floor = (floorEnv: NodeJS.ProcessEnv): number =>
    compare(() => time(process.execPath, ["-e", floorProgram, python, modelDir], { cwd: project, env: floorEnv }), directPython)[2];
  const line = `the floor (Node, then bwrap with python -S -c pass, then the script) over direct python: +${ms(floor(env))}`;
  console.log(withoutCa ? `  ${line} (+${ms(floor(withoutCa))} without NODE_EXTRA_CA_CERTS)` : `  ${line}`);
}
fs.rmSync(project, { recursive: true, force: true });
fs.rmSync(state, { recursive: true, force: true });
fs.rmSync(modelDir, { recursive: true, force: true });
