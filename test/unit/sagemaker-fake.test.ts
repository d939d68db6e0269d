/**
 * The fake SageMaker itself (test/servers/sagemaker-fake.ts), with moto for its
 * S3 and CloudWatch Logs and no Docker (scripted jobs): it must refuse what the
 * real API refuses, checked against botocore's published model, answer as the
 * real API answers (its own answers checked against the same model), and step
 * jobs as SageMaker does.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { CloudWatchLogsClient, DescribeLogStreamsCommand, GetLogEventsCommand } from "@aws-sdk/client-cloudwatch-logs";
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { CreateRoleCommand, IAMClient, PutRolePolicyCommand } from "@aws-sdk/client-iam";
import * as tar from "tar";
import { startMoto, type Moto } from "../helpers/servers.js";
import { javaPatternToJs, patternOf, sagemakerModel, startFakeSageMaker, validate, type FakeSageMaker } from "../servers/sagemaker-fake.js";
import { fileTimeLimit } from "../helpers/limit.js";

fileTimeLimit(3, import.meta.url);

let moto: Moto;
let fake: FakeSageMaker;
let s3: S3Client;
const BUCKET = "fake-sagemaker-bucket";

before(async () => {
  moto = await startMoto();
  // No DOCKER_HOST: a scripted job never calls docker.
  fake = await startFakeSageMaker({ moto: moto.url, dockerEnv: { PATH: process.env.PATH, DOCKER_HOST: "unix:///nonexistent/docker.sock" } });
  s3 = new S3Client({ region: "us-east-1", endpoint: moto.url, forcePathStyle: true, credentials: { accessKeyId: "testing", secretAccessKey: "testing" } });
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  // SageMaker assumes the job's role and acts with its permissions: the jobs here run as one allowed the bucket and the repositories.
  iam = new IAMClient({ region: "us-east-1", endpoint: moto.url, credentials: { accessKeyId: "testing", secretAccessKey: "testing" } });
  await makeRole("alekseylearn_sagemaker_role", [
    { Effect: "Allow", Action: ["s3:GetObject", "s3:PutObject"], Resource: `arn:aws:s3:::${BUCKET}/*` },
    { Effect: "Allow", Action: "s3:ListBucket", Resource: `arn:aws:s3:::${BUCKET}` },
    { Effect: "Allow", Action: ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"], Resource: "arn:aws:ecr:us-east-1:123456789012:repository/alekseylearn/*" },
    { Effect: "Allow", Action: "ecr:GetAuthorizationToken", Resource: "*" },
  ]);
});

let iam: IAMClient;
const TRUST = JSON.stringify({
  Version: "2012-10-17",
  Statement: [{ Effect: "Allow", Principal: { Service: "sagemaker.amazonaws.com" }, Action: "sts:AssumeRole" }],
});

/** A role SageMaker may assume, with one inline policy of `statements`. */
async function makeRole(name: string, statements: object[]): Promise<void> {
  await iam.send(new CreateRoleCommand({ RoleName: name, AssumeRolePolicyDocument: TRUST }));
  await iam.send(
    new PutRolePolicyCommand({ RoleName: name, PolicyName: "p", PolicyDocument: JSON.stringify({ Version: "2012-10-17", Statement: statements }) }),
  );
}

after(async () => {
  await fake?.stop();
  iam?.destroy();
  s3?.destroy();
  await moto?.stop();
});

const AUTH =
  "AWS4-HMAC-SHA256 Credential=testing/20261126/us-east-1/sagemaker/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=0000";

