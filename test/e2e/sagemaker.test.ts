/**
 * The SageMaker backend end to end through the CLI. What stands in for AWS,
 * named in each test: moto (STS, IAM, ECR's API, S3, CloudWatch Logs), a real
 * docker-registry for ECR's registry, the real dockerd that builds and pushes,
 * and a fake SageMaker (test/servers/sagemaker-fake.ts: checks every request
 * against botocore's published SageMaker model and steps each job through its
 * lifecycle by running the pushed image with the local container runner),
 * because moto reports every job Completed at once and writes no model.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { awsCli, testAwsKeys } from "../helpers/aws.js";
import { copyExample, cliEnv, notebookRoundTrip, runCli, startCli, waitFor } from "../helpers/cli.js";
import { dockerTestEnv, registryHas } from "../helpers/docker.js";
import { noDockerEnv, pushTestBase } from "../helpers/registry.js";
import { freePort, startMoto, type Moto } from "../helpers/servers.js";
import { listTree, writeTree } from "../helpers/tree.js";
import { sagemakerModel, startFakeSageMaker, validate } from "../servers/sagemaker-fake.js";
import { startCloudWatchProxy } from "../servers/cloudwatch-proxy.js";
import { ARGPARSE_ARGV, ARGPARSE_EXPECTED, ARGPARSE_HYPERPARAMETERS, ARGPARSE_SCRIPT } from "../helpers/scripts.js";
import { fitAndFetch, styleProjects, unpickle, V3_HYPERPARAMETERS } from "../helpers/styles.js";
import { fileTimeLimit } from "../helpers/limit.js";
import { cpuTorchIndex, TWO_RANK_REQUIREMENTS, TWO_RANK_SCRIPT } from "../helpers/distributed.js";

fileTimeLimit(30, import.meta.url);

const OUTPUT = "s3://bucket/sagemaker/runs";
const ROLE = "alekseylearn_sagemaker_role";
const docker = dockerTestEnv();
let moto: Moto;
let fake: Awaited<ReturnType<typeof startFakeSageMaker>>;

/** A secret key that must never be seen again: not in output, records, logs or images. */
const SECRET = "never-printed-s3cr3t-K3y";

const awsKeys = (): Record<string, string> => testAwsKeys(SECRET);
/** The AWS CLI against moto (the test's own hands, not the product's). */
const aws = (args: string[]): string => awsCli(moto.url, args, awsKeys());

/** The CLI's environment: moto for AWS, the fake for SageMaker, the local registry for ECR's, a home without ~/.aws. */
function sagemakerEnv(extra: Record<string, string> = {}): ReturnType<typeof cliEnv> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "aws-home-"));
  return cliEnv({
    ...awsKeys(),
    HOME: home,
    AWS_ENDPOINT_URL: moto.url,
    AWS_ENDPOINT_URL_SAGEMAKER: fake.url,
    ALEKSEYLEARN_REGISTRY: docker.registry,
    DOCKER_HOST: docker.DOCKER_HOST,
    PIP_INDEX_URL: docker.pipIndex,
    ...extra,
  });
}

const FAST = ["--config.poll_interval=0.2"];

before(async () => {
  moto = await startMoto();
  fake = await startFakeSageMaker({ moto: moto.url, dockerEnv: { ...process.env, DOCKER_HOST: docker.DOCKER_HOST } });
  aws(["s3", "mb", "s3://bucket"]);
  const trust = JSON.stringify({
    Version: "2012-10-17",
    Statement: [{ Effect: "Allow", Principal: { Service: "sagemaker.amazonaws.com" }, Action: "sts:AssumeRole" }],
  });
  aws(["iam", "create-role", "--role-name", ROLE, "--assume-role-policy-document", trust]);
  // The role's own policy: SageMaker (the fake, as the real one) acts with it, and fit checks it before building.
  const policy = {
    Version: "2012-10-17",
    Statement: [
      { Effect: "Allow", Action: ["s3:GetObject", "s3:PutObject"], Resource: "arn:aws:s3:::bucket/*" },
      { Effect: "Allow", Action: "s3:ListBucket", Resource: "arn:aws:s3:::bucket" },
      {
        Effect: "Allow",
        Action: ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
        Resource: "arn:aws:ecr:us-east-1:123456789012:repository/alekseylearn/*",
      },
      { Effect: "Allow", Action: "ecr:GetAuthorizationToken", Resource: "*" },
    ],
  };
  aws(["iam", "put-role-policy", "--role-name", ROLE, "--policy-name", "jobs", "--policy-document", JSON.stringify(policy)]);
});

after(async () => {
  await fake?.stop();
  await moto?.stop();
});

/** The training jobs the fake SageMaker was asked to create. */
function trainingJobs(): string[] {
  return fake.requests.filter((r) => r.target === "CreateTrainingJob").map((r) => String(r.body.TrainingJobName));
}

function created(name: string): Record<string, unknown> {
  const request = fake.requests.find((r) => r.target === "CreateTrainingJob" && (r.body as { TrainingJobName: string }).TrainingJobName === name);
  assert.ok(request, `CreateTrainingJob for ${name} reached the fake SageMaker`);
  return request.body as Record<string, unknown>;
}

