/**
 * The Slurm backend end to end through the CLI, on a real two-node Slurm cluster (Debian's slurmctld, slurmd and munge
 * on loopback) reached through a real sshd as its login node (test/servers/slurm-cluster.ts). The cluster's "shared
 * filesystem" is this machine's: the work folder's cached environments persist across runs under the test cache.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { cliEnv, copyExample, runCli, startCli, TEST_CACHE, waitFor } from "../helpers/cli.js";
import { TWO_RANK_REQUIREMENTS, TWO_RANK_SCRIPT, TWO_RANK_SUM } from "../helpers/distributed.js";
import { writeTree } from "../helpers/tree.js";
import { fileTimeLimit } from "../helpers/limit.js";
import { startSlurmCluster, type SlurmCluster } from "../servers/slurm-cluster.js";
import { startMoto, type Moto } from "../helpers/servers.js";
import { awsCli, testAwsKeys } from "../helpers/aws.js";

fileTimeLimit(10, import.meta.url);

let cluster: SlurmCluster;
let moto: Moto;
let output: string;
let env: NodeJS.ProcessEnv;
const workDir = path.join(TEST_CACHE, "slurm-work");

before(async () => {
  [cluster, moto] = await Promise.all([startSlurmCluster(), startMoto()]);
  awsCli(moto.url, ["s3", "mb", "s3://slurm-doctor"], testAwsKeys());
  output = fs.mkdtempSync(path.join(os.tmpdir(), "alekseylearn-slurm-out-"));
  env = cliEnv().env;
});

after(async () => {
  cluster?.stop();
  await moto?.stop();
  if (output) fs.rmSync(output, { recursive: true, force: true });
  // The environments stay cached for the next run; this run's code and job folders go.
  for (const folder of ["blobs", "jobs"]) fs.rmSync(path.join(workDir, folder), { recursive: true, force: true });
});

/** A job name of its own for this run: the work folder (and its jobs/NAME folders) outlives each run. */
function unique(name: string): string {
  return `${name}-${randomBytes(3).toString("hex")}`;
}

function flags(...more: string[]): string[] {
  const given = more.find((flag) => flag.startsWith("--config.output_path="));
  return [
    "--backend",
    "slurm",
    `--config.host=${cluster.host}`,
    `--config.ssh_config=${cluster.sshConfig}`,
    `--config.work_dir=${workDir}`,
    given ?? `--config.output_path=${output}`,
    "--config.poll_interval=0.2",
    ...more.filter((flag) => flag !== given),
  ];
}

interface JobJson {
  name: string;
  state: string;
  reason?: string;
  model?: string;
  provider?: { jobId?: string; copied?: string; nodes?: string; secondary?: string; message?: string };
}

async function status(name: string, cwd: string): Promise<JobJson> {
  const result = await runCli(["status", name, "--json"], { cwd, env });
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout) as JobJson;
}