async function call(operation: string, body: object, headers: Record<string, string> = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(fake.url, {
    method: "POST",
    headers: { "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": `SageMaker.${operation}`, Authorization: AUTH, ...headers },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** A minimal valid CreateTrainingJob request, as the SageMaker backend sends one. */
function job(name: string, extra: object = {}): Record<string, unknown> {
  return {
    TrainingJobName: name,
    AlgorithmSpecification: { TrainingImage: `127.0.0.1:5000/alekseylearn/train@sha256:${"0".repeat(64)}`, TrainingInputMode: "File" },
    RoleArn: "arn:aws:iam::123456789012:role/alekseylearn_sagemaker_role",
    OutputDataConfig: { S3OutputPath: `s3://${BUCKET}/sagemaker/runs` },
    ResourceConfig: { InstanceType: "ml.c4.2xlarge", InstanceCount: 1, VolumeSizeInGB: 30 },
    StoppingCondition: { MaxRuntimeInSeconds: 3600 },
    ...extra,
  };
}

async function describe(name: string): Promise<Record<string, unknown>> {
  const answer = await call("DescribeTrainingJob", { TrainingJobName: name });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  // The fake's answers hold to the published model as the real service's do.
  assert.deepEqual(validate(sagemakerModel(), "DescribeTrainingJobResponse", answer.body), [], JSON.stringify(answer.body));
  return answer.body;
}

async function until(name: string, status: string, seconds = 10): Promise<Record<string, unknown>> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const described = await describe(name);
    if (described.TrainingJobStatus === status) return described;
    if (Date.now() > deadline) assert.fail(`${name} never reached ${status}; it is ${described.TrainingJobStatus}/${described.SecondaryStatus}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const statuses = (described: Record<string, unknown>): string[] =>
  (described.SecondaryStatusTransitions as Array<{ Status: string }>).map((transition) => transition.Status);
const created = (name: string): number =>
  fake.requests.filter((request) => request.target === "CreateTrainingJob" && request.body.TrainingJobName === name).length;

test("fake SageMaker (botocore's model): a request that drifts from the published API is refused with a ValidationException naming the field", async () => {
  const unknown = await call("CreateTrainingJob", job("drift-1", { InstanceType: "ml.c4.2xlarge" }));
  assert.equal(unknown.status, 400);
  assert.equal(unknown.body.__type, "ValidationException");
  assert.match(String(unknown.body.message), /InstanceType: not a member of CreateTrainingJobRequest/);

  const nested = await call("CreateTrainingJob", job("drift-1b", { OutputDataConfig: { S3OutputPath: `s3://${BUCKET}/x`, Path: "x" } }));
  assert.match(String(nested.body.message), /OutputDataConfig\.Path: not a member of OutputDataConfig/);

  const missing = await call("CreateTrainingJob", { TrainingJobName: "drift-2", RoleArn: "arn:aws:iam::123456789012:role/r" });
  assert.equal(missing.body.__type, "ValidationException");
  assert.match(String(missing.body.message), /OutputDataConfig: required/);

  const enumValue = await call("CreateTrainingJob", job("drift-3", { ResourceConfig: { InstanceType: "ml.nope", InstanceCount: 1, VolumeSizeInGB: 30 } }));
  assert.equal(enumValue.body.__type, "ValidationException");
  assert.match(String(enumValue.body.message), /ResourceConfig\.InstanceType: "ml\.nope" is not one of \[.*ml\.c4\.2xlarge.*\]/);

  const typed = await call("CreateTrainingJob", job("drift-4", { HyperParameters: { epochs: 10 } }));
  assert.match(String(typed.body.message), /HyperParameters\.epochs: expected text, got 10/, "hyperparameters are strings on the wire");

  const range = await call("CreateTrainingJob", job("drift-5", { StoppingCondition: { MaxRuntimeInSeconds: 0 } }));
  assert.match(String(range.body.message), /StoppingCondition\.MaxRuntimeInSeconds: 0 is less than 1/);

  const badName = await call("CreateTrainingJob", job("bad_name!"));
  assert.match(String(badName.body.message), /TrainingJobName: "bad_name!" does not match/, "the name pattern holds for the whole name");
  const longName = await call("CreateTrainingJob", job("a".repeat(64)));
  assert.match(String(longName.body.message), /TrainingJobName: at most 63 characters/);

  const list = await call("CreateTrainingJob", job("drift-6", { Tags: { Key: "a", Value: "b" } }));
  assert.match(String(list.body.message), /Tags: expected a list/);

  assert.equal(
    created("drift-1") + created("drift-2") + created("drift-3") + created("drift-4") + created("drift-5") + created("drift-6"),
    0,
    "nothing refused was recorded",
  );
});

test("fake SageMaker (awsJson1_1): unsigned, wrongly signed or wrongly typed requests are refused", async () => {
  const unsigned = await call("DescribeTrainingJob", { TrainingJobName: "x" }, { Authorization: "" });
  assert.equal(unsigned.body.__type, "MissingAuthenticationTokenException");
  const otherKey = await call("DescribeTrainingJob", { TrainingJobName: "x" }, { Authorization: AUTH.replace("testing/", "AKIAOTHER/") });
  assert.equal(otherKey.body.__type, "UnrecognizedClientException");
  const otherRegion = await call("DescribeTrainingJob", { TrainingJobName: "x" }, { Authorization: AUTH.replace("us-east-1", "eu-west-1") });
  assert.equal(otherRegion.body.__type, "InvalidSignatureException");
  const otherService = await call("DescribeTrainingJob", { TrainingJobName: "x" }, { Authorization: AUTH.replace("/sagemaker/", "/s3/") });
  assert.equal(otherService.body.__type, "InvalidSignatureException");
  const json = await call("DescribeTrainingJob", { TrainingJobName: "x" }, { "Content-Type": "application/json" });
  assert.equal(json.body.__type, "SerializationException");
  const operation = await call("DescribeNothing", {});
  assert.equal(operation.body.__type, "UnknownOperationException");
  const missing = await call("DescribeTrainingJob", { TrainingJobName: "no-such-job" });
  assert.equal(missing.status, 400);
  assert.deepEqual([missing.body.__type, missing.body.message], ["ValidationException", "Requested resource not found."]);
});

test("fake SageMaker: a valid minimal request is accepted and completes: transitions in order, logs in CloudWatch, model.tar.gz in S3", async () => {
  fake.script("completes", { model: { "model.txt": "weights" }, logLines: ["epoch 1", "", "done"] });
  const answer = await call("CreateTrainingJob", job("completes", { HyperParameters: { epochs: "10" } }));
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  assert.deepEqual(answer.body, { TrainingJobArn: "arn:aws:sagemaker:us-east-1:123456789012:training-job/completes" });
  assert.equal(created("completes"), 1);
  const running = await describe("completes");
  assert.equal(running.TrainingJobStatus, "InProgress", "CreateTrainingJob returns before the job ends");
  assert.equal(running.BillableTimeInSeconds, undefined);

  const done = await until("completes", "Completed");
  assert.deepEqual(statuses(done), ["Starting", "Downloading", "Training", "Uploading", "Completed"]);
  assert.deepEqual(
    (done.SecondaryStatusTransitions as Array<{ StatusMessage: string }>).map((transition) => transition.StatusMessage),
    [
      "Preparing the instances for training",
      "Downloading input data",
      "Training image download completed. Training in progress.",
      "Uploading generated training model",
      "Training job completed",
    ],
  );
  for (const transition of done.SecondaryStatusTransitions as Array<{ StartTime: number; EndTime?: number }>) {
    assert.equal(typeof transition.StartTime, "number", "timestamps are epoch seconds");
    assert.ok(transition.EndTime !== undefined && transition.EndTime >= transition.StartTime);
  }
  assert.equal(done.SecondaryStatus, "Completed");
  assert.ok(Number(done.BillableTimeInSeconds) >= 1);
  assert.ok(Number(done.TrainingEndTime) >= Number(done.TrainingStartTime));
  assert.deepEqual(done.HyperParameters, { epochs: "10" });
  const artifact = `s3://${BUCKET}/sagemaker/runs/completes/output/model.tar.gz`;
  assert.deepEqual(done.ModelArtifacts, { S3ModelArtifacts: artifact });

  const object = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "sagemaker/runs/completes/output/model.tar.gz" }));
  const entries: string[] = [];
  const parser = new tar.Parser({
    onReadEntry: (entry) => {
      entries.push(entry.path);
      entry.resume();
    },
  });
  parser.end(Buffer.from(await object.Body!.transformToByteArray()));
  assert.deepEqual(entries, ["model.txt"]);

  const logs = new CloudWatchLogsClient({ region: "us-east-1", endpoint: moto.url, credentials: { accessKeyId: "testing", secretAccessKey: "testing" } });
  try {
    const streams = await logs.send(new DescribeLogStreamsCommand({ logGroupName: "/aws/sagemaker/TrainingJobs", logStreamNamePrefix: "completes/" }));
    assert.equal(streams.logStreams?.length, 1);
    assert.match(streams.logStreams![0]!.logStreamName!, /^completes\/algo-1-\d{10}$/);
    const events = await logs.send(
      new GetLogEventsCommand({ logGroupName: "/aws/sagemaker/TrainingJobs", logStreamName: streams.logStreams![0]!.logStreamName!, startFromHead: true }),
    );
    assert.deepEqual(
      events.events?.map((event) => event.message),
      ["epoch 1", "done"],
    );
  } finally {
    logs.destroy();
  }
});