test("moto + registry + fake SageMaker: the seed's two commands on examples/iris leave the model's files in the current folder", async () => {
  const dir = copyExample("iris");
  const { env } = sagemakerEnv();
  // config.builder=docker: the Docker path (the daemonless one has its own test below), read back with `docker history`.
  const fit = await runCli(["fit", "train.py", `--config.output_path=${OUTPUT}`, "--config.builder=docker", ...FAST, "--json"], { cwd: dir, env });
  assert.equal(fit.code, 0, fit.stderr);
  const job = JSON.parse(fit.stdout);
  assert.equal(job.state, "completed");
  assert.equal(job.model, `${OUTPUT}/${job.name}/output/model.tar.gz`);
  // The SecondaryStatus each poll saw, with its message, in SageMaker's order (a poll may miss a short one), ending Completed.
  const order = ["Starting", "Downloading", "Training", "Uploading", "Completed"];
  const seen = [...fit.stderr.matchAll(/\[sagemaker\] (\w+): /g)].map((match) => match[1]!);
  assert.equal(seen.at(-1), "Completed", fit.stderr);
  assert.deepEqual(
    seen,
    [...seen].sort((a, b) => order.indexOf(a) - order.indexOf(b)),
    "SecondaryStatus transitions are printed with their messages, in order",
  );
  assert.match(fit.stderr, /training on 112 samples/, "the job's CloudWatch log is streamed");
  assert.match(fit.stderr, /\[sagemaker\] completed; billable time \d+ s/);

  // The request, field by field where the seed's command decides it.
  const request = created(job.name);
  const image = (request.AlgorithmSpecification as { TrainingImage: string }).TrainingImage;
  assert.match(
    image,
    new RegExp(`^${docker.registry.replace(/\./g, "\\.")}/alekseylearn/iris-train@sha256:[0-9a-f]{64}$`),
    "the repository is named per project: alekseylearn/<folder>-<stem>",
  );
  assert.ok(await registryHas("alekseylearn/iris-train", image.split("@")[1]!), "the job's image, by digest, is in the registry");
  assert.equal(request.RoleArn, `arn:aws:iam::123456789012:role/${ROLE}`);
  assert.deepEqual(request.ResourceConfig, { InstanceType: "ml.c4.2xlarge", InstanceCount: 1, VolumeSizeInGB: 30 });
  assert.deepEqual(request.OutputDataConfig, { S3OutputPath: OUTPUT });
  assert.ok((request.Tags as { Key: string }[]).some((tag) => tag.Key === "alekseylearn:submission"));

  const fetch = await runCli(["fetch", OUTPUT], { cwd: dir, env });
  assert.equal(fetch.code, 0, fetch.stderr);
  assert.ok(fs.existsSync(path.join(dir, "model.joblib")), `model.joblib in the current folder; it has ${listTree(dir).join(", ")}`);
  assert.ok(!listTree(dir).includes("Dockerfile"), "fit wrote nothing into the project folder");

  // No credential anywhere: not the AWS secret key, not ECR's registry password.
  const token = JSON.parse(aws(["ecr", "get-authorization-token"])) as { authorizationData: { authorizationToken: string }[] };
  const password = Buffer.from(token.authorizationData[0]!.authorizationToken, "base64").toString().split(":")[1]!;
  const history = spawnSync("docker", ["history", "--no-trunc", image], { env: { ...process.env, DOCKER_HOST: docker.DOCKER_HOST }, encoding: "utf8" }).stdout;
  const written = [
    env.XDG_STATE_HOME!,
    path.join(env.XDG_CACHE_HOME!, "alekseylearn", "build"),
    path.join(env.XDG_CACHE_HOME!, "alekseylearn", "sagemaker"),
  ].flatMap((root) =>
    listTree(root)
      .filter((file) => /\.(json|log)$/.test(file))
      .map((file) => fs.readFileSync(path.join(root, file), "utf8")),
  );
  for (const [where, text] of [
    ["fit's output", fit.stdout + fit.stderr],
    ["fetch's output", fetch.stdout + fetch.stderr],
    ["the image's history", history],
    ["records and build logs", written.join("\n")],
  ] as const) {
    assert.ok(!text.includes(SECRET), `the AWS secret key is not in ${where}`);
    assert.ok(!text.includes(password), `ECR's registry password is not in ${where}`);
  }
  assert.ok(!fs.existsSync(path.join(env.HOME!, ".docker")), "the registry login did not land in the user's Docker config");
});

test("moto + registry + fake SageMaker, no Docker reachable by the CLI: config.builder=oci assembles and pushes the image itself, and the job trains iris end to end", async () => {
  // The base image in the registry (the daemonless builder reads it there); the fake still runs the job with the test dockerd, as SageMaker runs it.
  const base = await pushTestBase(docker.registry, "library/python", "3.11-slim-oci");
  const dir = copyExample("iris");
  const { env } = sagemakerEnv(noDockerEnv());
  const fit = await runCli(["fit", "train.py", `--config.output_path=${OUTPUT}`, "--config.builder=oci", `--config.base_image=${base}`, ...FAST, "--json"], {
    cwd: dir,
    env,
  });
  assert.equal(fit.code, 0, fit.stderr);
  const job = JSON.parse(fit.stdout);
  assert.equal(job.state, "completed");
  const image = (created(job.name).AlgorithmSpecification as { TrainingImage: string }).TrainingImage;
  assert.ok(await registryHas("alekseylearn/iris-train", image.split("@")[1]!), "the job's image, by digest, is in the registry");
  assert.match(fit.stderr, /training on 112 samples/);
  const fetch = await runCli(["fetch", OUTPUT], { cwd: dir, env });
  assert.equal(fetch.code, 0, fetch.stderr);
  assert.ok(fs.existsSync(path.join(dir, "model.joblib")), `model.joblib in the current folder; it has ${listTree(dir).join(", ")}`);
});

