/**
 * Multi-host training on the local backend, end to end through the CLI, with
 * real torch.distributed (gloo, CPU) and real bubblewrap: the same two-rank
 * script (test/helpers/distributed.ts) meets its peer as two hosts algo-1 and
 * algo-2, and as torchrun's two workers on one host. The torch environment is
 * built once for the file (the local backend caches it by hash).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import * as tar from "tar";
import { cliEnv, runCli, startCli, waitFor } from "../helpers/cli.js";
import { TWO_RANK_REQUIREMENTS, TWO_RANK_SCRIPT } from "../helpers/distributed.js";
import { fileTimeLimit } from "../helpers/limit.js";
import { writeTree } from "../helpers/tree.js";

fileTimeLimit(12, import.meta.url);

/** Each file of a .tar.gz, by name, as text. */
async function archive(file: string): Promise<Record<string, string>> {
  const to = fs.mkdtempSync(path.join(os.tmpdir(), "archive-"));
  await tar.x({ file, cwd: to });
  const files: Record<string, string> = {};
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else files[path.relative(to, full)] = fs.readFileSync(full, "utf8");
    }
  };
  walk(to);
  return files;
}

test("instance_count=2: two sandboxed hosts meet through torch.distributed; algo-1's model is the job's, algo-2's is in output.tar.gz", async () => {
  const project = writeTree({ "train.py": TWO_RANK_SCRIPT, "requirements.txt": TWO_RANK_REQUIREMENTS });
  const { env } = cliEnv();

  const plan = JSON.parse((await runCli(["fit", "train.py", "--config.instance_count=2", "--dry-run", "--json"], { cwd: project, env })).stdout);
  const request = plan.requests[0].request;
  assert.deepEqual(request.hosts, ["algo-1", "algo-2"], "the dry run shows the hosts");

  const fit = await runCli(["fit", "train.py", "--config.instance_count=2", "--json"], { cwd: project, env });
  assert.equal(fit.code, 0, fit.stderr);
  const job = JSON.parse(fit.stdout);
  assert.equal(job.provider.sandbox, "bwrap");
  // Each host's lines are prefixed with its name, as SageMaker's logs show several instances.
  assert.match(fit.stderr, /^\[algo-1\] rank 0 of 2 on algo-1: sum 3\.0$/m);
  assert.match(fit.stderr, /^\[algo-2\] rank 1 of 2 on algo-2: sum 3\.0$/m);

  const model = await archive(job.model);
  assert.deepEqual(Object.keys(model).sort(), ["model.json", "rank-0.json"], "algo-1's model folder, at the root");
  const saved = JSON.parse(model["model.json"]!);
  assert.equal(saved.sum, 3);
  assert.equal(saved.world, 2);
  assert.equal(saved.env.MASTER_ADDR, "algo-1");
  assert.equal(saved.env.SM_MASTER_ADDR, "algo-1");
  assert.equal(saved.env.SM_HOSTS, '["algo-1","algo-2"]');
  const output = await archive(job.output);
  const other = JSON.parse(output["hosts/algo-2/model/rank-1.json"]!);
  assert.equal(other.hostname, "algo-2", "the sandbox's host name is the host's");
  assert.deepEqual([other.env.SM_CURRENT_HOST, other.env.RANK, other.env.NODE_RANK, other.env.LOCAL_RANK], ["algo-2", "1", "1", "0"]);
  assert.equal(other.env.MASTER_PORT, saved.env.MASTER_PORT);

  const status = await runCli(["status", job.name], { cwd: project, env });
  assert.match(status.stdout, /^Hosts: +2 \(algo-1, algo-2\)$/m);
  const table = await runCli(["jobs"], { cwd: project, env });
  assert.match(table.stdout, new RegExp(`${job.name}\\s+local\\s+completed\\s+2\\s`));
});

test("distribution=torchrun: torchrun's two workers on one host meet, each with its own RANK and LOCAL_RANK", async () => {
  const project = writeTree({ "train.py": TWO_RANK_SCRIPT, "requirements.txt": TWO_RANK_REQUIREMENTS });
  const { env } = cliEnv();
  const fit = await runCli(["fit", "train.py", "--config.distribution=torchrun", "--config.processes_per_host=2", "--json"], { cwd: project, env });
  assert.equal(fit.code, 0, fit.stderr);
  const model = await archive(JSON.parse(fit.stdout).model);
  assert.deepEqual(Object.keys(model).sort(), ["model.json", "rank-0.json", "rank-1.json"]);
  const second = JSON.parse(model["rank-1.json"]!);
  assert.equal(second.sum, 3);
  assert.deepEqual([second.env.RANK, second.env.LOCAL_RANK, second.env.WORLD_SIZE, second.env.NODE_RANK], ["1", "1", "2", "0"]);
});

test("a host that fails fails the job with its reason, and the other host is stopped; Ctrl-C stops every host", async () => {
  const script = `import os, sys, time
host = os.environ["SM_CURRENT_HOST"]
print("up on", host, flush=True)
if host == "algo-2" and "fail" in sys.argv:
    time.sleep(0.5)
    raise RuntimeError("algo-2 ran out of patience")
time.sleep(300)
`;
  const project = writeTree({ "train.py": script, "requirements.txt": "" });
  const { env } = cliEnv();
  const failed = await runCli(["fit", "train.py", "--config.instance_count=2", "--hyperparameter.mode=fail", "--config.stop_timeout=2", "--json"], {
    cwd: project,
    env,
  });
  assert.equal(failed.code, 1, failed.stderr);
  assert.match(failed.stderr, /^\[algo-2\] RuntimeError: algo-2 ran out of patience$/m);
  const job = JSON.parse(failed.stdout);
  assert.equal(job.state, "failed");
  assert.equal(job.reason, "algo-2: RuntimeError: algo-2 ran out of patience");

  // A mark of this run's own in each host's command line (its hyperparameter), to look for its processes afterwards.
  const mark = `stop-${process.pid}-${Date.now()}`;
  const run = startCli(["fit", "train.py", "--config.instance_count=2", "--config.stop_timeout=2", `--hyperparameter.mark=${mark}`], {
    cwd: project,
    env,
  });
  await waitFor(() => run.output().includes("[algo-1] up on algo-1") && run.output().includes("[algo-2] up on algo-2"), "both hosts to start");
  run.child.kill("SIGINT");
  const stopped = await run.done;
  assert.equal(stopped.code, 130, stopped.stderr);
  assert.match(stopped.stderr, /Job train-\S+ was stopped/);
  const ps = execFileSync("ps", ["-eo", "args"], { encoding: "utf8" });
  assert.ok(!ps.split("\n").some((line) => line.includes(mark)), "no host's process is left");
});