test("fake SageMaker: a scripted job steps InProgress → Failed with its FailureReason and transitions in order; a used name is ResourceInUse", async () => {
  fake.script("fails-downloading", { failAt: "Downloading", reason: "ClientError: no such bucket" });
  const answer = await call("CreateTrainingJob", job("fails-downloading"));
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  assert.equal((await describe("fails-downloading")).TrainingJobStatus, "InProgress");
  const failed = await until("fails-downloading", "Failed");
  assert.equal(failed.FailureReason, "ClientError: no such bucket");
  assert.equal(failed.SecondaryStatus, "Failed");
  assert.deepEqual(statuses(failed), ["Starting", "Downloading", "Failed"]);
  assert.equal(failed.TrainingStartTime, undefined, "a job that never trained has no training times");

  const again = await call("CreateTrainingJob", job("fails-downloading"));
  assert.equal(again.status, 400);
  assert.equal(again.body.__type, "ResourceInUse");
  assert.equal(created("fails-downloading"), 1, "only the accepted request is recorded");

  fake.script("fails-training", { failAt: "Training", reason: "ValueError: bad data" });
  await call("CreateTrainingJob", job("fails-training"));
  const algorithm = await until("fails-training", "Failed");
  assert.equal(algorithm.FailureReason, "AlgorithmError: ValueError: bad data, exit code: 1");
  assert.deepEqual(statuses(algorithm), ["Starting", "Downloading", "Training", "Failed"]);
  assert.ok(Number(algorithm.BillableTimeInSeconds) >= 1, "a job that trained is billed");
});