test("fake SageMaker: a submission retried after its first try got through finds its own job instead of launching a second", async () => {
  const { createJob } = await import("../../src/backends/sagemaker/index.js");
  const { makeContext } = await import("../../src/context.js");
  const { UserError } = await import("../../src/errors.js");
  const ctx = makeContext({ cwd: os.tmpdir(), env: sagemakerEnv().env });
  fake.script("retried-job", { trainSeconds: 0 });
  const request = {
    TrainingJobName: "retried-job",
    AlgorithmSpecification: { TrainingImage: `${docker.registry}/alekseylearn/x@sha256:${"0".repeat(64)}`, TrainingInputMode: "File" as const },
    RoleArn: `arn:aws:iam::123456789012:role/${ROLE}`,
    OutputDataConfig: { S3OutputPath: OUTPUT },
    ResourceConfig: { InstanceType: "ml.c4.2xlarge" as const, InstanceCount: 1, VolumeSizeInGB: 30 },
    StoppingCondition: { MaxRuntimeInSeconds: 60 },
    Tags: [{ Key: "alekseylearn:submission", Value: "first-try" }],
  };
  const arn = await createJob(request, "first-try", ctx);
  assert.equal(await createJob(request, "first-try", ctx), arn, "the retry finds the job its first try created");
  await assert.rejects(
    createJob(request, "another-submission", ctx),
    (err: Error) => err instanceof UserError && /already has a training job named retried-job/.test(err.message),
  );
  assert.equal(trainingJobs().filter((name) => name === "retried-job").length, 1);
});

test("real dockerd absent: runner=docker says no Docker daemon answers, and what to do", async () => {
  const dir = copyExample("iris");
  const { env } = sagemakerEnv({ DOCKER_HOST: "unix:///nonexistent/docker.sock" });
  const result = await runCli(["fit", "train.py", "--config.runner=docker"], { cwd: dir, env });
  assert.equal(result.code, 1, result.stderr);
  assert.match(result.stderr, /No Docker daemon answers at unix:\/\/\/nonexistent\/docker\.sock/);
  assert.match(result.stderr, /Start Docker/);
});

test("moto + registry + fake SageMaker: a resubmission of unchanged code builds and pushes nothing; settings reach CreateTrainingJob", async () => {
  const dir = copyExample("iris");
  const { env } = sagemakerEnv();
  const args = ["fit", "train.py", `--config.output_path=${OUTPUT}`, ...FAST, "--json", "--detach"];
  const first = await runCli(args, { cwd: dir, env });
  assert.equal(first.code, 0, first.stderr);
  const again = await runCli(
    [
      ...args,
      "--config.train_instance_type=ml.g5.xlarge",
      "--config.use_spot=true",
      "--config.max_runtime=2h",
      "--config.checkpoint_s3_uri=s3://bucket/ckpt",
      "--hyperparameter.C=0.5",
      "--input.train=s3://bucket/data",
      "--config.base_image=python:3.11-slim",
      "--config.tags=team=ml",
    ],
    { cwd: dir, env },
  );
  assert.equal(again.code, 0, again.stderr);
  const job = JSON.parse(again.stdout);
  assert.equal(job.provider.stepsRun, "0", "no build step ran");
  assert.equal(job.provider.layersPushed, "0", "no layer was pushed");
  assert.match(again.stderr, /nothing to push/);
  const request = created(job.name);
  assert.deepEqual(request.ResourceConfig, { InstanceType: "ml.g5.xlarge", InstanceCount: 1, VolumeSizeInGB: 30 });
  assert.deepEqual(request.StoppingCondition, { MaxRuntimeInSeconds: 7200, MaxWaitTimeInSeconds: 7200 });
  assert.equal(request.EnableManagedSpotTraining, true);
  assert.deepEqual(request.CheckpointConfig, { S3Uri: "s3://bucket/ckpt", LocalPath: "/opt/ml/checkpoints" });
  assert.deepEqual(request.HyperParameters, { C: "0.5" });
  assert.deepEqual(
    (request.InputDataConfig as { ChannelName: string }[]).map((channel) => channel.ChannelName),
    ["train"],
  );
  assert.ok((request.Tags as { Key: string; Value: string }[]).some((tag) => tag.Key === "team" && tag.Value === "ml"));
  await runCli(["stop", job.name], { cwd: dir, env });
});

test("fake SageMaker, moto's CloudWatch behind empty pages: a job that fails remotely shows its failure reason and its traceback, and exits 1", async () => {
  const dir = path.join(
    writeTree({ "broken/train.py": "print('loading data')\nraise ValueError('no data in /opt/ml/input')\n", "broken/requirements.txt": "" }),
    "broken",
  );
  // CloudWatch may serve empty pages before the last lines (GetLogEvents' reference): the traceback must still be shown.
  const cloudwatch = await startCloudWatchProxy(moto.url, 3);
  try {
    const { env } = sagemakerEnv({ AWS_ENDPOINT_URL_CLOUDWATCH_LOGS: cloudwatch.url });
    const result = await runCli(["fit", "train.py", `--config.output_path=${OUTPUT}`, ...FAST], { cwd: dir, env });
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, /failed: AlgorithmError: .*ValueError: no data in \/opt\/ml\/input/);
    const details = result.stderr.slice(result.stderr.indexOf("failed: AlgorithmError"));
    assert.match(details, /loading data/, "the last lines of the job's log are shown");
    assert.match(details, /Traceback \(most recent call last\):[\s\S]*ValueError: no data in \/opt\/ml\/input/, "the traceback is in the failure message");
    assert.ok(cloudwatch.emptyServed > 0, "CloudWatch served empty pages");
  } finally {
    await cloudwatch.close();
  }
});