test("a one-node job (examples/iris) trains on the test cluster through ssh and fetch JOB returns its model; an unchanged resubmission (on two nodes) copies 0 bytes, waits in the queue with its reason and hosts shown by status and jobs, and stop takes it out", async () => {
  const dir = copyExample("iris");
  // A line of its own, so that the first submission of this run copies its files whatever earlier runs left in the cache.
  fs.appendFileSync(path.join(dir, "train.py"), `# ${randomBytes(8).toString("hex")}\n`);
  const first = await runCli(["fit", "train.py", ...flags(), "--json"], { cwd: dir, env });
  assert.equal(first.code, 0, first.stderr);
  const job = JSON.parse(first.stdout) as JobJson;
  assert.equal(job.state, "completed");
  assert.match(first.stderr, /test accuracy: /, "the job's log is followed");
  assert.ok(Number(job.provider?.copied) > 0, "the first submission copies the shipped files");
  assert.match(job.model ?? "", new RegExp(`^slurm://${cluster.host}${output}/${job.name}/output/model\\.tar\\.gz\\?ssh_config=`));

  // Fetched outside the artifact's folder, which is shipped again below unchanged.
  const to = fs.mkdtempSync(path.join(os.tmpdir(), "alekseylearn-slurm-fetched-"));
  const fetched = await runCli(["fetch", job.name, "--to", to], { cwd: dir, env });
  assert.equal(fetched.code, 0, fetched.stderr);
  assert.ok(fs.existsSync(path.join(to, "model.joblib")));
  assert.ok(JSON.parse(fs.readFileSync(path.join(to, "metrics.json"), "utf8")).accuracy > 0.8);

  // The same code, runtime and environment: the digest is on the cluster already. `copied` is the bytes streamed to the
  // login node for this submission (the blob's tar), recorded by the backend; the message says so too. Submitted held
  // (--hold: Slurm keeps it pending with the reason JobHeldUser until released, sbatch.html#OPT_hold), so it also shows
  // the queue reason in status, and stop takes a job out of the queue (a pending job takes no signal).
  const heldName = unique("slurm-held");
  const second = await runCli(
    ["fit", "train.py", ...flags("--config.extra_sbatch=--hold", "--config.instance_count=2"), "--name", heldName, "--json", "--detach"],
    {
      cwd: dir,
      env,
    },
  );
  assert.equal(second.code, 0, second.stderr);
  assert.equal((JSON.parse(second.stdout) as JobJson).provider?.copied, "0");
  assert.match(second.stderr, /Nothing to copy/);
  const shown = await runCli(["status", heldName], { cwd: dir, env });
  assert.match(shown.stdout, /State: +queued/);
  assert.match(shown.stdout, /Status: +PENDING \(JobHeldUser\)/);
  assert.match(shown.stdout, /Hosts: +2 \(nodes not given yet\)/);
  const listed = await runCli(["jobs"], { cwd: dir, env });
  assert.match(
    listed.stdout,
    new RegExp(`${heldName}\\s+slurm\\s+queued \\(JobHeldUser\\)\\s+2 \\(nodes not given yet\\)\\s`),
    "jobs shows why it waits, and its hosts",
  );
  assert.equal((await runCli(["stop", heldName], { cwd: dir, env })).code, 0);
  assert.equal((await status(heldName, dir)).state, "stopped");
});

/** Every file under `dir` whose bytes hold `text`, relative. */
function filesHolding(dir: string, text: string): string[] {
  const found: string[] = [];
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const file = path.join(entry.parentPath ?? (entry as unknown as { path: string }).path, entry.name);
    if (entry.isFile() && fs.readFileSync(file).includes(text)) found.push(path.relative(dir, file));
  }
  return found;
}

test("an s3:// output path (moto): the job left to run packs on the cluster, fetch JOB sees it ended, copies its model to the bucket with this machine's credentials and returns it; no credential reaches the cluster, and a bucket this machine cannot reach is refused before submission", async () => {
  const secret = `slurm-secret-${randomBytes(6).toString("hex")}`;
  const keys = testAwsKeys(secret);
  awsCli(moto.url, ["s3", "mb", "s3://slurm-bucket"], keys);
  const s3env = { ...env, ...keys, AWS_ENDPOINT_URL: moto.url };
  const dir = writeTree({ "train.py": 'import os\nopen(os.path.join(os.environ["SM_MODEL_DIR"], "weights.txt"), "w").write("trained")\nprint("saved")\n' });

  const missing = await runCli(["fit", "train.py", ...flags("--config.output_path=s3://no-such-bucket/runs"), "--name", unique("slurm-nobucket")], {
    cwd: dir,
    env: s3env,
  });
  assert.equal(missing.code, 1, missing.stderr);
  assert.match(missing.stderr, /The output path s3:\/\/no-such-bucket\/runs\/slurm-nobucket-\w+\/output cannot be reached from this machine: No such bucket/);
  assert.doesNotMatch(missing.stderr, /Submitted Slurm job/);

  const name = unique("slurm-s3");
  const fit = await runCli(["fit", "train.py", ...flags("--config.output_path=s3://slurm-bucket/runs"), "--name", name, "--detach"], { cwd: dir, env: s3env });
  assert.equal(fit.code, 0, fit.stderr);
  const jobDir = path.join(workDir, "jobs", name);
  await waitFor(() => fs.existsSync(path.join(jobDir, "exit-code")), "the job to end on the cluster", 60_000);
  assert.ok(fs.existsSync(path.join(jobDir, "output", "model.tar.gz")), "the job packs its model in its own folder on the cluster");

  const to = path.join(dir, "fetched");
  const fetched = await runCli(["fetch", name, "--to", to], { cwd: dir, env: s3env });
  assert.equal(fetched.code, 0, fetched.stderr);
  assert.match(fetched.stderr, new RegExp(`Copying model\\.tar\\.gz from ${cluster.host}:\\S+ to s3://slurm-bucket/runs/${name}/output/model\\.tar\\.gz`));
  assert.equal(fs.readFileSync(path.join(to, "weights.txt"), "utf8"), "trained");
  const record = await runCli(["status", name, "--json"], { cwd: dir, env: s3env });
  const job = JSON.parse(record.stdout) as JobJson;
  assert.equal(job.state, "completed");
  assert.equal(job.model, `s3://slurm-bucket/runs/${name}/output/model.tar.gz`);
  assert.ok(
    JSON.parse(awsCli(moto.url, ["s3api", "head-object", "--bucket", "slurm-bucket", "--key", `runs/${name}/output/model.tar.gz`], keys)).ContentLength > 0,
  );
  // Neither the job's folder (its script's log, its /opt/ml) nor Slurm's own state (where slurmctld keeps the script) holds the key.
  assert.deepEqual(filesHolding(jobDir, secret), []);
  assert.deepEqual(filesHolding(path.join(cluster.dir, "state"), secret), []);
  assert.deepEqual(
    filesHolding(path.join(cluster.dir, "state"), name).length > 0,
    true,
    "slurmctld's state holds this job (the search looks in the right place)",
  );
});

