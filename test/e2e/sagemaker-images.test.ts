/**
 * Images and roles that work on the real SageMaker, end to end through the CLI
 * and the library. What stands in for AWS: moto (STS, IAM, ECR's API, S3), the
 * real docker-registry and dockerd, and the fake SageMaker
 * (test/servers/sagemaker-fake.ts), which reads each pushed image's manifest
 * and config back from the registry, assumes the job's role only once IAM has
 * spread it, and acts with the role's own policies, as SageMaker does.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { awsCli, testAwsKeys } from "../helpers/aws.js";
import { copyExample, cliEnv, runCli } from "../helpers/cli.js";
import { dockerTestEnv } from "../helpers/docker.js";
import { startMoto, type Moto } from "../helpers/servers.js";
import { writeTree } from "../helpers/tree.js";
import { startFakeSageMaker } from "../servers/sagemaker-fake.js";
import { fileTimeLimit } from "../helpers/limit.js";

fileTimeLimit(20, import.meta.url);

const OUTPUT = "s3://bucket/sagemaker/runs";
const ROLE = "alekseylearn_sagemaker_role";
const docker = dockerTestEnv();
let moto: Moto;
let fake: Awaited<ReturnType<typeof startFakeSageMaker>>;

const keys = (): Record<string, string> => testAwsKeys();
const aws = (args: string[]): string => awsCli(moto.url, args, keys());

function sagemakerEnv(extra: Record<string, string> = {}): ReturnType<typeof cliEnv> {
  return cliEnv({
    ...keys(),
    HOME: fs.mkdtempSync(path.join(os.tmpdir(), "aws-home-")),
    AWS_ENDPOINT_URL: moto.url,
    AWS_ENDPOINT_URL_SAGEMAKER: fake.url,
    ALEKSEYLEARN_REGISTRY: docker.registry,
    DOCKER_HOST: docker.DOCKER_HOST,
    PIP_INDEX_URL: docker.pipIndex,
    ...extra,
  });
}

const TRUST = JSON.stringify({
  Version: "2012-10-17",
  Statement: [{ Effect: "Allow", Principal: { Service: "sagemaker.amazonaws.com" }, Action: "sts:AssumeRole" }],
});

/** A role SageMaker may assume, allowed exactly `statements`. */
function makeRole(name: string, statements: object[]): void {
  aws(["iam", "create-role", "--role-name", name, "--assume-role-policy-document", TRUST]);
  aws([
    "iam",
    "put-role-policy",
    "--role-name",
    name,
    "--policy-name",
    "own",
    "--policy-document",
    JSON.stringify({ Version: "2012-10-17", Statement: statements }),
  ]);
}

const created = (): string[] => fake.requests.filter((r) => r.target === "CreateTrainingJob").map((r) => String(r.body.TrainingJobName));