test("fake SageMaker: Ctrl-C detaches and says how to reattach; logs, status and stop work on the job", async () => {
  const dir = path.join(writeTree({ "slow/train.py": "import time\nprint('started', flush=True)\ntime.sleep(120)\n", "slow/requirements.txt": "" }), "slow");
  const { env } = sagemakerEnv();
  const run = startCli(["fit", "train.py", `--config.output_path=${OUTPUT}`, ...FAST], { cwd: dir, env });
  await waitFor(() => run.output().includes("started"), "the job to start", 180_000);
  run.child.kill("SIGINT");
  const result = await run.done;
  assert.equal(result.code, 0, result.stderr);
  const name = /Job (\S+) \(sagemaker backend\)/.exec(result.stderr)![1]!;
  assert.match(result.stdout, new RegExp(`alekseylearn logs ${name} --follow`));
  assert.match(result.stdout, new RegExp(`alekseylearn stop ${name}`));
  const status = await runCli(["status", name, "--json"], { cwd: dir, env });
  assert.equal(JSON.parse(status.stdout).state, "running", "the job goes on after Ctrl-C");
  const logs = await runCli(["logs", name], { cwd: dir, env });
  assert.match(logs.stdout, /started/);
  const stop = await runCli(["stop", name], { cwd: dir, env });
  assert.equal(stop.code, 0, stop.stderr);
  const followed = await runCli(["logs", name, "--follow"], { cwd: dir, env });
  assert.match(followed.stdout + followed.stderr, /Stopped/);
  assert.equal(JSON.parse((await runCli(["status", name, "--json"], { cwd: dir, env })).stdout).state, "stopped");
});

test("fake SageMaker: status, logs and fetch by name for a job this machine has no record of", async () => {
  const dir = copyExample("iris");
  const first = sagemakerEnv();
  const fit = await runCli(["fit", "train.py", `--config.output_path=${OUTPUT}`, ...FAST, "--json"], { cwd: dir, env: first.env });
  assert.equal(fit.code, 0, fit.stderr);
  const name = JSON.parse(fit.stdout).name as string;
  const elsewhere = sagemakerEnv(); // a fresh state folder: another machine
  const status = await runCli(["status", name, "--json"], { cwd: dir, env: elsewhere.env });
  assert.equal(status.code, 0, status.stderr);
  assert.equal(JSON.parse(status.stdout).state, "completed");
  const logs = await runCli(["logs", name], { cwd: dir, env: elsewhere.env });
  assert.match(logs.stdout, /training on 112 samples/);
  const to = fs.mkdtempSync(path.join(os.tmpdir(), "fetched-"));
  const fetch = await runCli(["fetch", name, "--to", to], { cwd: dir, env: sagemakerEnv().env });
  assert.equal(fetch.code, 0, fetch.stderr);
  assert.ok(fs.existsSync(path.join(to, "model.joblib")));
});

test("moto: a missing role names the command that creates it, and nothing is created or pushed", async () => {
  const dir = copyExample("iris");
  const { env } = sagemakerEnv();
  const before = trainingJobs().length;
  const result = await runCli(["fit", "train.py", `--config.output_path=${OUTPUT}`, "--config.role_name=missing_role"], { cwd: dir, env });
  assert.equal(result.code, 1, result.stderr);
  assert.match(result.stderr, /The IAM role missing_role does not exist/);
  assert.match(result.stderr, /alekseylearn init train\.py --backend sagemaker --create-role --config\.output_path=s3:\/\/bucket\/sagemaker\/runs/);
  assert.equal(trainingJobs().length, before);
  assert.equal(fake.requests.filter((r) => r.target === "CreateTrainingJob" && JSON.stringify(r.body).includes("missing_role")).length, 0);
});

test("moto: an output bucket that does not exist is named before anything is created or pushed", async () => {
  const dir = copyExample("iris");
  const { env } = sagemakerEnv();
  const before = trainingJobs().length;
  const result = await runCli(["fit", "train.py", "--config.output_path=s3://no-such-bucket/sagemaker/runs", "--config.repository=alekseylearn/no-bucket"], {
    cwd: dir,
    env,
  });
  assert.equal(result.code, 1, result.stderr);
  assert.match(result.stderr, /The bucket no-such-bucket of config\.output_path does not exist/);
  assert.match(result.stderr, /aws s3 mb s3:\/\/no-such-bucket/);
  assert.equal(trainingJobs().length, before);
  const repositories = JSON.parse(aws(["ecr", "describe-repositories"])) as { repositories: { repositoryName: string }[] };
  assert.ok(!repositories.repositories.some((repository) => repository.repositoryName === "alekseylearn/no-bucket"));
});

test("moto: init --create-role makes a role SageMaker may assume, allowed the output path, alekseylearn images and its logs", async () => {
  const dir = copyExample("iris");
  const { env } = sagemakerEnv();
  const result = await runCli(
    ["init", "train.py", "--backend", "sagemaker", "--create-role", "--config.output_path=s3://models/sagemaker/x", "--config.role_name=made_by_init"],
    { cwd: dir, env },
  );
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /Created the role arn:aws:iam::123456789012:role\/made_by_init/);
  assert.ok(fs.existsSync(path.join(dir, "Dockerfile")), "init writes the Dockerfile; the job runtime is added to every build");
  const role = JSON.parse(aws(["iam", "get-role", "--role-name", "made_by_init"])) as {
    Role: { AssumeRolePolicyDocument: { Statement: { Principal: unknown }[] } };
  };
  assert.deepEqual(role.Role.AssumeRolePolicyDocument.Statement[0]!.Principal, { Service: "sagemaker.amazonaws.com" });
  const policy = JSON.parse(aws(["iam", "get-role-policy", "--role-name", "made_by_init", "--policy-name", "alekseylearn-training"])) as {
    PolicyDocument: unknown;
  };
  const text = JSON.stringify(policy.PolicyDocument);
  assert.match(text, /arn:aws:s3:::models\/sagemaker\/x\/\*/);
  assert.match(text, /repository\/alekseylearn\/\*/);
  assert.match(text, /log-group:\/aws\/sagemaker\/TrainingJobs/);
  // The Dockerfile is the user's now: fit builds with it, and init refuses to replace an edited one.
  fs.appendFileSync(path.join(dir, "Dockerfile"), "# edited\n");
  const again = await runCli(["init", "train.py"], { cwd: dir, env });
  assert.equal(again.code, 2);
  assert.match(again.stderr, /Dockerfile already exists with other content/);
  assert.match(fs.readFileSync(path.join(dir, "Dockerfile"), "utf8"), /# edited/);
});