test("fake SageMaker: an S3 channel with no objects fails the job at Downloading as SageMaker does; objects are found under the prefix", async () => {
  const channel = (uri: string): object => ({
    InputDataConfig: [
      { ChannelName: "train", DataSource: { S3DataSource: { S3DataType: "S3Prefix", S3Uri: uri, S3DataDistributionType: "FullyReplicated" } } },
    ],
  });
  await call("CreateTrainingJob", job("empty-channel", channel(`s3://${BUCKET}/nothing-here`)));
  const failed = await until("empty-channel", "Failed");
  assert.match(String(failed.FailureReason), /^ClientError: No S3 objects found under S3 URL "s3:\/\/fake-sagemaker-bucket\/nothing-here"/);

  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: "data/iris/iris.csv", Body: "1,2,3\n" }));
  fake.script("with-channel", {});
  await call("CreateTrainingJob", job("with-channel", channel(`s3://${BUCKET}/data/iris`)));
  const done = await until("with-channel", "Completed");
  assert.equal((done.InputDataConfig as Array<{ ChannelName: string }>)[0]!.ChannelName, "train");
});

test("fake SageMaker: StopTrainingJob on a running job goes Stopping → Stopped; MaxRuntimeInSeconds ends a job Stopped/MaxRuntimeExceeded", async () => {
  fake.script("long-job", { trainSeconds: 60 });
  await call("CreateTrainingJob", job("long-job"));
  await until("long-job", "InProgress");
  for (let i = 0; i < 100 && (await describe("long-job")).SecondaryStatus !== "Training"; i++) await new Promise((resolve) => setTimeout(resolve, 50));
  const stop = await call("StopTrainingJob", { TrainingJobName: "long-job" });
  assert.equal(stop.status, 200, JSON.stringify(stop.body));
  const stopped = await until("long-job", "Stopped");
  assert.equal(stopped.SecondaryStatus, "Stopped");
  assert.deepEqual(statuses(stopped), ["Starting", "Downloading", "Training", "Stopping", "Stopped"]);
  assert.equal(stopped.FailureReason, undefined);
  const again = await call("StopTrainingJob", { TrainingJobName: "long-job" });
  assert.deepEqual([again.body.__type, again.body.message], ["ValidationException", "The request was rejected because the training job is in status Stopped."]);

  fake.script("too-long", { trainSeconds: 60 });
  await call("CreateTrainingJob", job("too-long", { StoppingCondition: { MaxRuntimeInSeconds: 1 } }));
  const timedOut = await until("too-long", "Stopped", 15);
  assert.equal(timedOut.SecondaryStatus, "MaxRuntimeExceeded");
  assert.deepEqual(statuses(timedOut), ["Starting", "Downloading", "Training", "Stopping", "MaxRuntimeExceeded"]);
});

