/**
 * Output with bounded memory (issue 20, item 5): a job that prints a 48 MB tqdm-style progress bar (`\r` redraws, no
 * newline) and then one 100 MB line keeps the CLI that follows it under 200 MB of peak RSS. The CLI's own peak is read
 * from `process.resourceUsage().maxRSS` as it exits (a preloaded module writes it), not from the job's processes.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { CLI, cliEnv } from "../helpers/cli.js";
import { fileTimeLimit } from "../helpers/limit.js";
import { writeTree } from "../helpers/tree.js";

fileTimeLimit(3, import.meta.url);

/** A job printing 48 MB of `\r` progress updates, then a 100 MB line with no break at all. */
const NOISY = `import sys
bar = "#" * 90
out = sys.stdout
for i in range(480_000):
    out.write("\\r%3d%% |%s|" % (i % 100, bar[: i % 90]))
out.write("\\n")
chunk = "x" * 1_000_000
for _ in range(100):
    out.write(chunk)
out.write("\\n")
out.flush()
`;

test("a 48 MB \\r progress bar and a 100 MB single line keep the CLI's peak RSS under 200 MB", async () => {
  const dir = writeTree({ "train.py": NOISY, "requirements.txt": "" });
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "alekseylearn-rss-"));
  const preload = path.join(scratch, "rss.cjs");
  const rssFile = path.join(scratch, "rss");
  fs.writeFileSync(preload, `process.on("exit", () => require("fs").writeFileSync(${JSON.stringify(rssFile)}, String(process.resourceUsage().maxRSS)));\n`);
  const { env, stateDir } = cliEnv();
  const code = await new Promise<number | null>((resolve) => {
    // The job's output is not kept by the test (stdout and stderr go nowhere): only the CLI's memory is looked at.
    const child = spawn(process.execPath, ["--require", preload, CLI, "fit", "train.py"], { cwd: dir, env, stdio: ["ignore", "ignore", "ignore"] });
    child.on("close", resolve);
  });
  assert.equal(code, 0);
  const peakMiB = Number(fs.readFileSync(rssFile, "utf8")) / 1024;
  assert.ok(peakMiB > 0 && peakMiB < 200, `the CLI's peak RSS was ${peakMiB.toFixed(0)} MiB`);
  fs.rmSync(scratch, { recursive: true, force: true });
  fs.rmSync(path.dirname(stateDir), { recursive: true, force: true }); // the job's 148 MB log
});