test("bad input: no AWS credentials names the usual ways to provide them", async () => {
  const dir = copyExample("iris");
  const { env } = sagemakerEnv();
  delete env.AWS_ACCESS_KEY_ID;
  delete env.AWS_SECRET_ACCESS_KEY;
  const result = await runCli(["fit", "train.py", `--config.output_path=${OUTPUT}`], { cwd: dir, env });
  assert.equal(result.code, 1, result.stderr);
  assert.match(result.stderr, /No AWS credentials found/);
  assert.match(result.stderr, /AWS_ACCESS_KEY_ID.*AWS_PROFILE/s);
});

test("bad input: an output path that is not s3:// is refused before anything runs", async () => {
  const dir = copyExample("iris");
  const { env } = sagemakerEnv();
  const result = await runCli(["fit", "train.py", "--backend", "sagemaker", "--config.output_path=./runs"], { cwd: dir, env });
  assert.equal(result.code, 2);
  assert.match(result.stderr, /output_path must be an s3:\/\/ location on SageMaker/);
});

test("registry that refuses pushes: the push failure is shown, no job is created and the new repository is removed", async () => {
  // A registry that answers the login check, has no blobs, and refuses every upload with an
  // answer Docker does not retry (it retries a well-formed refusal for 50 seconds first).
  const server = http.createServer((request, response) => {
    const headers = { "Docker-Distribution-API-Version": "registry/2.0", "Content-Type": "application/json" };
    if (request.url === "/v2/") response.writeHead(200, headers).end("{}");
    else if (request.method === "HEAD" || request.method === "GET") response.writeHead(404, headers).end();
    else response.writeHead(400, { "Content-Type": "text/plain" }).end("push refused by this registry");
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  try {
    const dir = copyExample("iris");
    const { env } = sagemakerEnv({ ALEKSEYLEARN_REGISTRY: `127.0.0.1:${port}` });
    const before = trainingJobs().length;
    const result = await runCli(["fit", "train.py", `--config.output_path=${OUTPUT}`, "--config.repository=alekseylearn/refused"], { cwd: dir, env });
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, /docker push .* failed/);
    assert.equal(trainingJobs().length, before);
    const repositories = JSON.parse(aws(["ecr", "describe-repositories"])) as { repositories: { repositoryName: string }[] };
    assert.ok(!repositories.repositories.some((repository) => repository.repositoryName === "alekseylearn/refused"));
  } finally {
    server.close();
  }
});

test("local container runner: --config.runner=docker runs the very image SageMaker would, with the same files as the local backend", async () => {
  const dir = copyExample("iris");
  const { env } = sagemakerEnv();
  const result = await runCli(["fit", "train.py", "--config.runner=docker", "--hyperparameter.C=0.5", "--json"], { cwd: dir, env });
  assert.equal(result.code, 0, result.stderr);
  const job = JSON.parse(result.stdout);
  assert.equal(job.provider.runner, "docker");
  assert.match(result.stderr, /training on 112 samples with C=0\.5/);
  const to = fs.mkdtempSync(path.join(os.tmpdir(), "fetched-"));
  const fetch = await runCli(["fetch", job.name, "--to", to], { cwd: dir, env });
  assert.equal(fetch.code, 0, fetch.stderr);
  assert.deepEqual(listTree(to), ["metrics.json", "model.joblib"]);
});

test("moto + registry + fake SageMaker: a notebook runs headless in the image; fetch gives its model and the executed notebook in output/", async () => {
  await notebookRoundTrip([`--config.output_path=${OUTPUT}`, ...FAST], sagemakerEnv().env, OUTPUT, "CloudWatch");
});

/** The fetched model's seen.json of an ARGPARSE_SCRIPT job. */
async function seenBy(
  job: string,
  dir: string,
  env: NodeJS.ProcessEnv,
): Promise<{ args: Record<string, unknown>; argv: string[]; env: Record<string, string> }> {
  const to = fs.mkdtempSync(path.join(os.tmpdir(), "fetched-"));
  const fetched = await runCli(["fetch", job, "--to", to], { cwd: dir, env });
  assert.equal(fetched.code, 0, fetched.stderr);
  return JSON.parse(fs.readFileSync(path.join(to, "seen.json"), "utf8"));
}

test("moto + registry + fake SageMaker, and the local container runner: a SageMaker-style argparse script gets its hyperparameters as arguments in the image", async () => {
  const dir = path.join(writeTree({ "sklearn/train.py": ARGPARSE_SCRIPT, "sklearn/requirements.txt": "" }), "sklearn");
  const { env } = sagemakerEnv();
  for (const where of [[`--config.output_path=${OUTPUT}`, ...FAST], ["--config.runner=docker"]]) {
    const result = await runCli(["fit", "train.py", ...ARGPARSE_HYPERPARAMETERS, ...where, "--json"], { cwd: dir, env });
    assert.equal(result.code, 0, result.stderr);
    const job = JSON.parse(result.stdout);
    const seen = await seenBy(job.name, dir, env);
    assert.deepEqual(seen.args, { ...ARGPARSE_EXPECTED, model_dir: "/opt/ml/model", train: null }, `argparse got every hyperparameter (${where[0]})`);
    assert.deepEqual(seen.argv, ARGPARSE_ARGV);
    assert.equal(seen.env["SM_HP_N-ESTIMATORS"], "7");
    assert.equal(seen.env.SM_MODULE_DIR, "/opt/ml/code", "the code is where SageMaker's framework containers keep it");
    if (where[0]!.startsWith("--config.output_path")) {
      const request = created(job.name);
      assert.deepEqual(
        request.HyperParameters,
        { "n-estimators": "7", min_samples_leaf: "3", e: "5", "learning-rate": "0.10" },
        "SageMaker is given the text typed",
      );
      assert.equal(request.Environment, undefined, "no SM_* variable goes into CreateTrainingJob.Environment");
      assert.equal(JSON.parse(seen.env.SM_RESOURCE_CONFIG!).current_instance_type, "ml.c4.2xlarge");
    }
  }
});

/** botocore's own validator of a request, with this machine's SageMaker model: its complaints, empty when it accepts. */
function botocoreProblems(operation: string, request: unknown): string {
  const program = [
    "import json, sys, botocore.session",
    "from botocore.validate import ParamValidator",
    "model = botocore.session.get_session().get_service_model('sagemaker')",
    "report = ParamValidator().validate(json.load(sys.stdin), model.operation_model(sys.argv[1]).input_shape)",
    "print(report.generate_report())",
  ].join("\n");
  const result = spawnSync("python3", ["-c", program, operation], { input: JSON.stringify(request), encoding: "utf8" });
  assert.equal(result.status, 0, result.stderr);
  return result.stdout.trim();
}

test("moto: fit --dry-run --json prints a CreateTrainingJob request that botocore's validator and every max and pattern of SageMaker's model accept, and creates nothing", async () => {
  const canary = `CANARY${randomBytes(12).toString("hex")}`;
  const dir = path.join(
    writeTree({
      "sklearn/train.py": ARGPARSE_SCRIPT,
      "sklearn/requirements.txt": "scikit-learn\n",
      "sklearn/.env": `WANDB_API_KEY=${canary}\n`,
      "sklearn/.ssh/id_ed25519": "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n",
    }),
    "sklearn",
  );
  const { env, stateDir } = sagemakerEnv({ DOCKER_HOST: "unix:///nonexistent/docker.sock" });
  const repositories = (): string[] =>
    (JSON.parse(aws(["ecr", "describe-repositories"])) as { repositories: { repositoryName: string }[] }).repositories.map((r) => r.repositoryName);
  const roles = (): string[] => (JSON.parse(aws(["iam", "list-roles"])) as { Roles: { RoleName: string }[] }).Roles.map((r) => r.RoleName);
  const objects = (): string => aws(["s3api", "list-objects-v2", "--bucket", "bucket"]);
  const before = { jobs: trainingJobs().length, repositories: repositories(), roles: roles(), objects: objects(), requests: fake.requests.length };
  const args = [
    "fit",
    "train.py",
    `--config.output_path=${OUTPUT}`,
    ...ARGPARSE_HYPERPARAMETERS,
    "--input.train=s3://bucket/data/train.csv",
    `--config.environment=WANDB_MODE=offline,WANDB_API_KEY=${canary}`,
    "--config.repository=alekseylearn/dry-run",
    "--dry-run",
    "--json",
  ];
  const result = await runCli(args, { cwd: dir, env });
  assert.equal(result.code, 0, result.stderr);
  const plan = JSON.parse(result.stdout);
  assert.equal(plan.backend, "sagemaker");
  assert.deepEqual(
    plan.files.filter((file: string) => !file.startsWith(".alekseylearn/runtime/alekseylearn_runtime/")),
    [".alekseylearn/runtime/alekseylearn_entrypoint.py", "Dockerfile", "requirements.txt", "train.py"],
  );
  assert.equal(plan.image.platform, "linux/amd64");
  assert.equal(plan.image.base, "python:3.11-slim");
  assert.deepEqual(
    plan.requests.map((r: { api: string; operation: string }) => `${r.api} ${r.operation}`),
    ["ecr CreateRepository", "sagemaker CreateTrainingJob"],
  );
  const request = plan.requests[1].request;
  assert.equal(request.TrainingJobName, plan.job);
  assert.match(request.AlgorithmSpecification.TrainingImage, /^[^/]+\/alekseylearn\/dry-run@sha256:0{64}$/, "a digest placeholder of the right form");
  assert.equal(request.RoleArn, "arn:aws:iam::123456789012:role/alekseylearn_sagemaker_role", "the role IAM knows, in moto's account");
  assert.deepEqual(request.HyperParameters, { "n-estimators": "7", min_samples_leaf: "3", e: "5", "learning-rate": "0.10" });
  assert.deepEqual(request.Environment, { WANDB_MODE: "offline", WANDB_API_KEY: "***" }, "a secret-named value is not printed");
  assert.ok(!(result.stdout + result.stderr).includes(canary), "no canary in the dry run's output");
  assert.match(result.stderr, /Not shipping \.env:/);
  assert.match(plan.checks.done.join("\n"), /sts:GetCallerIdentity[\s\S]*iam:GetRole[\s\S]*s3:HeadBucket[\s\S]*ecr:DescribeRepositories/);
  assert.equal(botocoreProblems("CreateTrainingJob", request), "", "botocore.validate.ParamValidator accepts it");
  assert.deepEqual(validate(sagemakerModel(), "CreateTrainingJobRequest", request), [], "every max, min and pattern of the machine's SageMaker model");
  assert.deepEqual(
    { jobs: trainingJobs().length, repositories: repositories(), roles: roles(), objects: objects(), requests: fake.requests.length },
    before,
    "no job, repository, role or object was created, and SageMaker was not asked",
  );
  assert.ok(!fs.existsSync(path.join(stateDir, "jobs")) || fs.readdirSync(path.join(stateDir, "jobs")).length === 0, "no job record");

  // Without AWS credentials the plan is still made, with the account as a placeholder, and the skipped checks are named.
  const bare = cliEnv({
    HOME: fs.mkdtempSync(path.join(os.tmpdir(), "no-aws-")),
    AWS_ACCESS_KEY_ID: "",
    AWS_SECRET_ACCESS_KEY: "",
    AWS_PROFILE: "",
    AWS_REGION: "eu-west-1",
  });
  const offline = await runCli(args, { cwd: dir, env: bare.env });
  assert.equal(offline.code, 0, offline.stderr);
  const guess = JSON.parse(offline.stdout);
  assert.equal(guess.requests.at(-1).request.RoleArn, "arn:aws:iam::000000000000:role/alekseylearn_sagemaker_role");
  assert.match(
    guess.requests.at(-1).request.AlgorithmSpecification.TrainingImage,
    /^000000000000\.dkr\.ecr\.eu-west-1\.amazonaws\.com\/alekseylearn\/dry-run@sha256:0{64}$/,
  );
  assert.match(guess.checks.skipped.join("\n"), /no AWS credentials/);
  assert.match(guess.placeholders.join("\n"), /AWS account 000000000000/);
  assert.equal(botocoreProblems("CreateTrainingJob", guess.requests.at(-1).request), "");
});

test("SageMaker's limits are checked before anything is built: too many hyperparameters, a bad environment name, an over-long value", async () => {
  const dir = copyExample("iris");
  const { env } = sagemakerEnv();
  const before = trainingJobs().length;
  const many = Array.from({ length: 101 }, (_, i) => `--hyperparameter.h${i}=1`);
  for (const [extra, said] of [
    [many, /HyperParameters: at most 100 entries/],
    [["--config.environment=MY-VAR=1"], /Environment\{key "MY-VAR"\}: "MY-VAR" does not match/],
    [[`--hyperparameter.note=${"x".repeat(2501)}`], /HyperParameters\.note: at most 2500 characters/],
  ] as const) {
    for (const mode of [[], ["--dry-run"]]) {
      const result = await runCli(["fit", "train.py", `--config.output_path=${OUTPUT}`, ...extra, ...mode], { cwd: dir, env });
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, said);
      assert.doesNotMatch(result.stderr, /Building|Creating/);
    }
  }
  assert.equal(trainingJobs().length, before);
});