test("fake SageMaker: managed spot needs MaxWaitTimeInSeconds ≥ MaxRuntimeInSeconds, as SageMaker checks", async () => {
  const noWait = await call("CreateTrainingJob", job("spot-1", { EnableManagedSpotTraining: true }));
  assert.equal(noWait.body.__type, "ValidationException");
  assert.match(String(noWait.body.message), /MaxWaitTimeInSeconds/);
  fake.script("spot-2", {});
  const ok = await call(
    "CreateTrainingJob",
    job("spot-2", { EnableManagedSpotTraining: true, StoppingCondition: { MaxRuntimeInSeconds: 3600, MaxWaitTimeInSeconds: 7200 } }),
  );
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  const done = await until("spot-2", "Completed");
  assert.equal(done.EnableManagedSpotTraining, true);
});

test("fake SageMaker: ListTrainingJobs filters, sorts and pages; ListTags and AddTags", async () => {
  for (const name of ["list-b", "list-a", "list-c"]) {
    fake.script(name, { trainSeconds: 30 });
    await call("CreateTrainingJob", job(name, { Tags: [{ Key: "alekseylearn:submission", Value: name }] }));
    await new Promise((resolve) => setTimeout(resolve, 20)); // distinct CreationTimes
  }
  const first = await call("ListTrainingJobs", { NameContains: "list-", SortBy: "Name", SortOrder: "Ascending", MaxResults: 2 });
  assert.equal(first.status, 200, JSON.stringify(first.body));
  assert.deepEqual(validate(sagemakerModel(), "ListTrainingJobsResponse", first.body), []);
  const names = (body: Record<string, unknown>): string[] =>
    (body.TrainingJobSummaries as Array<{ TrainingJobName: string }>).map((summary) => summary.TrainingJobName);
  assert.deepEqual(names(first.body), ["list-a", "list-b"]);
  const second = await call("ListTrainingJobs", {
    NameContains: "list-",
    SortBy: "Name",
    SortOrder: "Ascending",
    MaxResults: 2,
    NextToken: first.body.NextToken,
  });
  assert.deepEqual(names(second.body), ["list-c"]);
  assert.equal(second.body.NextToken, undefined);
  const newest = await call("ListTrainingJobs", { NameContains: "list-", MaxResults: 1 });
  assert.deepEqual(names(newest.body), ["list-c"], "newest first by default");
  const done = await call("ListTrainingJobs", { NameContains: "list-", StatusEquals: "Completed" });
  assert.deepEqual(names(done.body), []);

  const arn = "arn:aws:sagemaker:us-east-1:123456789012:training-job/list-a";
  assert.equal((await call("AddTags", { ResourceArn: arn, Tags: [{ Key: "team", Value: "ml" }] })).status, 200);
  const tags = await call("ListTags", { ResourceArn: arn });
  assert.deepEqual(tags.body.Tags, [
    { Key: "alekseylearn:submission", Value: "list-a" },
    { Key: "team", Value: "ml" },
  ]);
  for (const name of ["list-a", "list-b", "list-c"]) await call("StopTrainingJob", { TrainingJobName: name });
});

