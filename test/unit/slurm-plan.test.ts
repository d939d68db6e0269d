/**
 * The Slurm backend's pure parts: settings → sbatch options (slurm.schedmd.com/sbatch.html; an unset setting adds none),
 * the sbatch script, credentials kept out of it, what the backend refuses, and the status report read as Slurm 22.05
 * prints it (squeue --format %T|%r|%N, sacct --parsable2, scontrol show job -o; captured on the test cluster).
 */
import os from "node:os";
import { test } from "node:test";
import assert from "node:assert/strict";
import { buildSpecFor } from "../../src/jobs/spec.js";
import { UserError } from "../../src/errors.js";
import { slurmBackend } from "../../src/backends/slurm/index.js";
import { environmentHash, sbatchOptions, sbatchScript, sbatchTime, shellWord, stripCredentials, submitCommand } from "../../src/backends/slurm/plan.js";
import { outputLocation, parseOutputLocation, readStatus } from "../../src/backends/slurm/status.js";
import { doctorCommand, readDoctor } from "../../src/backends/slurm/doctor.js";
import { describeJob, hostsCell, stateCell } from "../../src/cli/render.js";
import type { JobRecord } from "../../src/jobs/job.js";
import { writeTree } from "../helpers/tree.js";
import { fileTimeLimit } from "../helpers/limit.js";
import { loginEnvironment, runRemote } from "../../src/backends/slurm/remote.js";
import type { Context } from "../../src/context.js";

fileTimeLimit(2, import.meta.url);

function spec(config: Record<string, unknown> = {}, files: Record<string, string> = { "train.py": "print(1)\n" }) {
  const dir = writeTree(files);
  return buildSpecFor(slurmBackend, { artifact: Object.keys(files)[0]!, config: { output_path: "/shared/runs", ...config } }, dir);
}

const LOG = "/w/jobs/j/slurm.out";

test("Slurm plan: with no settings, only the job's name, log, node count and one task per node: the cluster's defaults apply", () => {
  assert.deepEqual(sbatchOptions(spec().settings, "j", LOG), ["--job-name=j", `--output=${LOG}`, "--nodes=1", "--ntasks-per-node=1"]);
});

test("Slurm plan: each setting becomes its sbatch option", () => {
  const settings = spec({
    partition: "gpu",
    account: "lab",
    qos: "high",
    max_runtime: "1d2h",
    instance_count: 4,
    gpus_per_node: 8,
    cpus_per_task: 16,
    mem: "64G",
    constraint: "a100",
    extra_sbatch: ["--exclusive", "--mail-type=END"],
  }).settings;
  assert.deepEqual(sbatchOptions(settings, "j", LOG), [
    "--job-name=j",
    `--output=${LOG}`,
    "--nodes=4",
    "--ntasks-per-node=1",
    "--partition=gpu",
    "--account=lab",
    "--qos=high",
    "--time=1-02:00:00",
    "--gpus-per-node=8",
    "--cpus-per-task=16",
    "--mem=64G",
    "--constraint=a100",
    "--exclusive",
    "--mail-type=END",
  ]);
  assert.equal(sbatchTime(90), "00:01:30");
  assert.equal(sbatchTime(3 * 86400 + 61), "3-00:01:01");
});