before(async () => {
  moto = await startMoto();
  fake = await startFakeSageMaker({ moto: moto.url, dockerEnv: { ...process.env, DOCKER_HOST: docker.DOCKER_HOST } });
  aws(["s3", "mb", "s3://bucket"]);
  aws(["s3", "mb", "s3://other-bucket"]);
  makeRole(ROLE, [
    { Effect: "Allow", Action: ["s3:GetObject", "s3:PutObject"], Resource: "arn:aws:s3:::bucket/*" },
    { Effect: "Allow", Action: "s3:ListBucket", Resource: "arn:aws:s3:::bucket" },
    { Effect: "Allow", Action: ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"], Resource: "arn:aws:ecr:us-east-1:123456789012:repository/*" },
    { Effect: "Allow", Action: "ecr:GetAuthorizationToken", Resource: "*" },
  ]);
});

after(async () => {
  await fake?.stop();
  await moto?.stop();
});

test("moto + fake SageMaker: a job whose role lacks its output path is stopped before the build, naming the command that fixes it", async () => {
  makeRole("narrow_role", [
    { Effect: "Allow", Action: ["s3:GetObject", "s3:PutObject"], Resource: "arn:aws:s3:::bucket/elsewhere/*" },
    { Effect: "Allow", Action: ["ecr:*"], Resource: "*" },
  ]);
  const dir = copyExample("iris");
  const { env } = sagemakerEnv();
  const before = created().length;
  const result = await runCli(["fit", "train.py", `--config.output_path=${OUTPUT}`, "--config.role_name=narrow_role"], { cwd: dir, env });
  assert.equal(result.code, 1, result.stderr);
  assert.match(result.stderr, /The role arn:aws:iam::123456789012:role\/narrow_role may not do what this job needs/);
  assert.match(
    result.stderr,
    /s3:PutObject on arn:aws:s3:::bucket\/sagemaker\/runs\/train-[a-z0-9-]+\/output\/model\.tar\.gz \(writing the model to s3:\/\/bucket\/sagemaker\/runs\)/,
  );
  assert.match(
    result.stderr,
    /alekseylearn init train\.py --backend sagemaker --create-role --config\.output_path=s3:\/\/bucket\/sagemaker\/runs --config\.role_name=narrow_role/,
  );
  assert.doesNotMatch(result.stderr, /Building the image/, "nothing was built");
  assert.equal(created().length, before, "no job was created");
});

test("moto: two projects' init --create-role (one with a single-object input and config.repository) leave one role that covers both", async () => {
  const a = copyExample("iris");
  const b = path.join(writeTree({ "forecast/train.py": "print('b')\n", "forecast/requirements.txt": "" }), "forecast");
  const { env } = sagemakerEnv();
  const projectA = ["--backend", "sagemaker", "--create-role", "--config.role_name=shared_role", "--config.output_path=s3://bucket/a/runs"];
  const projectB = [
    "--backend",
    "sagemaker",
    "--create-role",
    "--config.role_name=shared_role",
    "--config.output_path=s3://other-bucket/b/runs",
    "--input.train=s3://bucket/data/train.csv",
    "--config.repository=team/forecast",
    "--config.checkpoint_s3_uri=s3://other-bucket/b/ckpt",
  ];
  const first = await runCli(["init", "train.py", ...projectA], { cwd: a, env });
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /Created the role/);
  const second = await runCli(["init", "train.py", ...projectB], { cwd: b, env });
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stdout, /Updated the policy of the role/);

  // The role's own policies, evaluated for each project's job: both are allowed everything they need.
  const { makeContext } = await import("../../src/context.js");
  const { buildSpecFor } = await import("../../src/jobs/spec.js");
  const { sagemakerBackend } = await import("../../src/backends/sagemaker/index.js");
  const { checkRolePermissions } = await import("../../src/backends/sagemaker/role.js");
  const specA = buildSpecFor(sagemakerBackend, { artifact: "train.py", config: { role_name: "shared_role", output_path: "s3://bucket/a/runs" } }, a);
  const specB = buildSpecFor(
    sagemakerBackend,
    {
      artifact: "train.py",
      inputs: { train: "s3://bucket/data/train.csv" },
      config: { role_name: "shared_role", output_path: "s3://other-bucket/b/runs", repository: "team/forecast", checkpoint_s3_uri: "s3://other-bucket/b/ckpt" },
    },
    b,
  );
  for (const [spec, cwd] of [
    [specA, a],
    [specB, b],
  ] as const) {
    const check = await checkRolePermissions(spec, makeContext({ cwd, env }), "job-1");
    assert.equal(check.verdict, "ok", JSON.stringify(check));
  }
  const policy = JSON.stringify(
    JSON.parse(aws(["iam", "get-role-policy", "--role-name", "shared_role", "--policy-name", "alekseylearn-training"])).PolicyDocument,
  );
  for (const grant of [
    "arn:aws:s3:::bucket/a/runs/*",
    "arn:aws:s3:::bucket/data/train.csv*",
    "arn:aws:s3:::other-bucket/b/runs/*",
    "arn:aws:s3:::other-bucket/b/ckpt/*",
    "repository/team/forecast",
    "repository/alekseylearn/*",
    "cloudwatch:PutMetricData",
  ]) {
    assert.ok(policy.includes(grant), `${grant} in ${policy}`);
  }
  // Running project A's init again changes nothing: the grants are merged, not duplicated.
  assert.equal((await runCli(["init", "train.py", ...projectA], { cwd: a, env })).code, 0);
  assert.equal(
    JSON.stringify(JSON.parse(aws(["iam", "get-role-policy", "--role-name", "shared_role", "--policy-name", "alekseylearn-training"])).PolicyDocument),
    policy,
  );
});

test("real dockerd behind `docker context create` (no DOCKER_HOST): the build and the push reach the context's daemon", async () => {
  const dir = copyExample("iris");
  const { env } = sagemakerEnv();
  delete env.DOCKER_HOST;
  const config = path.join(env.HOME!, ".docker");
  const dockerCli = (args: string[]): void => {
    const result = spawnSync("docker", args, { env: { PATH: process.env.PATH, HOME: env.HOME, DOCKER_CONFIG: config }, encoding: "utf8" });
    assert.equal(result.status, 0, result.stderr);
  };
  dockerCli(["context", "create", "alekseylearn-test", "--docker", `host=${docker.DOCKER_HOST}`]);
  dockerCli(["context", "use", "alekseylearn-test"]);
  assert.ok(!fs.existsSync("/var/run/docker.sock"), "no daemon answers at the default socket: only the context leads to one");
  const fit = await runCli(["fit", "train.py", `--config.output_path=${OUTPUT}`, "--config.poll_interval=0.2", "--json"], { cwd: dir, env });
  assert.equal(fit.code, 0, fit.stderr);
  const job = JSON.parse(fit.stdout);
  assert.equal(job.state, "completed");
  assert.match(job.provider.image, /\/alekseylearn\/iris-train@sha256:[0-9a-f]{64}$/);
  assert.match(fit.stderr, /Pushing .*\/alekseylearn\/iris-train:img-[0-9a-f]{16}…/, "pushed under a tag of its own, not latest");
  // Off a terminal, plain lines: each step of the build, each layer of the push, and what the push sent.
  const steps = [...fit.stderr.matchAll(/^ {2}step (\d+)\/(\d+): (\S+)/gm)].filter((step) => /^[A-Z]+$/.test(step[3]!));
  assert.ok(steps.length > 3 && steps[0]![1] === "1" && steps[0]![3] === "FROM", fit.stderr);
  assert.deepEqual(
    steps.map((step) => Number(step[1])),
    Array.from({ length: Number(steps[0]![2]) }, (_, i) => i + 1),
    "every step named once, in order",
  );
  const layers = [...fit.stderr.matchAll(/^ {2}layer (\d+)\/(\d+): [0-9a-f]{12} (pushed|already there)$/gm)];
  const summary =
    /Pushed \S+@sha256:[0-9a-f]{64}: (\d+) of (\d+) layer\(s\) sent \(([\d.]+ (?:bytes|KiB|MiB|GiB)) of ([\d.]+ (?:KiB|MiB|GiB))\), (\d+) already there\./.exec(
      fit.stderr,
    );
  assert.ok(summary, fit.stderr);
  assert.equal(layers.length, Number(summary[2]), "a line for every layer");
  assert.equal(layers.filter((layer) => layer[3] === "pushed").length, Number(summary[1]));
  assert.equal(Number(summary[1]) + Number(summary[5]), Number(summary[2]));
  assert.ok(summary[1] === "0" || !summary[3]!.startsWith("0 "), "the layers sent have their sizes");
});

test("fake SageMaker: a job started right after its role was created survives SageMaker's 'could not assume role' while IAM spreads it", async () => {
  const dir = copyExample("iris"); // built and pushed by the test above: the build is Docker's cache, so the job is created at once
  const { env } = sagemakerEnv();
  const made = await runCli(
    ["init", "train.py", "--backend", "sagemaker", "--create-role", "--config.role_name=fresh_role", `--config.output_path=${OUTPUT}`],
    { cwd: dir, env },
  );
  assert.equal(made.code, 0, made.stderr);
  fake.setRoleSettleSeconds(15);
  try {
    const refusedBefore = fake.refused.length;
    const fit = await runCli(["fit", "train.py", `--config.output_path=${OUTPUT}`, "--config.role_name=fresh_role", "--config.poll_interval=0.2", "--json"], {
      cwd: dir,
      env,
    });
    assert.equal(fit.code, 0, fit.stderr);
    assert.equal(JSON.parse(fit.stdout).state, "completed");
    const refusals = fake.refused.slice(refusedBefore).filter((r) => r.target === "CreateTrainingJob");
    assert.ok(refusals.length >= 1 && refusals.every((r) => /^Could not assume role .*fresh_role/.test(r.message)), JSON.stringify(refusals));
    assert.match(fit.stderr, /cannot assume the role yet/);
  } finally {
    fake.setRoleSettleSeconds(0);
  }
});

/** Load an image made by hand for linux/arm64 (one small layer) into the test dockerd: no emulation needed to make one. */
function loadArm64Image(tag: string): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "arm64-"));
  const layerDir = path.join(dir, "layer");
  fs.mkdirSync(layerDir);
  fs.writeFileSync(path.join(layerDir, "hello.txt"), "built for arm64\n");
  spawnSync("tar", ["-C", layerDir, "-cf", path.join(dir, "layer.tar"), "hello.txt"]);
  const layer = fs.readFileSync(path.join(dir, "layer.tar"));
  const config = Buffer.from(
    JSON.stringify({
      architecture: "arm64",
      variant: "v8",
      os: "linux",
      config: { Cmd: ["python3"] },
      rootfs: { type: "layers", diff_ids: [`sha256:${createHash("sha256").update(layer).digest("hex")}`] },
    }),
  );
  const id = createHash("sha256").update(config).digest("hex");
  const out = path.join(dir, "out");
  fs.mkdirSync(path.join(out, "l"), { recursive: true });
  fs.writeFileSync(path.join(out, `${id}.json`), config);
  fs.writeFileSync(path.join(out, "l", "layer.tar"), layer);
  fs.writeFileSync(path.join(out, "manifest.json"), JSON.stringify([{ Config: `${id}.json`, RepoTags: [tag], Layers: ["l/layer.tar"] }]));
  spawnSync("tar", ["-C", out, "-cf", path.join(dir, "image.tar"), "."]);
  const loaded = spawnSync("docker", ["load", "-i", path.join(dir, "image.tar")], {
    env: { ...process.env, DOCKER_HOST: docker.DOCKER_HOST },
    encoding: "utf8",
  });
  assert.equal(loaded.status, 0, loaded.stderr);
  fs.rmSync(dir, { recursive: true, force: true });
}

test("real dockerd + registry: an arm64 image (a user's Dockerfile on an arm64 base) is refused after the push is read back, before any job is created", async () => {
  loadArm64Image("alekseylearn-test/arm64-base:1");
  const dir = path.join(
    writeTree({
      "armproject/train.py": "print('never runs')\n",
      "armproject/Dockerfile": 'FROM alekseylearn-test/arm64-base:1\nCOPY . /opt/program\nENTRYPOINT ["python3", "/opt/program/train.py"]\n',
    }),
    "armproject",
  );
  const { env } = sagemakerEnv();
  const before = created().length;
  const result = await runCli(["fit", "train.py", `--config.output_path=${OUTPUT}`], { cwd: dir, env });
  assert.equal(result.code, 1, result.stderr);
  assert.match(
    result.stderr,
    /SageMaker cannot run the image pushed as .*alekseylearn\/armproject-train@sha256:[0-9a-f]{64}: it is built for linux\/arm64; SageMaker training runs linux\/amd64 only/,
  );
  assert.match(result.stderr, /for linux\/amd64/, "the build asked for SageMaker's platform");
  assert.equal(created().length, before, "no job was created");
});

/** Push a blob to the test registry with its HTTP API (monolithic upload); its digest. */
async function pushBlob(repository: string, content: Buffer): Promise<{ digest: string; size: number }> {
  const digest = `sha256:${createHash("sha256").update(content).digest("hex")}`;
  const start = await fetch(`http://${docker.registry}/v2/${repository}/blobs/uploads/`, { method: "POST" });
  assert.equal(start.status, 202);
  const location = new URL(start.headers.get("location")!, `http://${docker.registry}`);
  location.searchParams.set("digest", digest);
  const put = await fetch(location, { method: "PUT", headers: { "Content-Type": "application/octet-stream" }, body: content });
  assert.equal(put.status, 201, await put.text());
  return { digest, size: content.length };
}

/** Push a manifest of `mediaType` to the test registry; its digest and size. */
async function pushManifest(repository: string, mediaType: string, manifest: object): Promise<{ digest: string; size: number }> {
  const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType, ...manifest }));
  const response = await fetch(`http://${docker.registry}/v2/${repository}/manifests/by-hand`, { method: "PUT", headers: { "Content-Type": mediaType }, body });
  assert.equal(response.status, 201, await response.text());
  return { digest: `sha256:${createHash("sha256").update(body).digest("hex")}`, size: body.length };
}

