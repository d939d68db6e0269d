/**
 * Benchmark of following a job's output (issue 20, item 5), printed as a comparison measured side by side in one run:
 * `alekseylearn fit` of a job printing 48 MB as a tqdm-style progress bar (`\r` redraws, no newline) against the same
 * bytes as ordinary lines (`\n`), and one 100 MB line; for each, the wall time and the CLI's peak RSS (its
 * `process.resourceUsage().maxRSS` as it exits). Targets: the `\r` bar within 1.2 × the lines' time; every peak under 200 MB.
 * Run with `npm run bench`. Nothing here asserts: it measures and prints.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const cli = path.join(repo, "dist", "src", "cli", "main.js");
const runs = Number(process.env.BENCH_RUNS ?? 3);

/** A job printing 480,000 updates of about 100 bytes, each ended by `end`. */
const updates = (end: string): string =>
  `import sys\nbar = "#" * 90\nfor i in range(480_000):\n    sys.stdout.write("%3d%% |%s|${end}" % (i % 100, bar[: i % 90]))\nsys.stdout.write("\\n")\n`;
const jobs: Record<string, string> = {
  "48 MB as a \\r progress bar": updates("\\r"),
  "48 MB as \\n lines": updates("\\n"),
  "one 100 MB line": `import sys\nchunk = "x" * 1_000_000\nfor _ in range(100):\n    sys.stdout.write(chunk)\nsys.stdout.write("\\n")\n`,
};

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "alekseylearn-bench-output-"));
const preload = path.join(scratch, "rss.cjs");
const rssFile = path.join(scratch, "rss");
fs.writeFileSync(preload, `process.on("exit", () => require("fs").writeFileSync(${JSON.stringify(rssFile)}, String(process.resourceUsage().maxRSS)));\n`);
const env = { ...process.env, XDG_CACHE_HOME: process.env.ALEKSEYLEARN_BENCH_CACHE ?? path.join(repo, ".cache", "bench") };

/** One `fit` of `script`: seconds and peak RSS in MiB. */
function fit(script: string): { seconds: number; rss: number } {
  const project = fs.mkdtempSync(path.join(scratch, "project-"));
  fs.writeFileSync(path.join(project, "train.py"), script);
  fs.writeFileSync(path.join(project, "requirements.txt"), "");
  const state = fs.mkdtempSync(path.join(scratch, "state-"));
  const start = process.hrtime.bigint();
  const result = spawnSync(process.execPath, ["--require", preload, cli, "fit", "train.py"], {
    cwd: project,
    env: { ...env, XDG_STATE_HOME: state },
    stdio: ["ignore", "ignore", "ignore"],
  });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (result.status !== 0) throw new Error(`fit failed with ${result.status}`);
  const rss = Number(fs.readFileSync(rssFile, "utf8")) / 1024;
  fs.rmSync(state, { recursive: true, force: true });
  fs.rmSync(project, { recursive: true, force: true });
  return { seconds, rss };
}

fit(jobs["48 MB as \\n lines"]!); // the environment, cached before anything is timed
const results = new Map<string, Array<{ seconds: number; rss: number }>>();
for (let i = 0; i < runs; i++) for (const [what, script] of Object.entries(jobs)) results.set(what, [...(results.get(what) ?? []), fit(script)]);
const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const time = (what: string): number => median(results.get(what)!.map((each) => each.seconds));
const peak = (what: string): number => Math.max(...results.get(what)!.map((each) => each.rss));

console.log(`alekseylearn output benchmarks (median time and highest peak RSS of ${runs} alternating runs, ${os.cpus().length} cores)`);
console.log("");
console.log("what                            time        CLI peak RSS   target");
for (const what of Object.keys(jobs))
  console.log(`${what.padEnd(32)}${`${time(what).toFixed(2)} s`.padEnd(12)}${`${peak(what).toFixed(0)} MiB`.padEnd(15)}< 200 MiB`);
const ratio = time("48 MB as a \\r progress bar") / time("48 MB as \\n lines");
console.log(`\\r bar vs the same bytes in lines   ${ratio.toFixed(2)} ×                      ≤ 1.2 ×`);
fs.rmSync(scratch, { recursive: true, force: true });