test("local container runner: files the job leaves in its working folder (/opt/ml/code in the image) are kept in output.tar.gz under working/", async () => {
  const dir = path.join(
    writeTree({
      "saver/train.py":
        "import os, pickle\npickle.dump({'w': 1}, open('model.pkl', 'wb'))\nopen(os.path.join(os.environ['SM_MODEL_DIR'], 'm.txt'), 'w').write('model')\n",
      "saver/requirements.txt": "",
    }),
    "saver",
  );
  const { env } = sagemakerEnv();
  const result = await runCli(["fit", "train.py", "--config.runner=docker", "--json"], { cwd: dir, env });
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, /the job wrote 1 file\(s\) into its working folder \(model\.pkl\)/);
  const to = fs.mkdtempSync(path.join(os.tmpdir(), "fetched-"));
  const fetched = await runCli(["fetch", JSON.parse(result.stdout).name, "--to", to], { cwd: dir, env });
  assert.equal(fetched.code, 0, fetched.stderr);
  assert.deepEqual(listTree(to), ["m.txt", "output/working/model.pkl"]);
  assert.ok(!fs.existsSync(path.join(dir, "model.pkl")), "the image's copy of the code, not the user's folder, was written");
});

/** True when the file holds `needle` anywhere (read in chunks that overlap by the needle's length, so an image of any size fits in memory). */
function fileHolds(file: string, needle: string): boolean {
  const fd = fs.openSync(file, "r");
  try {
    const chunk = Buffer.alloc(8 * 1024 * 1024);
    let carry = "";
    for (let read = fs.readSync(fd, chunk); read > 0; read = fs.readSync(fd, chunk)) {
      const text = carry + chunk.subarray(0, read).toString("latin1");
      if (text.includes(needle)) return true;
      carry = text.slice(-needle.length);
    }
    return false;
  } finally {
    fs.closeSync(fd);
  }
}