test("registry (HTTP API) + fake SageMaker: an OCI manifest, an OCI index and an arm64 config are refused by fit's read-back and failed by the fake as SageMaker fails them", async () => {
  const { readPushedImage } = await import("../../src/package/registry.js");
  const repository = "alekseylearn/by-hand";
  const layer = await pushBlob(repository, Buffer.from("not really a layer"));
  const amd64 = await pushBlob(repository, Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] } })));
  const arm64 = await pushBlob(repository, Buffer.from(JSON.stringify({ architecture: "arm64", os: "linux", rootfs: { type: "layers", diff_ids: [] } })));
  const oci = await pushManifest(repository, "application/vnd.oci.image.manifest.v1+json", {
    config: { mediaType: "application/vnd.oci.image.config.v1+json", ...amd64 },
    layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", ...layer }],
  });
  const index = await pushManifest(repository, "application/vnd.oci.image.index.v1+json", {
    manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", ...oci, platform: { os: "linux", architecture: "amd64" } }],
  });
  const armV2 = await pushManifest(repository, "application/vnd.docker.distribution.manifest.v2+json", {
    config: { mediaType: "application/vnd.docker.container.image.v1+json", ...arm64 },
    layers: [{ mediaType: "application/vnd.docker.image.rootfs.diff.tar", ...layer }],
  });

  assert.match(
    (await readPushedImage(docker.registry, repository, oci.digest, "")).problems.join(),
    /its manifest is application\/vnd\.oci\.image\.manifest\.v1\+json; SageMaker pulls only application\/vnd\.docker\.distribution\.manifest\.v2\+json/,
  );
  assert.match(
    (await readPushedImage(docker.registry, repository, index.digest, "")).problems.join(),
    /it is an image index \(application\/vnd\.oci\.image\.index\.v1\+json: linux\/amd64\)/,
  );
  assert.match((await readPushedImage(docker.registry, repository, armV2.digest, "")).problems.join(), /built for linux\/arm64/);

  // The fake SageMaker reads the same registry and fails each job with SageMaker's own reason.
  const { createJob } = await import("../../src/backends/sagemaker/index.js");
  const { makeContext } = await import("../../src/context.js");
  const ctx = makeContext({ cwd: os.tmpdir(), env: sagemakerEnv().env });
  const request = (name: string, digest: string) => ({
    TrainingJobName: name,
    AlgorithmSpecification: { TrainingImage: `${docker.registry}/${repository}@${digest}`, TrainingInputMode: "File" as const },
    RoleArn: `arn:aws:iam::123456789012:role/${ROLE}`,
    OutputDataConfig: { S3OutputPath: OUTPUT },
    ResourceConfig: { InstanceType: "ml.c4.2xlarge" as const, InstanceCount: 1, VolumeSizeInGB: 30 },
    StoppingCondition: { MaxRuntimeInSeconds: 60 },
  });
  const expected: Record<string, RegExp> = {
    [oci.digest]:
      /^ClientError: Unsupported manifest media type application\/vnd\.oci\.image\.manifest\.v1\+json for image .* Ensure that valid manifest media type is used for specified image\.$/,
    [index.digest]: /^ClientError: Unsupported manifest media type application\/vnd\.oci\.image\.index\.v1\+json/,
    [armV2.digest]: /exec format error/,
  };
  let n = 0;
  for (const [digest, reason] of Object.entries(expected)) {
    const name = `by-hand-${++n}`;
    await createJob(request(name, digest), `s-${n}`, ctx);
    let described: { TrainingJobStatus?: string; FailureReason?: string } = {};
    for (let i = 0; i < 200 && described.TrainingJobStatus !== "Failed"; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      described = (await (
        await fetch(fake.url, {
          method: "POST",
          headers: {
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "SageMaker.DescribeTrainingJob",
            Authorization: "AWS4-HMAC-SHA256 Credential=testing/20261126/us-east-1/sagemaker/aws4_request, SignedHeaders=host, Signature=0",
          },
          body: JSON.stringify({ TrainingJobName: name }),
        })
      ).json()) as typeof described;
    }
    assert.equal(described.TrainingJobStatus, "Failed", JSON.stringify(described));
    assert.match(described.FailureReason ?? "", reason);
  }
});

