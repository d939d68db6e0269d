/**
 * The pure parts of issue 10: IAM policy evaluation (checked against cases
 * from AWS's policy evaluation docs, and against the test servers' own
 * evaluator so neither misreads alone), the role policy merge, image names,
 * the Dockerfile's apt.txt step, `docker build`'s flags, and the base image
 * `init` picks from what the backends say of a GPU.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { evaluate, type PolicyDocument } from "../../src/backends/sagemaker/policy.js";
import { collapse, rolePolicy, policySize, ROLE_POLICY_MAX } from "../../src/backends/sagemaker/role.js";
import { buildArgs, docker, sharesKernel } from "../../src/package/docker.js";
import { BASE_IMAGES, dockerfileFor, imageName } from "../../src/package/image.js";
import { localBackend } from "../../src/backends/local/index.js";
import { makeContext } from "../../src/context.js";
import { init } from "../../src/jobs/init.js";
import type { FitRequest } from "../../src/jobs/spec.js";
import { writeTree } from "../helpers/tree.js";
import { validateSettings } from "../../src/spec/schema.js";
import { sagemakerSchema, type SageMakerSpec } from "../../src/backends/sagemaker/schema.js";
import { policiesAllow } from "../servers/iam-policy.js";
import { fileTimeLimit } from "../helpers/limit.js";

fileTimeLimit(3, import.meta.url);

const doc = (...Statement: PolicyDocument["Statement"][]): PolicyDocument => ({ Version: "2012-10-17", Statement: Statement.flat() });

test("IAM evaluation (AWS's policy evaluation logic): explicit Deny wins, Allow with wildcards, NotAction/NotResource, implicit deny; the fake's own evaluator agrees", () => {
  const cases: Array<[PolicyDocument[], string, string, "allow" | "deny" | "implicit"]> = [
    [[doc({ Effect: "Allow", Action: "s3:*", Resource: "arn:aws:s3:::b/*" })], "s3:PutObject", "arn:aws:s3:::b/x/y.tar.gz", "allow"],
    [[doc({ Effect: "Allow", Action: "S3:putobject", Resource: "arn:aws:s3:::b/*" })], "s3:PutObject", "arn:aws:s3:::b/k", "allow"],
    [[doc({ Effect: "Allow", Action: "s3:PutObject", Resource: "arn:aws:s3:::B/*" })], "s3:PutObject", "arn:aws:s3:::b/k", "implicit"],
    [[doc({ Effect: "Allow", Action: "s3:Get?bject", Resource: "*" })], "s3:GetObject", "arn:aws:s3:::b/k", "allow"],
    [
      [doc({ Effect: "Allow", Action: "s3:*", Resource: "*" }), doc({ Effect: "Deny", Action: "s3:PutObject", Resource: "arn:aws:s3:::b/runs/*" })],
      "s3:PutObject",
      "arn:aws:s3:::b/runs/j/output/model.tar.gz",
      "deny",
    ],
    [[doc({ Effect: "Allow", NotAction: "iam:*", Resource: "*" })], "ecr:BatchGetImage", "arn:aws:ecr:us-east-1:1:repository/x", "allow"],
    [[doc({ Effect: "Allow", NotAction: "ecr:*", Resource: "*" })], "ecr:BatchGetImage", "arn:aws:ecr:us-east-1:1:repository/x", "implicit"],
    [[doc({ Effect: "Allow", Action: "*", NotResource: "arn:aws:s3:::secret/*" })], "s3:GetObject", "arn:aws:s3:::secret/k", "implicit"],
    [[doc({ Effect: "Allow", Action: "s3:GetObject", Resource: "arn:aws:s3:::b/data/train.csv*" })], "s3:GetObject", "arn:aws:s3:::b/data/train.csv", "allow"],
    [[], "s3:GetObject", "arn:aws:s3:::b/k", "implicit"],
  ];
  for (const [documents, action, resource, expected] of cases) {
    assert.equal(evaluate(documents, action, resource), expected, `${action} on ${resource}`);
    assert.equal(policiesAllow(documents, action, resource), expected === "allow", `the fake's evaluator: ${action} on ${resource}`);
  }
  // A Condition or a policy variable may or may not apply: never a definite answer.
  assert.equal(
    evaluate(
      [doc({ Effect: "Allow", Action: "s3:*", Resource: "*", Condition: { StringEquals: { "aws:SourceVpc": "vpc-1" } } })],
      "s3:GetObject",
      "arn:aws:s3:::b/k",
    ),
    "conditional",
  );
  assert.equal(
    evaluate([doc({ Effect: "Allow", Action: "s3:*", Resource: "arn:aws:s3:::b/${aws:username}/*" })], "s3:GetObject", "arn:aws:s3:::b/k"),
    "conditional",
  );
});

function spec(dir: string, entry: string, extra: Partial<SageMakerSpec> = {}, settings: Record<string, unknown> = {}): SageMakerSpec {
  const typed = validateSettings(sagemakerSchema, { role_name: "r", ...settings }, "the sagemaker backend").settings;
  return {
    artifact: { kind: "script", dir, entry, isFolder: false },
    backend: "sagemaker",
    settings: typed,
    hyperparameters: {},
    inputs: {},
    outputPath: "s3://b/runs",
    ...extra,
  };
}

test("role policy: two projects merge by bucket with covered prefixes dropped; single objects, repositories and a KMS key are granted; the size stays under IAM's limit", () => {
  const where = { account: "123456789012", region: "us-east-1", partition: "aws" };
  const a = rolePolicy(spec("/p/a", "train.py"), where);
  const both = rolePolicy(
    spec(
      "/p/b",
      "train.py",
      { outputPath: "s3://b/runs/b", inputs: { train: "s3://c/data/train.csv" } },
      { repository: "team/x", kms_key: "1234abcd-12ab-34cd-56ef-1234567890ab" },
    ),
    where,
    a,
  );
  const text = JSON.stringify(both);
  assert.ok(text.includes('"arn:aws:s3:::b/runs/*"'));
  assert.ok(!text.includes("arn:aws:s3:::b/runs/b/*"), "b/runs/b/* is covered by b/runs/* and dropped");
  assert.ok(text.includes('"arn:aws:s3:::c/data/train.csv*"'), "a single-object input is granted");
  assert.ok(text.includes('"arn:aws:s3:::b"') && text.includes('"arn:aws:s3:::c"'));
  assert.ok(text.includes("repository/team/x") && text.includes("repository/alekseylearn/*"));
  assert.ok(text.includes("key/1234abcd-12ab-34cd-56ef-1234567890ab") && text.includes("kms:GenerateDataKey"));
  assert.ok(text.includes("cloudwatch:PutMetricData") && text.includes("logs:CreateLogGroup"));
  assert.deepEqual(rolePolicy(spec("/p/a", "train.py"), where, both), both, "merging again changes nothing");
  assert.ok(policySize(both) < ROLE_POLICY_MAX);
  assert.deepEqual(collapse(["arn:aws:s3:::b/a/*", "arn:aws:s3:::b/a/x*", "arn:aws:s3:::b/ab*", "arn:aws:s3:::b/a/*"]), [
    "arn:aws:s3:::b/a/*",
    "arn:aws:s3:::b/ab*",
  ]);
});

test("image names: alekseylearn/<folder>-<stem>, lowercase and within ECR's pattern and 256 characters", () => {
  assert.equal(imageName(spec("/home/u/Iris Project", "train.py")), "alekseylearn/iris-project-train");
  assert.equal(imageName(spec("/x/--weird__", "My..Model.py")), "alekseylearn/weird-my-model");
  const long = imageName(spec(`/x/${"a".repeat(400)}`, "train.py"));
  assert.ok(long.length <= 256);
  assert.match(long, /^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*\/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$/, "ECR's repositoryName pattern (botocore's ECR model)");
});

test("Dockerfile: apt.txt's packages install before the environment layer; docker build gets the platform and BuildKit's no-attestation flags as flags", () => {
  const text = dockerfileFor(spec(path.sep + "p", "train.py"), "python:3.11-slim", { apt: true });
  assert.ok(text.indexOf("apt-get install") > 0 && text.indexOf("apt-get install") < text.indexOf("python3 -m venv"), text);
  assert.ok(!dockerfileFor(spec("/p", "train.py"), "python:3.11-slim").includes("apt-get"));
  assert.deepEqual(buildArgs({ tag: "t", buildKit: true, platform: "linux/amd64", network: "host", buildArgNames: ["PIP_INDEX_URL"] }), [
    "build",
    "--tag",
    "t",
    "--network",
    "host",
    "--platform",
    "linux/amd64",
    "--provenance=false",
    "--sbom=false",
    "--build-arg",
    "PIP_INDEX_URL",
    "-",
  ]);
  assert.deepEqual(buildArgs({ tag: "t", buildKit: false, network: "default", addHosts: ["host.docker.internal:host-gateway"] }), [
    "build",
    "--tag",
    "t",
    "--add-host",
    "host.docker.internal:host-gateway",
    "-",
  ]);
  assert.equal(sharesKernel({ version: "28", platform: "linux/amd64", kernel: "6.1.0" }, "linux", "6.1.0"), true);
  assert.equal(sharesKernel({ version: "28", platform: "linux/arm64", kernel: "6.10.14-linuxkit" }, "darwin", "24.1.0"), false, "Docker Desktop's VM");
});

test("init builds on the CUDA base when the backend named (or, with none named, any backend) says the settings ask for a GPU; the local backend never does", async () => {
  assert.equal(localBackend.wantsGpu({ instance_type: "ml.p3.2xlarge", accelerator_type: "NVIDIA_L4" }), false);
  const base = async (request: Omit<FitRequest, "artifact">): Promise<string | undefined> => {
    const dir = writeTree({ "train.py": "print(1)\n", "requirements.txt": "" });
    await init({ artifact: "train.py", ...request }, makeContext({ cwd: dir, env: {} }));
    return /^FROM (\S+)/m.exec(fs.readFileSync(path.join(dir, "Dockerfile"), "utf8"))?.[1];
  };
  assert.equal(await base({ config: {} }), BASE_IMAGES.cpu);
  assert.equal(await base({ config: { instance_type: "ml.p3.2xlarge" } }), BASE_IMAGES.gpu);
  assert.equal(await base({ config: { accelerator_type: "NVIDIA_L4" } }), BASE_IMAGES.gpu);
  assert.equal(await base({ config: { accelerator_type: "TPU_V3" } }), BASE_IMAGES.cpu);
  assert.equal(await base({ backend: "sagemaker", config: { train_instance_type: "ml.g5.xlarge" } }), BASE_IMAGES.gpu);
  assert.equal(await base({ backend: "local", config: { instance_type: "ml.p3.2xlarge" } }), BASE_IMAGES.cpu);
});

test("a docker command whose input cannot be read (a build context removed under it) fails with the read's error, and no docker is left waiting", async (t) => {
  // A stand-in `docker` that waits on its stdin as `docker build -` does (this test needs no Docker).
  const bin = fs.mkdtempSync(path.join(os.tmpdir(), "alekseylearn-docker-"));
  t.after(() => fs.rmSync(bin, { recursive: true, force: true }));
  fs.writeFileSync(path.join(bin, "docker"), "#!/bin/sh\ncat > /dev/null\necho built\n", { mode: 0o755 });
  const gone = path.join(bin, "context.tar");
  const env = { ...process.env, PATH: `${bin}:${process.env.PATH}` };
  await assert.rejects(docker(["build", "-"], { env, input: fs.createReadStream(gone) }), { code: "ENOENT", path: gone });
});