test("moto + registry + fake SageMaker: secrets stay home: no canary in any image layer, record, status --json, jobs --json or output; the job still gets its environment", async () => {
  const fileSecret = `CANARY${randomBytes(12).toString("hex")}`;
  const envSecret = `CANARY${randomBytes(12).toString("hex")}`;
  const pem = `-----BEGIN EC PRIVATE KEY-----\n${fileSecret}\n-----END EC PRIVATE KEY-----\n`;
  const dir = copyExample("iris");
  const secrets: Record<string, string> = {
    ".env": `WANDB_API_KEY=${fileSecret}\n`,
    ".aws/credentials": `[default]\naws_secret_access_key = ${fileSecret}\n`,
    ".ssh/id_rsa": pem,
    ".netrc": `machine x login me password ${fileSecret}\n`,
    "kaggle.json": `{"username": "me", "key": "${fileSecret}"}\n`,
    "service-account.json": JSON.stringify({ type: "service_account", private_key: fileSecret }),
    "tls.key": pem,
  };
  for (const [file, text] of Object.entries(secrets)) {
    fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    fs.writeFileSync(path.join(dir, file), text);
  }
  const { env, stateDir } = sagemakerEnv();
  const fit = await runCli(
    ["fit", "train.py", `--config.output_path=${OUTPUT}`, `--config.environment=WANDB_API_KEY=${envSecret},MAX_TOKENS=4096`, ...FAST, "--json"],
    { cwd: dir, env },
  );
  assert.equal(fit.code, 0, fit.stderr);
  const job = JSON.parse(fit.stdout);
  for (const named of [".env", ".aws/", ".ssh/", ".netrc", "kaggle.json", "service-account.json", "tls.key"])
    assert.equal(fit.stderr.split(`Not shipping ${named}:`).length - 1, 1, `${named} is named once`);
  const environment = created(job.name).Environment as Record<string, string>;
  assert.equal(environment.WANDB_API_KEY, envSecret, "the job itself gets its environment, unredacted");
  assert.equal(environment.MAX_TOKENS, "4096");

  const image = (created(job.name).AlgorithmSpecification as { TrainingImage: string }).TrainingImage;
  const saved = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "image-")), "image.tar");
  const save = spawnSync("docker", ["save", "-o", saved, image], { env: { ...process.env, DOCKER_HOST: docker.DOCKER_HOST }, encoding: "utf8" });
  assert.equal(save.status, 0, save.stderr);
  assert.ok(fileHolds(saved, "training on"), "the scan reads the image's layers (the example's code is there)");
  assert.ok(!fileHolds(saved, fileSecret), "no secret file reached any layer of the image");
  fs.rmSync(path.dirname(saved), { recursive: true, force: true });

  const status = await runCli(["status", job.name, "--json"], { cwd: dir, env });
  const jobs = await runCli(["jobs", "--json"], { cwd: dir, env });
  assert.match(status.stdout, /"MAX_TOKENS=4096"/, "a setting that names no secret is shown as it is");
  const records = listTree(stateDir).map((file) => fs.readFileSync(path.join(stateDir, file), "utf8"));
  for (const [where, text] of [
    ["fit's output", fit.stdout + fit.stderr],
    ["status --json and jobs --json", status.stdout + jobs.stdout],
    ["the records and logs", records.join("\n")],
  ] as const) {
    assert.ok(!text.includes(envSecret) && !text.includes(fileSecret), `no canary in ${where}`);
  }
  assert.equal(fs.statSync(stateDir).mode & 0o777, 0o700);
  assert.ok(listTree(path.join(stateDir, "jobs")).every((file) => (fs.statSync(path.join(stateDir, "jobs", file)).mode & 0o777) === 0o600));
});