test("a two-node job: both ranks meet through torch.distributed (gloo) at the first node's address, rank 0's model comes back, and the other node's is kept under output.tar.gz's hosts/node2/", async () => {
  const dir = writeTree({ "train.py": TWO_RANK_SCRIPT, "requirements.txt": TWO_RANK_REQUIREMENTS });
  const fit = await runCli(["fit", "train.py", ...flags("--config.instance_count=2"), "--json"], { cwd: dir, env });
  assert.equal(fit.code, 0, fit.stderr);
  const job = JSON.parse(fit.stdout) as JobJson;
  assert.match(fit.stderr, new RegExp(`rank 0 of 2 on node1: sum ${TWO_RANK_SUM}`));
  assert.match(fit.stderr, new RegExp(`rank 1 of 2 on node2: sum ${TWO_RANK_SUM}`));
  assert.equal(job.provider?.nodes, "node[1-2]");
  assert.match((await runCli(["status", job.name], { cwd: dir, env })).stdout, /Hosts: +2 \(node\[1-2\]\)/, "status names Slurm's nodes");
  const to = path.join(dir, "fetched");
  assert.equal((await runCli(["fetch", job.name, "--to", to], { cwd: dir, env })).code, 0);
  const model = JSON.parse(fs.readFileSync(path.join(to, "model.json"), "utf8")) as { sum: number; world: number; env: Record<string, string> };
  assert.equal(model.sum, TWO_RANK_SUM);
  assert.equal(model.world, 2);
  assert.equal(model.env.MASTER_ADDR, "127.0.0.1", "the first node's NodeAddr, from scontrol show node");
  assert.equal(model.env.SM_MASTER_ADDR, "node1");
  // The first node's model is the job's; the second node's is kept in output.tar.gz under hosts/node2/.
  assert.ok(fs.existsSync(path.join(to, "rank-0.json")));
  assert.ok(!fs.existsSync(path.join(to, "rank-1.json")));
  assert.equal(JSON.parse(fs.readFileSync(path.join(to, "output", "hosts", "node2", "model", "rank-1.json"), "utf8")).rank, 1);
});

test("config.distribution=torchrun launches the two-rank script through torchrun on both nodes", async () => {
  const dir = writeTree({ "train.py": TWO_RANK_SCRIPT, "requirements.txt": TWO_RANK_REQUIREMENTS });
  const fit = await runCli(["fit", "train.py", ...flags("--config.instance_count=2", "--config.distribution=torchrun"), "--json"], { cwd: dir, env });
  assert.equal(fit.code, 0, fit.stderr);
  assert.match(fit.stderr, new RegExp(`rank 0 of 2 on node1: sum ${TWO_RANK_SUM}`));
  assert.match(fit.stderr, new RegExp(`rank 1 of 2 on node2: sum ${TWO_RANK_SUM}`));
});

test("a failing job fails fit with the script's own reason", async () => {
  const dir = writeTree({ "train.py": 'print("loading")\nraise SystemExit("the data folder is empty")\n' });
  const fit = await runCli(["fit", "train.py", ...flags(), "--json"], { cwd: dir, env });
  assert.equal(fit.code, 1, fit.stderr);
  const job = JSON.parse(fit.stdout) as JobJson;
  assert.equal(job.state, "failed");
  assert.match(job.reason ?? "", /the data folder is empty/);
  assert.match(fit.stderr, /the data folder is empty/);
});