test("fake SageMaker: every pattern in botocore's SageMaker model compiles for JavaScript, Java-only pieces rewritten", () => {
  const model = sagemakerModel();
  const patterns = new Set(Object.values(model.shapes).flatMap((shape) => (shape.pattern === undefined ? [] : [shape.pattern])));
  assert.ok(patterns.size > 100);
  assert.deepEqual(
    [...patterns].filter((pattern) => patternOf(pattern) === null),
    [],
  );
  assert.equal(javaPatternToJs("arn:[\\p{Alnum}\\-]+:x"), "arn:[A-Za-z0-9\\-]+:x");
  assert.equal(javaPatternToJs("[a-z]+\\-[0-9a-z\\-]+"), "[a-z]+-[0-9a-z\\-]+");
  assert.equal(javaPatternToJs("([\\p{L}\\p{Z}\\p{N}_.:\\/=+\\-@]*)${1,128}"), "([\\p{L}\\p{Z}\\p{N}_.:\\/=+\\-@]*)$");
  assert.ok(patternOf("arn:[\\p{Alnum}\\-]+:x")!.test("arn:aws-cn:x"));
  assert.ok(!patternOf("arn:[\\p{Alnum}\\-]+:x")!.test("arn:p{Alnum}:x"));
  assert.ok(!patternOf("[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")!.test("ok-name!"), "a pattern must match the whole value");
});

test("fake SageMaker (IAM from moto): a role that does not exist is not assumed; one that may not pull from the repository is refused at creation, as SageMaker refuses them", async () => {
  const missing = await call("CreateTrainingJob", job("no-such-role", { RoleArn: "arn:aws:iam::123456789012:role/no_such_role" }));
  assert.equal(missing.status, 400);
  assert.equal(missing.body.__type, "ValidationException");
  assert.match(
    String(missing.body.message),
    /^Could not assume role arn:aws:iam::123456789012:role\/no_such_role\. Please ensure that the role exists and allows principal 'sagemaker\.amazonaws\.com'/,
  );

  await makeRole("pulls_nothing", [{ Effect: "Allow", Action: "s3:*", Resource: "*" }]);
  const denied = await call("CreateTrainingJob", job("cannot-pull", { RoleArn: "arn:aws:iam::123456789012:role/pulls_nothing" }));
  assert.equal(denied.status, 400);
  assert.match(String(denied.body.message), /^Access denied for repository: alekseylearn\/train in registry ID: 123456789012\./);

  // An explicit Deny wins over an Allow (AWS's policy evaluation logic).
  await makeRole("denied_output", [
    { Effect: "Allow", Action: ["s3:*", "ecr:*"], Resource: "*" },
    { Effect: "Deny", Action: "s3:PutObject", Resource: `arn:aws:s3:::${BUCKET}/sagemaker/*` },
  ]);
  fake.script("cannot-upload", { model: { "model.txt": "weights" } });
  const accepted = await call("CreateTrainingJob", job("cannot-upload", { RoleArn: "arn:aws:iam::123456789012:role/denied_output" }));
  assert.equal(accepted.status, 200, JSON.stringify(accepted.body));
  const failed = await until("cannot-upload", "Failed");
  assert.match(
    String(failed.FailureReason),
    /^ClientError: Artifact upload failed: Access Denied \(403\) writing s3:\/\/fake-sagemaker-bucket\/sagemaker\/runs\/cannot-upload\/output\/model\.tar\.gz/,
  );
  assert.deepEqual(statuses(failed), ["Starting", "Downloading", "Training", "Uploading", "Failed"]);
});