test("Slurm plan: the script runs one task per node through srun only with several nodes, and names the environment by its hash", () => {
  const one = spec({}, { "train.py": "print(1)\n", "requirements.txt": "joblib\n" });
  const script = sbatchScript(one, "/shared/runs/j", { name: "j", digest: "abc", index: {} });
  assert.doesNotMatch(script, /\nsrun /);
  assert.doesNotMatch(script, /hosts\//, "one node: nothing to keep of others");
  assert.match(script, /pip install --quiet --disable-pip-version-check -r "\$BLOB\/requirements.txt"/);
  assert.match(script, new RegExp(`ENV="\\$WORK/envs/${environmentHash(one)}"`));
  const two = sbatchScript(spec({ instance_count: 2, distribution: "torchrun" }), "/shared/runs/j", { name: "j", digest: "abc", index: {} });
  assert.match(two, /\nsrun --ntasks-per-node=1 --kill-on-bad-exit=1 bash -c node &/);
  assert.match(two, /export ALEKSEYLEARN_DISTRIBUTION=torchrun/);
  assert.match(two, /export ALEKSEYLEARN_PLATFORM=slurm/);
  assert.match(two, /to="\$first\/output\/data\/hosts\/\$host\/\$\{part#\*:\}"/, "the other nodes' folders go under hosts/NODE/ of output.tar.gz");
  assert.match(two, /OUTPUT=\/shared\/runs\/j\/output/);
  // The environment changes with what it is made from, not with the code.
  assert.notEqual(environmentHash(one), environmentHash(spec()));
  assert.equal(environmentHash(spec({ python: "python3.11" })) === environmentHash(spec()), false);
});

test("Slurm plan: with an s3:// or gs:// output path the script packs into the job's own folder on the cluster and names the bucket only in a comment (alekseylearn copies there, with no credential given to the job)", () => {
  for (const outputPath of ["s3://bucket/runs", "gs://bucket/runs"]) {
    const script = sbatchScript(spec({ output_path: outputPath, work_dir: "/w" }), `${outputPath}/j`, { name: "j", digest: "abc", index: {} });
    assert.match(script, /\nOUTPUT=\/w\/jobs\/j\/output\n/);
    assert.match(script, new RegExp(`# The output path is ${outputPath.replace(/[/.]/g, "\\$&")}/j/output: this job is given no credential for it`));
    assert.equal(script.split("\n").filter((line) => line.includes(outputPath) && !line.startsWith("#")).length, 0, "the bucket appears in comments only");
  }
});

test("Slurm plan: index URLs go into the script without their credentials; modules are loaded first", () => {
  const script = sbatchScript(spec({ modules: ["python/3.11", "cuda/12.4"] }), "/o/j", {
    name: "j",
    digest: "abc",
    index: { PIP_INDEX_URL: "https://me:t0ken@pypi.corp/simple", PIP_EXTRA_INDEX_URL: "https://pypi.corp/simple?token=t0ken" },
  });
  assert.doesNotMatch(script, /t0ken/);
  assert.match(script, /export PIP_INDEX_URL=https:\/\/pypi\.corp\/simple\n/);
  assert.match(script, /module load python\/3\.11 cuda\/12\.4/);
  assert.equal(
    stripCredentials("https://${USER}:${TOKEN}@pypi.corp/simple"),
    "https://${USER}:${TOKEN}@pypi.corp/simple",
    "pip expands variables on the cluster",
  );
  assert.equal(shellWord("~/alekseylearn"), '"$HOME"/alekseylearn');
  assert.equal(shellWord("it's"), `'it'\\''s'`);
});

test("Slurm plan: what the backend cannot run is refused before anything is copied", () => {
  assert.throws(
    () => spec({ output_path: "kaggle://someone/runs" }),
    (err: unknown) => err instanceof UserError && /s3:\/\/ or gs:\/\/, not kaggle:\/\//.test(err.message),
  );
  assert.throws(
    () =>
      buildSpecFor(
        slurmBackend,
        { artifact: "train.py", inputs: { train: "s3://bucket/data" }, config: { output_path: "s3://bucket/runs" } },
        writeTree({ "train.py": "" }),
      ),
    (err: unknown) => err instanceof UserError && /input train/.test(err.message),
  );
  assert.throws(
    () => spec({ work_dir: "relative/dir" }),
    (err: unknown) => err instanceof UserError && /config\.work_dir/.test(err.message),
  );
  assert.throws(
    () => spec({}, { "train.py": "print(1)\n", "environment.yml": "dependencies: [numpy]\n" }),
    (err: unknown) => err instanceof UserError && /conda/.test(err.message),
  );
});

const SEP = "@@alekseylearn@@\n";
const report = (parts: string[]): string => parts.join(SEP);

test("Slurm status: squeue's state, reason and nodes while Slurm holds the job", () => {
  assert.deepEqual(readStatus(report(["PENDING|Resources|\n", "", "", "", "", "", ""])), {
    state: "queued",
    slurmState: "PENDING",
    queueReason: "Resources",
    model: false,
    output: false,
  });
  const running = readStatus(report(["RUNNING|None|node[1-2]\n", "", "", "", "", "", ""]));
  assert.equal(running.state, "running");
  assert.equal(running.nodes, "node[1-2]");
});

test("Slurm status: the script's exit-code file decides the end; sacct or scontrol when squeue has forgotten the job", () => {
  const failed = readStatus(report(["", "", "", "1\n", "ValueError: bad data\n", "", ""]));
  assert.equal(failed.state, "failed");
  assert.equal(failed.reason, "ValueError: bad data");
  const done = readStatus(report(["", "COMPLETED|0:0|node1\n", "", "0\n", "", "", "model.tar.gz\noutput.tar.gz\n"]));
  assert.deepEqual([done.state, done.slurmState, done.model, done.output], ["completed", "COMPLETED", true, true]);
  const stopped = readStatus(report(["", "", "JobId=7 JobName=j JobState=CANCELLED Reason=None NodeList=node1\n", "", "", "stop\n", ""]));
  assert.deepEqual([stopped.state, stopped.reason], ["stopped", "stopped by request"]);
  const timeout = readStatus(report(["TIMEOUT|TimeLimit|node1\n", "", "", "", "", "", ""]));
  assert.equal(timeout.state, "failed");
  assert.match(timeout.reason ?? "", /time limit/);
  assert.equal(readStatus(report(["", "", "", "", "", "", ""])).state, "failed");
});

test("Slurm outputs: a slurm:// location keeps the login node and the ssh_config file", () => {
  const location = outputLocation({ host: "login1", sshConfig: "/home/me/.ssh/cluster config" }, "/shared/runs/j/output/model.tar.gz");
  assert.equal(location, "slurm://login1/shared/runs/j/output/model.tar.gz?ssh_config=%2Fhome%2Fme%2F.ssh%2Fcluster%20config");
  assert.deepEqual(parseOutputLocation(location), {
    login: { host: "login1", sshConfig: "/home/me/.ssh/cluster config" },
    path: "/shared/runs/j/output/model.tar.gz",
  });
});

test("Slurm plan: a submission never reuses a job folder that exists (its old exit code would be read as this job's)", () => {
  const command = submitCommand(["--job-name=j"], "/w/jobs/j");
  assert.match(
    command,
    /^if \[ -e \/w\/jobs\/j \]; then echo "the job folder \/w\/jobs\/j exists already .*exit 3; fi && mkdir -p \/w\/jobs\/j && sbatch --parsable --job-name=j$/,
  );
});

test("Slurm doctor: the login node's report read into checks (accounting kept, commands missing, an old Python, no bubblewrap)", () => {
  const SEP_D = "@@alekseylearn-doctor@@\n";
  const settings = { work_dir: "~/al", python: "python3", modules: ["python/3.6"] };
  const text = [
    "reached\n",
    "sbatch /usr/bin/sbatch\nsqueue /usr/bin/squeue\nscontrol \nscancel \n",
    "0\n\n",
    "/home/u/al\nwritable\n",
    "3.6.15\n/opt/py36/bin/python3\n",
    "",
  ].join(SEP_D);
  const checks = readDoctor(text, { host: "login" }, settings);
  const by = Object.fromEntries(checks.map((check) => [check.check, check]));
  assert.equal(by["Slurm commands"]!.status, "fail");
  assert.match(by["Slurm commands"]!.detail, /scontrol, scancel$/);
  assert.equal(by.accounting!.detail, "sacct answers: an ended job's state is read from it");
  assert.equal(by["work folder"]!.status, "ok");
  assert.match(by["work folder"]!.detail, /^\/home\/u\/al \(config\.work_dir ~\/al\)/);
  assert.equal(by.Python!.status, "fail");
  assert.equal(by.Python!.detail, "python3 (after module load python/3.6) on login is Python 3.6.15");
  assert.match(by.bubblewrap!.detail, /^not on login \(informational/);
  assert.match(doctorCommand(settings), /module load python\/3\.6 && python3 -c /);
});

test("jobs and status: a multi-host job's hosts (Slurm's nodes once given, SageMaker's names elsewhere) and a Slurm job's queue reason while it waits", () => {
  const base = { name: "j", createdAt: "2026-01-01T00:00:00Z", jobOutput: "/shared/runs/j" };
  const two = spec({ instance_count: 2 });
  const waiting = {
    ...base,
    backend: "slurm",
    state: "queued",
    spec: two,
    provider: { jobId: "7", secondary: "PENDING", message: "Priority", queueReason: "Priority" },
  } as JobRecord;
  assert.equal(stateCell(waiting), "queued (Priority)");
  assert.equal(hostsCell(waiting), "2 (nodes not given yet)");
  assert.match(describeJob(waiting), /^Status: +PENDING \(Priority\)$/m);
  const running = { ...waiting, state: "running", provider: { jobId: "7", secondary: "RUNNING", nodes: "node[1-2]", message: "on node[1-2]" } } as JobRecord;
  assert.equal(stateCell(running), "running");
  assert.equal(hostsCell(running), "2 (node[1-2])");
  assert.match(describeJob(running), /^Hosts: +2 \(node\[1-2\]\)$/m);
  const local = { ...base, backend: "local", state: "completed", spec: { ...two, backend: "local" } } as JobRecord;
  assert.equal(hostsCell(local), "2 (algo-1, algo-2)");
  assert.equal(hostsCell({ ...local, spec: spec() } as JobRecord), "1");
});

test("Slurm on localhost: the login node's commands, and so the job (sbatch's --export=ALL), get this process's environment without its AWS, Google and Kaggle credentials; what the user exported for the job passes", async () => {
  const env = {
    PATH: process.env.PATH,
    HOME: "/home/someone",
    SLURM_CONF: "/etc/slurm/test.conf",
    AWS_PROFILE: "research",
    AWS_ACCESS_KEY_ID: "AKIACANARY",
    AWS_SECRET_ACCESS_KEY: "secret-canary",
    AWS_SESSION_TOKEN: "token-canary",
    GOOGLE_APPLICATION_CREDENTIALS: "/keys/canary.json",
    KAGGLE_USERNAME: "someone",
    KAGGLE_KEY: "kaggle-canary",
    WANDB_API_KEY: "for-the-job",
  };
  const ran = await runRemote({ host: "localhost" }, "env", { cwd: os.tmpdir(), env } as unknown as Context);
  const seen = ran.stdout.toString();
  for (const kept of ["HOME=/home/someone", "SLURM_CONF=/etc/slurm/test.conf", "AWS_PROFILE=research", "KAGGLE_USERNAME=someone", "WANDB_API_KEY=for-the-job"])
    assert.match(seen, new RegExp(`^${kept}$`, "m"));
  assert.doesNotMatch(seen, /CANARY|canary/, "no credential reaches the command");
  assert.deepEqual(
    Object.keys(loginEnvironment({ AWS_TOKEN: "x", AWS_MAX_TOKENS: "5", B: undefined })),
    ["AWS_MAX_TOKENS"],
    "only names that name a secret are dropped",
  );
});