test("moto + registry + fake SageMaker, and the local container runner: a Vertex AI-style script, a Kaggle-style notebook and an SDK v3 script run unchanged in the image", async () => {
  const { env } = sagemakerEnv();
  const root = styleProjects();
  aws(["s3", "cp", path.join(root, "kaggle/data/train.csv"), "s3://bucket/styles/data/train.csv"]);
  const model = (dir: string, args: string[]): Promise<Record<string, string>> => fitAndFetch(dir, args, env);
  for (const [where, data, chief] of [
    [[`--config.output_path=${OUTPUT}`, ...FAST], "s3://bucket/styles/data/", "algo-1:2222"],
    [["--config.runner=docker"], path.join(root, "kaggle/data"), "127.0.0.1:2222"],
  ] as const) {
    const vertex = JSON.parse((await model(path.join(root, "vertex"), ["task.py", "--hyperparameter.lr=0.05", ...where]))["model.json"]!);
    assert.deepEqual(vertex, { lr: 0.05, task: { type: "workerpool0", index: 0 }, chief: [chief], gs: true }, `${where[0]}: AIP_MODEL_DIR through /gcs`);
    const kaggle = await model(path.join(root, "kaggle"), ["kernel.ipynb", `--input.data=${data}`, ...where]);
    assert.deepEqual(unpickle(kaggle["model.pkl"]!), { rows: 3, inputs: ["data"] }, `${where[0]}: /kaggle/working is the model`);
    const v3 = await model(path.join(root, "v3"), ["train.py", ...V3_HYPERPARAMETERS, "--config.hyperparameter_format=json", ...where]);
    assert.equal(JSON.parse(v3["results.json"]!).status, "success", `${where[0]}: SDK v3's argument form`);
  }
});

test("moto + registry + fake SageMaker running two containers: the two-rank torch.distributed script meets its peer across algo-1 and algo-2; their models make one model.tar.gz", async () => {
  const torchIndex = cpuTorchIndex();
  assert.ok(torchIndex, "the CPU torch wheel is in /opt/wheels");
  const project = writeTree({ "train.py": TWO_RANK_SCRIPT, "requirements.txt": TWO_RANK_REQUIREMENTS });
  const { env } = sagemakerEnv({ PIP_EXTRA_INDEX_URL: torchIndex });
  const fit = await runCli(["fit", "train.py", `--config.output_path=${OUTPUT}`, "--config.instance_count=2", ...FAST, "--json"], { cwd: project, env });
  assert.equal(fit.code, 0, fit.stderr);
  const job = JSON.parse(fit.stdout);
  assert.equal((created(job.name).ResourceConfig as { InstanceCount: number }).InstanceCount, 2);
  assert.match(fit.stderr, /^\[algo-1\] rank 0 of 2 on algo-1: sum 3\.0$/m, "each instance's CloudWatch stream, prefixed by its host");
  assert.match(fit.stderr, /^\[algo-2\] rank 1 of 2 on algo-2: sum 3\.0$/m);
  const to = fs.mkdtempSync(path.join(os.tmpdir(), "fetched-"));
  const fetch = await runCli(["fetch", job.name, "--to", to], { cwd: project, env });
  assert.equal(fetch.code, 0, fetch.stderr);
  // SageMaker aggregates every host's /opt/ml/model into the one model.tar.gz.
  assert.deepEqual(listTree(to), ["model.json", "rank-0.json", "rank-1.json"]);
  const saved = JSON.parse(fs.readFileSync(path.join(to, "model.json"), "utf8"));
  assert.equal(saved.sum, 3);
  assert.deepEqual(
    [saved.env.MASTER_ADDR, saved.env.MASTER_PORT, saved.env.SM_MASTER_ADDR, saved.env.SM_MASTER_PORT],
    ["algo-1", "7777", "algo-1", "7777"],
    "SageMaker's hosts meet at algo-1 on SDK v3's port",
  );
  const other = JSON.parse(fs.readFileSync(path.join(to, "rank-1.json"), "utf8"));
  assert.deepEqual([other.hostname, other.env.SM_CURRENT_HOST, other.env.RANK], ["algo-2", "algo-2", "1"]);
});