/** A script that says it started, then waits for `marker` to exist (saving a model when it gets SIGTERM first). */
function waitingScript(marker: string): string {
  return `import os, signal, sys, time
model = os.environ["SM_MODEL_DIR"]
def stopped(signum, frame):
    open(os.path.join(model, "saved-on-stop.txt"), "w").write("saved")
    print("got SIGTERM, saved", flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, stopped)
print("started", flush=True)
while not os.path.exists(${JSON.stringify(marker)}):
    time.sleep(0.1)
open(os.path.join(model, "done.txt"), "w").write("done")
print("finished", flush=True)
`;
}

test("Ctrl-C leaves the job running on the cluster; logs --follow then follows it to its end", async () => {
  const marker = path.join(output, `marker-${randomBytes(4).toString("hex")}`);
  const dir = writeTree({ "train.py": waitingScript(marker) });
  const ctrlcName = unique("slurm-ctrl-c");
  const fit = startCli(["fit", "train.py", ...flags(), "--name", ctrlcName], { cwd: dir, env });
  await waitFor(() => fit.output().includes("started"), "the job to start", 60_000);
  fit.child.kill("SIGINT");
  const ended = await fit.done;
  assert.equal(ended.code, 0, ended.stderr);
  assert.match(ended.stdout, new RegExp(`alekseylearn logs ${ctrlcName} --follow`), "it says how to follow the job again");
  const shown = await runCli(["status", ctrlcName], { cwd: dir, env });
  assert.match(shown.stdout, /State: +running/);
  assert.match(shown.stdout, /Status: +RUNNING \(on node1\)/, "status shows Slurm's state and the job's node");
  fs.writeFileSync(marker, "");
  const logs = await runCli(["logs", ctrlcName, "--follow"], { cwd: dir, env });
  assert.equal(logs.code, 0, logs.stderr);
  assert.match(logs.stdout, /finished/);
  assert.equal((await status(ctrlcName, dir)).state, "completed");
});

test("stop sends SIGTERM (the job saves its model), the job ends stopped, and fetch JOB returns what it saved", async () => {
  const dir = writeTree({ "train.py": waitingScript(path.join(output, "never")) });
  const stopName = unique("slurm-stop");
  const fit = await runCli(["fit", "train.py", ...flags(), "--name", stopName, "--detach"], { cwd: dir, env });
  assert.equal(fit.code, 0, fit.stderr);
  await waitFor(
    () =>
      fs.existsSync(path.join(workDir, "jobs", stopName, "slurm.out")) &&
      fs.readFileSync(path.join(workDir, "jobs", stopName, "slurm.out"), "utf8").includes("started"),
    "the job to start",
    60_000,
  );
  const stop = await runCli(["stop", stopName], { cwd: dir, env });
  assert.equal(stop.code, 0, stop.stderr);
  const logs = await runCli(["logs", stopName, "--follow"], { cwd: dir, env });
  assert.match(logs.stdout, /got SIGTERM, saved/);
  const record = await status(stopName, dir);
  assert.equal(record.state, "stopped");
  const to = path.join(dir, "fetched");
  const fetched = await runCli(["fetch", stopName, "--to", to], { cwd: dir, env });
  assert.equal(fetched.code, 0, fetched.stderr);
  assert.equal(fs.readFileSync(path.join(to, "saved-on-stop.txt"), "utf8"), "saved");
});

