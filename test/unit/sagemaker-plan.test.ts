/** The SageMaker backend's pure parts: what a spec becomes in CreateTrainingJob, the image's Dockerfile and build context, and the role's policy. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import * as tar from "tar";
import { buildSpec, buildSpecFor } from "../../src/jobs/spec.js";
import { repositoryName, SUBMISSION_TAG, trainingJobRequest } from "../../src/backends/sagemaker/plan.js";
import { rolePolicy, TRUST_POLICY } from "../../src/backends/sagemaker/role.js";
import { changesFrom, sagemakerBackend, stateOf } from "../../src/backends/sagemaker/index.js";
import { dockerfileFor, baseImageFor, writeBuildContext, BASE_IMAGES } from "../../src/package/image.js";
import { isIgnored, parseDockerignore } from "../../src/package/dockerignore.js";
import { pipBuildArgs, preferredPort, serveFolder } from "../../src/package/container.js";
import { trainingRunArgs } from "../../src/package/docker.js";
import { UserError } from "../../src/errors.js";
import { writeTree } from "../helpers/tree.js";
import { REPO } from "../helpers/cli.js";
import { fileTimeLimit } from "../helpers/limit.js";

fileTimeLimit(3, import.meta.url);

const OUT = "s3://bucket/sagemaker/runs";

function spec(
  config: Record<string, unknown>,
  files: Record<string, string> = { "train.py": "print('hi')\n", "requirements.txt": "scikit-learn\n" },
  extra: { inputs?: Record<string, string>; hyperparameters?: Record<string, string | number> } = {},
) {
  const dir = writeTree(files);
  return buildSpecFor(sagemakerBackend, { artifact: Object.keys(files)[0]!, config: { output_path: OUT, ...config }, ...extra }, dir);
}

function problemsOf(config: Record<string, unknown>, inputs: Record<string, string> = {}): string[] {
  try {
    spec(config, undefined, { inputs });
  } catch (err) {
    if (err instanceof UserError) return [err.message, ...err.details];
    throw err;
  }
  return [];
}

test("CreateTrainingJob carries every setting, field by field", () => {
  const s = spec(
    {
      train_instance_type: "ml.g5.xlarge",
      train_instance_count: 2,
      volume_size_gb: 50,
      max_runtime: "2h",
      use_spot: true,
      max_wait: "3h",
      checkpoint_s3_uri: "s3://bucket/ckpt",
      environment: "MODE=fast,SEED=1",
      tags: "team=ml",
    },
    undefined,
    { inputs: { train: "s3://bucket/data/train" }, hyperparameters: { epochs: 10, lr: "0.1" } },
  );
  const request = trainingJobRequest(s, {
    name: "train-1",
    image: "123.dkr.ecr.us-east-1.amazonaws.com/alekseylearn/train@sha256:" + "a".repeat(64),
    roleArn: "arn:aws:iam::123456789012:role/r",
    submissionId: "sub-1",
    version: "0.1.0",
  });
  assert.deepEqual(request, {
    TrainingJobName: "train-1",
    AlgorithmSpecification: { TrainingImage: "123.dkr.ecr.us-east-1.amazonaws.com/alekseylearn/train@sha256:" + "a".repeat(64), TrainingInputMode: "File" },
    RoleArn: "arn:aws:iam::123456789012:role/r",
    OutputDataConfig: { S3OutputPath: OUT },
    ResourceConfig: { InstanceType: "ml.g5.xlarge", InstanceCount: 2, VolumeSizeInGB: 50 },
    StoppingCondition: { MaxRuntimeInSeconds: 7200, MaxWaitTimeInSeconds: 10800 },
    HyperParameters: { epochs: "10", lr: "0.1" },
    EnableManagedSpotTraining: true,
    Tags: [
      { Key: SUBMISSION_TAG, Value: "sub-1" },
      { Key: "alekseylearn:version", Value: "0.1.0" },
      { Key: "team", Value: "ml" },
    ],
    Environment: { MODE: "fast", SEED: "1" },
    InputDataConfig: [
      {
        ChannelName: "train",
        DataSource: { S3DataSource: { S3DataType: "S3Prefix", S3Uri: "s3://bucket/data/train", S3DataDistributionType: "FullyReplicated" } },
      },
    ],
    CheckpointConfig: { S3Uri: "s3://bucket/ckpt", LocalPath: "/opt/ml/checkpoints" },
  });
});

test("defaults: the original tool's instance type, one instance, 30 GB, a day, no spot", () => {
  const request = trainingJobRequest(spec({}), { name: "j", image: "i", roleArn: "r", submissionId: "s", version: "v" });
  assert.deepEqual(request.ResourceConfig, { InstanceType: "ml.c4.2xlarge", InstanceCount: 1, VolumeSizeInGB: 30 });
  assert.deepEqual(request.StoppingCondition, { MaxRuntimeInSeconds: 86400 });
  assert.equal(request.EnableManagedSpotTraining, false);
  assert.equal(request.InputDataConfig, undefined);
  assert.equal(request.CheckpointConfig, undefined);
});

test("bad input: every problem is named at once", () => {
  const said = problemsOf(
    { instance_type: "c4.2xlarge", max_wait: "1h", checkpoint_s3_uri: "/tmp/ckpt", environment: "NOEQUALS", role_arn: "role/x" },
    { train: "/tmp" },
  ).join("\n");
  for (const expected of [
    /instance_type c4\.2xlarge is not a SageMaker instance type/,
    /max_wait applies to spot training only/,
    /checkpoint_s3_uri must be an s3:\/\//,
    /environment: "NOEQUALS" is not KEY=VALUE/,
    /role_arn role\/x is not an IAM role ARN/,
    /input train: SageMaker reads inputs from S3/,
  ]) {
    assert.match(said, expected);
  }
  assert.match(
    problemsOf({ use_spot: true, max_runtime: "2h", max_wait: "1h" }).join("\n"),
    /max_wait \(3600s\) must be at least config.max_runtime \(7200s\)/,
  );
});

test("bad input: an output path that is not s3:// is refused on sagemaker", async () => {
  const dir = writeTree({ "train.py": "" });
  await assert.rejects(
    () => buildSpec({ artifact: "train.py", backend: "sagemaker", config: { output_path: "./out" } }, dir),
    (err: UserError) => /must be an s3:\/\/ location on SageMaker/.test(err.message),
  );
  await assert.rejects(
    () => buildSpec({ artifact: "train.py", backend: "sagemaker" }, dir),
    (err: UserError) => /output_path is required/.test([err.message, ...err.details].join("\n")),
  );
});

test("repository names come from the artifact, in ECR's alphabet", () => {
  const named = spec({}, { "My Train.py": "" });
  assert.equal(
    repositoryName(named),
    `alekseylearn/${path
      .basename(named.artifact.dir)
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, "-")}-my-train`,
    "the project's folder, then the file's stem",
  );
  assert.equal(repositoryName(spec({ repository: "team/model" })), "team/model");
});

test("job states follow TrainingJobStatus and SecondaryStatus", () => {
  assert.equal(stateOf("InProgress", "Starting"), "queued");
  assert.equal(stateOf("InProgress", "Downloading"), "queued");
  assert.equal(stateOf("InProgress", "Training"), "running");
  assert.equal(stateOf("Stopping", "Stopping"), "running");
  assert.equal(stateOf("Completed", "Completed"), "completed");
  assert.equal(stateOf("Failed", "Failed"), "failed");
  assert.equal(stateOf("Stopped", "Stopped"), "stopped");
  // Deleting (botocore's TrainingJobStatus enum) comes only after a terminal state: a final state, never running.
  assert.equal(stateOf("Deleting", "Completed"), "stopped");
  assert.equal(stateOf("Deleting", "Training"), "stopped");
});

test(
  "TrainingJobStatus Deleting is a state of its own: final (stopped), with a reason that says the job was deleted after it ended",
  { timeout: 10_000 },
  () => {
    const record = { name: "j", backend: "sagemaker", state: "running", createdAt: new Date(0).toISOString(), jobOutput: "s3://b/j", provider: {} };
    const changes = changesFrom({ TrainingJobStatus: "Deleting", SecondaryStatus: "Completed", LastModifiedTime: new Date(1000) } as never, record as never);
    assert.equal(changes.state, "stopped");
    assert.match(changes.reason ?? "", /^deleted on SageMaker \(status Deleting, after DeleteTrainingJob\): the job had ended; /);
    assert.ok(changes.endedAt, "a final state has its end");
    assert.equal((changes.provider as Record<string, string>).status, "Deleting");
  },
);

test("Dockerfile: environment before code, so a code change reinstalls nothing; the job runtime from the context; notebooks get nbclient", () => {
  const script = dockerfileFor(spec({}), "python:3.11-slim");
  const order = [
    "FROM python:3.11-slim",
    "COPY requirements.txt",
    "pip install",
    "COPY .alekseylearn/runtime/ /opt/alekseylearn/",
    "COPY . /opt/ml/code",
    "ENTRYPOINT",
  ].map((part) => script.indexOf(part));
  assert.ok(
    order.every((at, i) => at >= 0 && (i === 0 || at > order[i - 1]!)),
    script,
  );
  assert.match(script, /ALEKSEYLEARN_ENTRY="train.py" ALEKSEYLEARN_KIND=script/);
  const notebook = dockerfileFor(spec({}, { "nb.ipynb": "{}", "requirements.txt": "" }), "python:3.11-slim");
  assert.match(notebook, /pip install .* nbclient ipykernel/);
  assert.match(notebook, /ENTRYPOINT \["python3", "\/opt\/alekseylearn\/alekseylearn_entrypoint.py"\]/, "the runtime runs a notebook too");
  const conda = spec({}, { "train.py": "", "environment.yml": "dependencies: [python=3.11]\n" });
  assert.equal(baseImageFor(conda, conda.settings.base_image, false), BASE_IMAGES.conda);
  assert.match(dockerfileFor(conda, BASE_IMAGES.conda), /micromamba install --yes --name base --file/);
  assert.equal(baseImageFor(spec({}), "auto", true), BASE_IMAGES.gpu);
  assert.equal(baseImageFor(spec({ base_image: "my/base:1" }), "my/base:1", true), "my/base:1");
});

test("the backend says a GPU instance type (P and G families) asks for a GPU, also as given before validation (train_instance_type)", () => {
  assert.equal(sagemakerBackend.wantsGpu(spec({}).settings), false, "the default ml.c4.2xlarge");
  assert.equal(sagemakerBackend.wantsGpu(spec({ instance_type: "ml.p3.2xlarge" }).settings), true);
  assert.equal(sagemakerBackend.wantsGpu(spec({ train_instance_type: "ml.g5.xlarge" }).settings), true);
  assert.equal(sagemakerBackend.wantsGpu(spec({ instance_type: "ml.m5.xlarge" }).settings), false);
  assert.equal(sagemakerBackend.wantsGpu({ train_instance_type: "ml.g4dn.xlarge" }), true);
  assert.equal(sagemakerBackend.wantsGpu({ accelerator_type: "NVIDIA_L4" }), false, "another backend's setting means nothing here");
});

test("build context: sorted, timeless, no caches; generated files added; an environment file outside the folder comes along", async () => {
  const root = writeTree({ "proj/train.py": "", "proj/lib/util.py": "", "proj/__pycache__/x.pyc": "", "proj/.git/HEAD": "", "reqs.txt": "joblib\n" });
  const s = await buildSpec({ artifact: "proj", entry: "train.py", envfile: "reqs.txt", config: { output_path: OUT } }, root);
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "ctx-")), "context.tar");
  await writeBuildContext(s, "python:3.11-slim", file);
  const entries: { path: string; mtime: number }[] = [];
  await tar.t({ file, onReadEntry: (entry) => entries.push({ path: entry.path, mtime: entry.mtime?.getTime() ?? 0 }) });
  const names = entries.map((entry) => entry.path.replace(/\/$/, ""));
  const shown = (name: string): boolean => !name.includes("/") || name.startsWith(".alekseylearn/") || name.startsWith("lib/");
  assert.deepEqual(names.filter((name) => shown(name) && !name.startsWith(".alekseylearn/runtime/alekseylearn_runtime")).sort(), [
    ".alekseylearn",
    ".alekseylearn/reqs.txt",
    ".alekseylearn/runtime",
    ".alekseylearn/runtime/alekseylearn_entrypoint.py",
    "Dockerfile",
    "lib",
    "lib/util.py",
    "train.py",
  ]);
  assert.ok(entries.every((entry) => entry.mtime === 0));
  assert.ok(!names.some((name) => name.includes("__pycache__") || name.includes(".git")));
  const again = `${file}.2`;
  await writeBuildContext(s, "python:3.11-slim", again);
  assert.deepEqual(fs.readFileSync(again), fs.readFileSync(file), "the same code gives the same context");
});

test("pip index settings reach the build only over http(s) and without credentials", () => {
  const warnings: string[] = [];
  // A file:// index is not passed as it is: the build is given it over http (the folder above it is served).
  assert.deepEqual(
    pipBuildArgs({ PIP_INDEX_URL: "http://127.0.0.1:9/simple", PIP_EXTRA_INDEX_URL: "file:///opt/pypi/simple" }, (m) => warnings.push(m)),
    { args: { PIP_INDEX_URL: "http://127.0.0.1:9/simple" }, serve: [{ key: "PIP_EXTRA_INDEX_URL", folder: "/opt/pypi", path: "/simple/" }] },
  );
  assert.deepEqual(
    pipBuildArgs({ PIP_INDEX_URL: "https://user:secret@pypi.example/simple" }, (m) => warnings.push(m)),
    { args: {}, serve: [] },
  );
  assert.ok(warnings.length === 1 && !warnings[0]!.includes("secret"));
});

test("a file:// index is served at the same port build after build (the environment layer stays cached), another one while that port is taken", async () => {
  const folder = writeTree({ "simple/index.html": "<html></html>" });
  const first = await serveFolder(folder, "127.0.0.1");
  assert.equal(first.port, preferredPort(folder));
  const meanwhile = await serveFolder(folder, "127.0.0.1");
  assert.notEqual(meanwhile.port, first.port, "a second build at once gets a free port");
  assert.equal(await (await fetch(`http://127.0.0.1:${meanwhile.port}/simple/`)).text(), "<html></html>");
  await meanwhile.close();
  await first.close();
  const again = await serveFolder(folder, "127.0.0.1");
  assert.equal(again.port, first.port);
  await again.close();
});

test("docker run for a training container: train, /opt/ml mounted, env values never on the command line", () => {
  const args = trainingRunArgs({
    image: "img@sha256:1",
    name: "alekseylearn-j",
    ml: "/tmp/ml",
    mounts: [{ host: "/data", inside: "/opt/ml/input/data/train", readOnly: true }],
    env: { TOKEN: "secret" },
  });
  assert.deepEqual(args, [
    "run",
    "--rm",
    "--name",
    "alekseylearn-j",
    "--network",
    "host",
    "--volume",
    "/tmp/ml/checkpoints:/opt/ml/checkpoints",
    "--volume",
    "/tmp/ml/input:/opt/ml/input",
    "--volume",
    "/tmp/ml/model:/opt/ml/model",
    "--volume",
    "/tmp/ml/output:/opt/ml/output",
    "--volume",
    "/data:/opt/ml/input/data/train:ro",
    "--env",
    "TOKEN",
    "img@sha256:1",
    "train",
  ]);
});

test("the role: trusted by SageMaker only, allowed the job's S3 paths, alekseylearn images, its logs and metrics", () => {
  assert.deepEqual(TRUST_POLICY.Statement[0]!.Principal, { Service: "sagemaker.amazonaws.com" });
  const s = spec({ checkpoint_s3_uri: "s3://other/ckpt/" }, undefined, { inputs: { train: "s3://data/train" } });
  const policy = rolePolicy(s, { account: "123456789012", region: "eu-west-1", partition: "aws" }) as {
    Statement: { Sid: string; Resource: string | string[]; Action: string | string[] }[];
  };
  const by = Object.fromEntries(policy.Statement.map((statement) => [statement.Sid, statement]));
  // An input is every key starting with it, as SageMaker reads an S3Prefix channel; outputs and checkpoints are written below theirs.
  assert.deepEqual(by.JobData!.Resource, ["arn:aws:s3:::bucket/sagemaker/runs/*", "arn:aws:s3:::data/train*", "arn:aws:s3:::other/ckpt/*"]);
  assert.deepEqual(by.JobBuckets!.Resource, ["arn:aws:s3:::bucket", "arn:aws:s3:::data", "arn:aws:s3:::other"]);
  assert.deepEqual(by.ImagePull!.Resource, ["arn:aws:ecr:eu-west-1:123456789012:repository/alekseylearn/*"]);
  assert.deepEqual(by.Logs!.Resource, [
    "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/sagemaker/TrainingJobs",
    "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/sagemaker/TrainingJobs:*",
  ]);
  assert.equal(by.Metrics!.Action, "cloudwatch:PutMetricData");
  assert.ok(!JSON.stringify(policy).includes('"*:*"') && !JSON.stringify(policy).includes('"s3:*"'));
});

test(".dockerignore is read as Docker reads it: excluded files are not packed, exceptions come back, the last matching line decides", async () => {
  const rules = parseDockerignore("# data stays home\ndata/\n*.csv\n!keep.csv\n**/*.tmp\n/build\n");
  assert.equal(isIgnored(rules, "data"), true);
  assert.equal(isIgnored(rules, "data/big.bin"), true, "inside an excluded folder");
  assert.equal(isIgnored(rules, "train.csv"), true);
  assert.equal(isIgnored(rules, "keep.csv"), false, "an exception");
  assert.equal(isIgnored(rules, "sub/train.csv"), false, "* does not cross folders");
  assert.equal(isIgnored(rules, "a/b/c.tmp"), true, "** crosses folders");
  assert.equal(isIgnored(rules, "build/out.o"), true);
  assert.equal(isIgnored(rules, "train.py"), false);

  const root = writeTree({
    "proj/train.py": "",
    "proj/data/big.bin": "x".repeat(1000),
    "proj/train.csv": "",
    "proj/keep.csv": "",
    "proj/.dockerignore": "data\n*.csv\n!keep.csv\nDockerfile\n",
  });
  const s = await buildSpec({ artifact: "proj/train.py", config: { output_path: OUT } }, root);
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "ctx-")), "context.tar");
  await writeBuildContext(s, "python:3.11-slim", file);
  const names: string[] = [];
  await tar.t({ file, onReadEntry: (entry) => names.push(entry.path.replace(/\/$/, "")) });
  assert.deepEqual(names.filter((name) => !name.startsWith(".alekseylearn/")).sort(), [".alekseylearn", ".dockerignore", "Dockerfile", "keep.csv", "train.py"]);
});