test("real dockerd, runner=docker: apt.txt installs system packages before the environment; a file:// pip index is served to the build; a failed build shows its last lines", async () => {
  const index = "file:///opt/pypi/simple";
  const dir = path.join(
    writeTree({
      "aptproject/apt.txt": "# system packages for the job\njq\n",
      "aptproject/requirements.txt": "six\n",
      "aptproject/train.py":
        "import shutil, six, os\nassert shutil.which('jq'), 'jq is installed from apt.txt'\nopen(os.path.join(os.environ['SM_MODEL_DIR'], 'ok.txt'), 'w').write(six.__name__)\nprint('apt and pip ok')\n",
    }),
    "aptproject",
  );
  const { env } = sagemakerEnv({ PIP_INDEX_URL: index });
  const result = await runCli(["fit", "train.py", "--config.runner=docker", "--json"], { cwd: dir, env });
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, /apt and pip ok/);

  fs.writeFileSync(path.join(dir, "requirements.txt"), "no-such-package-anywhere==1.0\n");
  const failed = await runCli(["fit", "train.py", "--config.runner=docker"], { cwd: dir, env });
  assert.equal(failed.code, 1, failed.stderr);
  assert.match(failed.stderr, /docker build failed \(exit 1\); the build's last lines:/);
  const log = /the whole build log: (\S+\.log)\)/.exec(failed.stderr)?.[1];
  assert.ok(log && fs.readFileSync(log, "utf8").includes("no-such-package-anywhere"), `the error names the build's log: ${failed.stderr}`);
  assert.match(failed.stderr, /No matching distribution found for no-such-package-anywhere==1\.0/, "pip's own error, from the build's output, is shown");
});