test("fit --dry-run prints the sbatch request (script and options) without asking the cluster, with no credential in it", async () => {
  const dir = writeTree({ "train.py": "print(1)\n", "requirements.txt": "scikit-learn\n" });
  const result = await runCli(
    [
      "fit",
      "train.py",
      "--backend",
      "slurm",
      "--config.host=nowhere.invalid",
      "--config.output_path=/shared/runs",
      "--config.partition=gpu",
      "--config.instance_count=2",
      "--dry-run",
      "--json",
    ],
    { cwd: dir, env: { ...env, PIP_EXTRA_INDEX_URL: "https://user:s3cret@pypi.example.com/simple" } },
  );
  assert.equal(result.code, 0, result.stderr);
  const plan = JSON.parse(result.stdout) as {
    requests: Array<{ api: string; operation: string; request: { script: string; options: string[] } }>;
    placeholders: string[];
  };
  assert.ok(
    plan.placeholders.some((line) => /^the job's 2 hosts: the nodes Slurm gives it when it starts/.test(line)),
    "the dry run says what the hosts will be",
  );
  assert.equal(plan.requests.length, 1);
  const [sbatch] = plan.requests;
  assert.equal(sbatch!.api, "slurm");
  assert.equal(sbatch!.operation, "sbatch");
  assert.ok(sbatch!.request.options.includes("--partition=gpu"));
  assert.ok(sbatch!.request.options.includes("--nodes=2"));
  assert.match(sbatch!.request.script, /^#!\/bin\/bash/);
  assert.match(sbatch!.request.script, /export PIP_EXTRA_INDEX_URL=https:\/\/pypi\.example\.com\/simple/);
  assert.doesNotMatch(result.stdout, /s3cret/);
});

interface DoctorReport {
  failed: boolean;
  checks: Array<{ backend: string; check: string; status: string; detail: string; fix?: string }>;
}

test("doctor --backend slurm on the test cluster: ssh, Slurm's commands, accounting, the work folder (a file made and removed), Python, bubblewrap and the s3:// bucket; a failing check exits 1 naming its fix", async () => {
  const cwd = writeTree({});
  const s3env = { ...env, ...testAwsKeys(), AWS_ENDPOINT_URL: moto.url };
  const good = await runCli(["doctor", ...flags("--config.output_path=s3://slurm-doctor/runs"), "--json"], { cwd, env: s3env });
  assert.equal(good.code, 0, good.stdout + good.stderr);
  const report = JSON.parse(good.stdout) as DoctorReport;
  const detail = (check: string): string => report.checks.find((each) => each.check === check)!.detail;
  assert.deepEqual(
    report.checks.map((each) => [each.backend, each.check, each.status]),
    [
      ["slurm", "login node", "ok"],
      ["slurm", "Slurm commands", "ok"],
      ["slurm", "accounting", "ok"],
      ["slurm", "work folder", "ok"],
      ["slurm", "Python", "ok"],
      ["slurm", "bubblewrap", "ok"],
      ["slurm", "output bucket", "ok"],
    ],
  );
  assert.match(detail("accounting"), /Slurm accounting storage is disabled/, "the test cluster keeps no accounting");
  assert.match(detail("work folder"), /writable, a file made and removed there/);
  assert.deepEqual(
    fs.readdirSync(workDir).filter((file) => file.startsWith(".doctor")),
    [],
    "the file is removed",
  );
  assert.match(detail("Python"), /^python3 on slurm-login: Python 3\.\d+\.\d+ \(/);
  assert.doesNotMatch(good.stdout, /testing/, "no credential in the report");

  const bad = await runCli(["doctor", ...flags("--config.work_dir=/proc/alekseylearn", "--config.python=python2.7-missing")], { cwd, env });
  assert.equal(bad.code, 1, bad.stdout + bad.stderr);
  assert.match(bad.stdout, /✗ work folder: \/proc\/alekseylearn cannot be written on slurm-login/);
  assert.match(bad.stdout, /fix: Set config\.work_dir to a folder you can write/);
  assert.match(bad.stdout, /✗ Python: python2\.7-missing on slurm-login cannot make a virtual environment/);
  assert.match(bad.stdout, /fix: Name the cluster's Python 3\.8 or newer with config\.python/);

  const unreachable = await runCli(["doctor", "--backend", "slurm", "--config.host=nowhere.invalid"], { cwd, env });
  assert.equal(unreachable.code, 1);
  assert.match(unreachable.stdout, /✗ login node: ssh nowhere\.invalid did not run a command/);
  assert.match(unreachable.stdout, /fix: Make `ssh nowhere\.invalid true` work without a password prompt/);
  assert.match(unreachable.stdout, /- work folder: needs the login node/);
});

test("a login node ssh cannot reach is a clear error, and ssh never prompts (BatchMode)", async () => {
  const dir = writeTree({ "train.py": "print(1)\n" });
  const fit = await runCli(["fit", "train.py", "--backend", "slurm", "--config.host=nowhere.invalid", "--config.output_path=/shared/runs"], { cwd: dir, env });
  assert.equal(fit.code, 1, fit.stderr);
  assert.match(fit.stderr, /Could not reach the Slurm login node nowhere\.invalid over ssh/);
  assert.match(fit.stderr, /ssh nowhere\.invalid/);
});