test("the shapes fit checks requests against are botocore's SageMaker model on this machine, regenerated by scripts/sagemaker-shapes.py", () => {
  const generated = spawnSync("python3", [path.join(REPO, "scripts", "sagemaker-shapes.py"), "--print"], { encoding: "utf8" });
  assert.equal(generated.status, 0, generated.stderr);
  const shipped = fs.readFileSync(path.join(REPO, "src", "backends", "sagemaker", "shapes.ts"), "utf8");
  const body = (text: string): unknown => JSON.parse(text.slice(text.indexOf("= {") + 2, text.lastIndexOf(";")));
  assert.deepEqual(body(shipped), body(generated.stdout), "run `python3 scripts/sagemaker-shapes.py` to bring src/backends/sagemaker/shapes.ts up to date");
});

test("a spec is held to SageMaker's limits before anything is built: counts, lengths and patterns of CreateTrainingJob", () => {
  const many = Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`h${i}`, "1"]));
  assert.match(problemsOfSpec({}, { hyperparameters: many }).join("\n"), /HyperParameters: at most 100 entries/);
  assert.match(problemsOfSpec({ environment: ["MY-VAR=1"] }).join("\n"), /Environment\{key "MY-VAR"\}: "MY-VAR" does not match \[a-zA-Z_\]\[a-zA-Z0-9_\]\*/);
  assert.match(problemsOfSpec({}, { hyperparameters: { note: "x".repeat(2501) } }).join("\n"), /HyperParameters\.note: at most 2500 characters/);
  assert.match(
    problemsOfSpec({}, { hyperparameters: { note: "two\nlines" } }).join("\n"),
    /HyperParameters\.note: .* does not match \.\*/,
    "SageMaker matches the whole value, and . stops at a newline",
  );
  assert.match(
    problemsOfSpec({ tags: Array.from({ length: 50 }, (_, i) => `t${i}=v`) }).join("\n"),
    /Tags: at most 50 items/,
    "alekseylearn's own two tags count too",
  );
  assert.match(problemsOfSpec({ repository: `alekseylearn/${"r".repeat(250)}` }).join("\n"), /AlgorithmSpecification\.TrainingImage: at most 255 characters/);
  assert.deepEqual(problemsOfSpec({ environment: ["WANDB_MODE=offline"], tags: ["team=ml"] }, { hyperparameters: { "learning-rate": "0.10" } }), []);
});

function problemsOfSpec(config: Record<string, unknown>, extra: { hyperparameters?: Record<string, string> } = {}): string[] {
  try {
    spec(config, undefined, extra);
    return [];
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    return [err.message, ...err.details];
  }
}
