/** The fake SageMaker itself: it must refuse what the real API refuses (checked against botocore's model), and step jobs as SageMaker does. */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { startMoto, type Moto } from "../helpers/servers.js";
import { startFakeSageMaker, type FakeSageMaker } from "../servers/sagemaker-fake.js";

let moto: Moto;
let fake: FakeSageMaker;

before(async () => {
  moto = await startMoto();
  fake = await startFakeSageMaker({ moto: moto.url, dockerEnv: process.env });
});

after(async () => {
  await fake.stop();
  await moto.stop();
});

const AUTH = "AWS4-HMAC-SHA256 Credential=testing/20261126/us-east-1/sagemaker/aws4_request, SignedHeaders=host, Signature=0";

async function call(operation: string, body: object, authorization = AUTH): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(fake.url, {
    method: "POST",
    headers: { "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": `SageMaker.${operation}`, ...(authorization ? { Authorization: authorization } : {}) },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

function job(name: string, extra: object = {}): object {
  return {
    TrainingJobName: name,
    AlgorithmSpecification: { TrainingImage: "127.0.0.1:5000/alekseylearn/x@sha256:" + "0".repeat(64), TrainingInputMode: "File" },
    RoleArn: "arn:aws:iam::123456789012:role/alekseylearn_sagemaker_role",
    OutputDataConfig: { S3OutputPath: "s3://bucket/sagemaker/runs" },
    ResourceConfig: { InstanceType: "ml.c4.2xlarge", InstanceCount: 1, VolumeSizeInGB: 30 },
    StoppingCondition: { MaxRuntimeInSeconds: 3600 },
    ...extra,
  };
}

async function until(name: string, status: string): Promise<Record<string, unknown>> {
  for (let i = 0; i < 200; i++) {
    const described = (await call("DescribeTrainingJob", { TrainingJobName: name })).body;
    if (described.TrainingJobStatus === status) return described;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.fail(`${name} never reached ${status}`);
}

test("fake SageMaker (botocore's model): a request that drifts from the published API is refused, naming the field", async () => {
  const unknown = await call("CreateTrainingJob", job("drift-1", { InstanceType: "ml.c4.2xlarge" }));
  assert.equal(unknown.status, 400);
  assert.equal(unknown.body.__type, "ValidationException");
  assert.match(String(unknown.body.message), /InstanceType: not a member of CreateTrainingJobRequest/);

  const missing = await call("CreateTrainingJob", { TrainingJobName: "drift-2", RoleArn: "arn:aws:iam::123456789012:role/r" });
  assert.match(String(missing.body.message), /OutputDataConfig: required/);

  const enumValue = await call("CreateTrainingJob", job("drift-3", { ResourceConfig: { InstanceType: "ml.nope", InstanceCount: 1, VolumeSizeInGB: 30 } }));
  assert.match(String(enumValue.body.message), /ResourceConfig\.InstanceType: "ml\.nope" is not one of/);

  const typed = await call("CreateTrainingJob", job("drift-4", { HyperParameters: { epochs: 10 } }));
  assert.match(String(typed.body.message), /HyperParameters\.epochs: expected text/, "hyperparameters are strings on the wire");

  const badName = await call("CreateTrainingJob", job("bad_name!"));
  assert.match(String(badName.body.message), /TrainingJobName: "bad_name!" does not match/);

  const unsigned = await call("CreateTrainingJob", job("drift-5"), "");
  assert.equal(unsigned.body.__type, "UnrecognizedClientException");
  assert.equal(fake.requests.filter((request) => request.target === "CreateTrainingJob").length, 0, "nothing refused was recorded as accepted");
});

test("fake SageMaker: a job steps InProgress → Failed with its reason and transitions in order; a name is used once", async () => {
  fake.script("fails-downloading", { failAt: "Downloading", reason: "ClientError: no such bucket" });
  const created = await call("CreateTrainingJob", job("fails-downloading"));
  assert.equal(created.status, 200, JSON.stringify(created.body));
  assert.match(String(created.body.TrainingJobArn), /^arn:aws:sagemaker:us-east-1:123456789012:training-job\/fails-downloading$/);
  const failed = await until("fails-downloading", "Failed");
  assert.equal(failed.FailureReason, "ClientError: no such bucket");
  assert.deepEqual((failed.SecondaryStatusTransitions as { Status: string }[]).map((t) => t.Status), ["Starting", "Downloading", "Failed"]);
  const again = await call("CreateTrainingJob", job("fails-downloading"));
  assert.equal(again.body.__type, "ResourceInUse");
});

test("fake SageMaker: StopTrainingJob on a running job ends it Stopped; stopping an ended job is refused", async () => {
  fake.script("long-job", { trainSeconds: 60 });
  await call("CreateTrainingJob", job("long-job"));
  const training = await until("long-job", "InProgress");
  assert.ok(["Starting", "Downloading", "Training"].includes(String(training.SecondaryStatus)));
  assert.equal((await call("StopTrainingJob", { TrainingJobName: "long-job" })).status, 200);
  const stopped = await until("long-job", "Stopped");
  assert.equal(stopped.SecondaryStatus, "Stopped");
  assert.equal((await call("StopTrainingJob", { TrainingJobName: "long-job" })).body.__type, "ValidationException");
  const missing = await call("DescribeTrainingJob", { TrainingJobName: "no-such-job" });
  assert.equal(missing.body.message, "Requested resource not found.");
});
