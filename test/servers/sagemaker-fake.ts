/**
 * A fake SageMaker for tests, because moto reports every training job
 * Completed at once, writes no model and cannot stop a job.
 *
 * It speaks SageMaker's wire protocol (awsJson1_1: POST / with
 * `X-Amz-Target: SageMaker.<Operation>`) and checks every request body against
 * botocore's published SageMaker model (service-2.json, read from this
 * machine's botocore): required members, unknown members, types, enums,
 * lengths, ranges and patterns, so a client that drifts from the real API
 * fails here as it would there. Requests without SigV4 authorization are refused.
 *
 * Each job steps through SageMaker's lifecycle (InProgress: Starting →
 * Downloading → Training → Uploading; then Completed, Failed or Stopped) by
 * really running the pushed image with the local container runner's
 * `docker run IMAGE train` and an /opt/ml laid out as SageMaker lays it out:
 * input channels are downloaded from S3, the container's output goes to
 * CloudWatch Logs (/aws/sagemaker/TrainingJobs, JOB/algo-1-EPOCH), and
 * model.tar.gz and output.tar.gz are uploaded where S3ModelArtifacts points.
 * S3 and CloudWatch Logs are moto's.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { gunzipSync } from "node:zlib";
import { CloudWatchLogsClient, CreateLogGroupCommand, CreateLogStreamCommand, PutLogEventsCommand } from "@aws-sdk/client-cloudwatch-logs";
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { contractConfigFiles } from "../../src/package/contract.js";
import { docker, trainingRunArgs } from "../../src/package/docker.js";
import { packFolder } from "../../src/storage/archive.js";

type Json = unknown;
interface Shape {
  type: string;
  members?: Record<string, { shape: string }>;
  required?: string[];
  member?: { shape: string };
  key?: { shape: string };
  value?: { shape: string };
  enum?: string[];
  min?: number;
  max?: number;
  pattern?: string;
}
interface Model {
  shapes: Record<string, Shape>;
  operations: Record<string, { input?: { shape: string } }>;
}

/** botocore's SageMaker model, from this machine's botocore. */
function loadModel(): Model {
  const found = spawnSync("python3", ["-c", "import botocore, os; print(os.path.dirname(botocore.__file__))"], { encoding: "utf8" });
  if (found.status !== 0) throw new Error(`botocore is needed for the SageMaker model: ${found.stderr}`);
  const dir = path.join(found.stdout.trim(), "data", "sagemaker");
  const version = fs.readdirSync(dir).sort().at(-1)!;
  const file = path.join(dir, version, "service-2.json");
  const text = fs.existsSync(file) ? fs.readFileSync(file) : gunzipSync(fs.readFileSync(`${file}.gz`));
  return JSON.parse(text.toString("utf8")) as Model;
}

const patterns = new Map<string, RegExp | null>();
/** A botocore pattern as a whole-value RegExp, or null when JavaScript cannot read it. */
function patternOf(pattern: string): RegExp | null {
  if (!patterns.has(pattern)) {
    try {
      patterns.set(pattern, new RegExp(`^(?:${pattern})$`, "u"));
    } catch {
      patterns.set(pattern, null);
    }
  }
  return patterns.get(pattern)!;
}

/** Every way `value` breaks shape `name`, with its path. */
export function validate(model: Model, name: string, value: Json, where: string, problems: string[]): void {
  const shape = model.shapes[name];
  if (!shape) return void problems.push(`${where}: unknown shape ${name}`);
  const at = where || "(request)";
  switch (shape.type) {
    case "structure": {
      if (typeof value !== "object" || value === null || Array.isArray(value)) return void problems.push(`${at}: expected an object`);
      const object = value as Record<string, Json>;
      for (const required of shape.required ?? []) if (!(required in object)) problems.push(`${where ? where + "." : ""}${required}: required`);
      for (const [key, member] of Object.entries(object)) {
        const spec = shape.members?.[key];
        if (!spec) problems.push(`${where ? where + "." : ""}${key}: not a member of ${name}`);
        else validate(model, spec.shape, member, `${where ? where + "." : ""}${key}`, problems);
      }
      return;
    }
    case "list": {
      if (!Array.isArray(value)) return void problems.push(`${at}: expected a list`);
      if (shape.min !== undefined && value.length < shape.min) problems.push(`${at}: at least ${shape.min} items`);
      if (shape.max !== undefined && value.length > shape.max) problems.push(`${at}: at most ${shape.max} items`);
      value.forEach((item, index) => validate(model, shape.member!.shape, item, `${at}[${index}]`, problems));
      return;
    }
    case "map": {
      if (typeof value !== "object" || value === null || Array.isArray(value)) return void problems.push(`${at}: expected a map`);
      const entries = Object.entries(value as Record<string, Json>);
      if (shape.max !== undefined && entries.length > shape.max) problems.push(`${at}: at most ${shape.max} entries`);
      for (const [key, item] of entries) {
        validate(model, shape.key!.shape, key, `${at}{key ${key}}`, problems);
        validate(model, shape.value!.shape, item, `${at}.${key}`, problems);
      }
      return;
    }
    case "string": {
      if (typeof value !== "string") return void problems.push(`${at}: expected text`);
      if (shape.enum && !shape.enum.includes(value)) return void problems.push(`${at}: ${JSON.stringify(value)} is not one of ${shape.enum.length > 12 ? `the ${shape.enum.length} values of ${name}` : shape.enum.join(", ")}`);
      if (shape.min !== undefined && value.length < shape.min) problems.push(`${at}: at least ${shape.min} characters`);
      if (shape.max !== undefined && value.length > shape.max) problems.push(`${at}: at most ${shape.max} characters`);
      const pattern = shape.pattern ? patternOf(shape.pattern) : null;
      if (pattern && !pattern.test(value)) problems.push(`${at}: ${JSON.stringify(value)} does not match ${shape.pattern}`);
      return;
    }
    case "integer":
    case "long": {
      if (typeof value !== "number" || !Number.isInteger(value)) return void problems.push(`${at}: expected a whole number`);
      if (shape.min !== undefined && value < shape.min) problems.push(`${at}: at least ${shape.min}`);
      if (shape.max !== undefined && value > shape.max) problems.push(`${at}: at most ${shape.max}`);
      return;
    }
    case "float":
    case "double":
      if (typeof value !== "number") problems.push(`${at}: expected a number`);
      return;
    case "boolean":
      if (typeof value !== "boolean") problems.push(`${at}: expected true or false`);
      return;
    case "timestamp":
      if (typeof value !== "number" && typeof value !== "string") problems.push(`${at}: expected a timestamp`);
      return;
    default:
      return;
  }
}

/** An error as SageMaker's JSON protocol sends it. */
class ApiError extends Error {
  constructor(
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

interface Transition {
  Status: string;
  StartTime: number;
  EndTime?: number;
  StatusMessage: string;
}

interface Job {
  request: Record<string, Json>;
  arn: string;
  status: "InProgress" | "Completed" | "Failed" | "Stopping" | "Stopped";
  secondary: string;
  transitions: Transition[];
  created: number;
  modified: number;
  trainingStart?: number;
  trainingEnd?: number;
  billable?: number;
  failureReason?: string;
  model?: string;
  stopRequested: boolean;
  container: string;
}

/** A forced outcome for one job name, so a test need not run a container. */
export interface Scripted {
  /** Fail at this secondary status with this reason. */
  failAt?: "Starting" | "Downloading" | "Training";
  reason?: string;
  /** Stay in Training this long (or until stopped) before completing with no model. */
  trainSeconds?: number;
}

/** A running fake SageMaker. */
export interface FakeSageMaker {
  url: string;
  /** Every accepted request, in order: the operation and its JSON body. */
  requests: { target: string; body: Record<string, Json> }[];
  /** Force the outcome of the job named `name` (set before it is created). */
  script(name: string, outcome: Scripted): void;
  stop(): Promise<void>;
}

const ACCOUNT = "123456789012";
const now = (): number => Date.now() / 1000;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Start the fake on a free loopback port; S3 and CloudWatch Logs go to the moto at `options.moto`. */
export async function startFakeSageMaker(options: { moto: string; dockerEnv: Record<string, string | undefined>; region?: string; accessKeyId?: string }): Promise<FakeSageMaker> {
  const model = loadModel();
  const region = options.region ?? "us-east-1";
  const accessKeyId = options.accessKeyId ?? "testing";
  const clientConfig = { region, endpoint: options.moto, credentials: { accessKeyId: "testing", secretAccessKey: "testing" } };
  const s3 = new S3Client({ ...clientConfig, forcePathStyle: true });
  const logs = new CloudWatchLogsClient(clientConfig);
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "fake-sagemaker-"));
  const jobs = new Map<string, Job>();
  const scripts = new Map<string, Scripted>();
  const requests: FakeSageMaker["requests"] = [];
  const running = new Set<Promise<void>>();

  const step = (job: Job, secondary: string, message: string): void => {
    const at = now();
    const last = job.transitions.at(-1);
    if (last) last.EndTime = at;
    job.transitions.push({ Status: secondary, StartTime: at, StatusMessage: message });
    job.secondary = secondary;
    job.modified = at;
  };
  const end = (job: Job, status: Job["status"], secondary: string, message: string): void => {
    step(job, secondary, message);
    job.transitions.at(-1)!.EndTime = now();
    job.status = status;
    job.trainingEnd ??= now();
  };

  const parseS3 = (uri: string): { Bucket: string; Key: string } => {
    const match = /^s3:\/\/([^/]+)\/?(.*)$/.exec(uri)!;
    return { Bucket: match[1]!, Key: match[2]! };
  };

  /** Download every object under each S3 channel into input/data/CHANNEL. */
  const download = async (job: Job, ml: string): Promise<void> => {
    for (const channel of (job.request.InputDataConfig as { ChannelName: string; DataSource: { S3DataSource?: { S3Uri: string } } }[] | undefined) ?? []) {
      const source = channel.DataSource.S3DataSource;
      if (!source) continue;
      const { Bucket, Key } = parseS3(source.S3Uri);
      const listed = await s3.send(new ListObjectsV2Command({ Bucket, Prefix: Key }));
      for (const object of listed.Contents ?? []) {
        const relative = object.Key!.slice(Key.length).replace(/^\//, "") || path.basename(object.Key!);
        const target = path.join(ml, "input", "data", channel.ChannelName, relative);
        fs.mkdirSync(path.dirname(target), { recursive: true });
        const body = await s3.send(new GetObjectCommand({ Bucket, Key: object.Key! }));
        fs.writeFileSync(target, Buffer.from(await body.Body!.transformToByteArray()));
      }
    }
  };

  /** Run the image; its lines go to CloudWatch Logs as they come. Returns the exit code. */
  const train = async (job: Job, ml: string): Promise<number | null> => {
    const name = job.request.TrainingJobName as string;
    const group = "/aws/sagemaker/TrainingJobs";
    const stream = `${name}/algo-1-${Math.floor(now())}`;
    await logs.send(new CreateLogGroupCommand({ logGroupName: group })).catch(() => {});
    await logs.send(new CreateLogStreamCommand({ logGroupName: group, logStreamName: stream }));
    let pending: { timestamp: number; message: string }[] = [];
    let flushing = Promise.resolve();
    const flush = (): Promise<void> => {
      const events = pending;
      pending = [];
      if (events.length) flushing = flushing.then(() => logs.send(new PutLogEventsCommand({ logGroupName: group, logStreamName: stream, logEvents: events })).then(() => {}));
      return flushing;
    };
    const timer = setInterval(() => void flush(), 200);
    const env = (job.request.Environment as Record<string, string> | undefined) ?? {};
    const args = trainingRunArgs({ image: (job.request.AlgorithmSpecification as { TrainingImage: string }).TrainingImage, name: job.container, ml, env });
    const maxRuntime = (job.request.StoppingCondition as { MaxRuntimeInSeconds?: number } | undefined)?.MaxRuntimeInSeconds ?? 86400;
    const deadline = setTimeout(() => {
      job.failureReason = "MaxRuntimeExceeded";
      void docker(["stop", "--time", "5", job.container], { env: options.dockerEnv });
    }, maxRuntime * 1000);
    try {
      const result = await docker(args, { env: { ...options.dockerEnv, ...env }, onLine: (line) => pending.push({ timestamp: Date.now(), message: line }) });
      return result.code;
    } finally {
      clearTimeout(deadline);
      clearInterval(timer);
      await flush();
    }
  };

  const upload = async (folder: string, uri: string, scratchDir: string): Promise<boolean> => {
    const archive = path.join(scratchDir, path.basename(uri));
    if ((await packFolder(folder, archive)) === 0) return false;
    await s3.send(new PutObjectCommand({ ...parseS3(uri), Body: fs.readFileSync(archive) }));
    return true;
  };

  const lifecycle = async (job: Job): Promise<void> => {
    const name = job.request.TrainingJobName as string;
    const scripted = scripts.get(name);
    const ml = fs.mkdtempSync(path.join(scratch, `${name}-`));
    try {
      step(job, "Starting", "Preparing the instances for training");
      await sleep(100);
      if (scripted?.failAt === "Starting") return end(job, "Failed", "Failed", (job.failureReason = scripted.reason ?? "CapacityError: Unable to provision requested ML compute capacity."));
      step(job, "Downloading", "Downloading input data");
      for (const sub of ["model", "output/data", "input/config", "checkpoints"]) fs.mkdirSync(path.join(ml, sub), { recursive: true });
      const channels = ((job.request.InputDataConfig as { ChannelName: string }[] | undefined) ?? []).map((channel) => channel.ChannelName);
      for (const [file, content] of Object.entries(contractConfigFiles({ hyperparameters: {}, channels }))) fs.writeFileSync(path.join(ml, "input", "config", file), JSON.stringify(content));
      fs.writeFileSync(path.join(ml, "input", "config", "hyperparameters.json"), JSON.stringify(job.request.HyperParameters ?? {}));
      await download(job, ml);
      if (scripted?.failAt === "Downloading") return end(job, "Failed", "Failed", (job.failureReason = scripted.reason ?? "ClientError: Data download failed."));
      step(job, "Training", "Training image download completed. Training in progress.");
      job.trainingStart = now();
      let code: number | null;
      if (scripted) {
        const until = Date.now() + (scripted.trainSeconds ?? 0) * 1000;
        while (Date.now() < until && !job.stopRequested) await sleep(50);
        code = scripted.failAt === "Training" ? 1 : 0;
      } else {
        code = await train(job, ml);
      }
      job.trainingEnd = now();
      job.billable = Math.max(1, Math.round(job.trainingEnd - job.trainingStart));
      if (job.request.EnableManagedSpotTraining) job.billable = Math.max(1, Math.round(job.billable * 0.3));
      if (job.stopRequested) return end(job, "Stopped", "Stopped", "Training job stopped");
      if (job.failureReason === "MaxRuntimeExceeded") return end(job, "Stopped", "MaxRuntimeExceeded", "Job stopped because it exceeded the maximum allowed runtime");
      if (code !== 0) {
        let said = scripted?.reason;
        try {
          said ??= fs.readFileSync(path.join(ml, "output", "failure"), "utf8").trim();
        } catch {
          said ??= "the training process failed";
        }
        return end(job, "Failed", "Failed", (job.failureReason = `AlgorithmError: ${said}, exit code: ${code}`));
      }
      step(job, "Uploading", "Uploading generated training model");
      const output = `${(job.request.OutputDataConfig as { S3OutputPath: string }).S3OutputPath.replace(/\/+$/, "")}/${name}/output`;
      await upload(path.join(ml, "model"), `${output}/model.tar.gz`, scratch);
      job.model = `${output}/model.tar.gz`;
      await upload(path.join(ml, "output", "data"), `${output}/output.tar.gz`, scratch);
      const checkpoint = job.request.CheckpointConfig as { S3Uri: string } | undefined;
      if (checkpoint) {
        for (const file of fs.readdirSync(path.join(ml, "checkpoints"))) {
          await s3.send(new PutObjectCommand({ ...parseS3(`${checkpoint.S3Uri.replace(/\/+$/, "")}/${file}`), Body: fs.readFileSync(path.join(ml, "checkpoints", file)) }));
        }
      }
      end(job, "Completed", "Completed", "Training job completed");
    } catch (err) {
      end(job, "Failed", "Failed", (job.failureReason = `InternalServerError: ${(err as Error).message}`));
    } finally {
      fs.rmSync(ml, { recursive: true, force: true });
    }
  };

  const describe = (job: Job): Record<string, Json> => {
    const request = job.request;
    const answer: Record<string, Json> = {
      TrainingJobName: request.TrainingJobName,
      TrainingJobArn: job.arn,
      TrainingJobStatus: job.status,
      SecondaryStatus: job.secondary,
      SecondaryStatusTransitions: job.transitions,
      AlgorithmSpecification: request.AlgorithmSpecification,
      RoleArn: request.RoleArn,
      OutputDataConfig: request.OutputDataConfig,
      ResourceConfig: request.ResourceConfig,
      StoppingCondition: request.StoppingCondition,
      HyperParameters: request.HyperParameters ?? {},
      EnableManagedSpotTraining: request.EnableManagedSpotTraining ?? false,
      CreationTime: job.created,
      LastModifiedTime: job.modified,
      ModelArtifacts: { S3ModelArtifacts: job.model ?? "" },
    };
    for (const key of ["InputDataConfig", "Environment", "CheckpointConfig"]) if (request[key] !== undefined) answer[key] = request[key];
    if (job.failureReason && job.status === "Failed") answer.FailureReason = job.failureReason;
    if (job.trainingStart) answer.TrainingStartTime = job.trainingStart;
    if (job.trainingEnd && job.status !== "InProgress") answer.TrainingEndTime = job.trainingEnd;
    if (job.billable !== undefined && job.status !== "InProgress") {
      answer.BillableTimeInSeconds = job.billable;
      answer.TrainingTimeInSeconds = Math.max(1, Math.round((job.trainingEnd ?? now()) - (job.trainingStart ?? now())));
    }
    return answer;
  };

  const find = (name: unknown): Job => {
    const job = jobs.get(String(name));
    if (!job) throw new ApiError("ValidationException", "Requested resource not found.");
    return job;
  };

  const operations: Record<string, (body: Record<string, Json>) => Json> = {
    CreateTrainingJob: (body) => {
      const name = body.TrainingJobName as string;
      if (jobs.has(name)) throw new ApiError("ResourceInUse", `Training job names must be unique within an AWS account and region, and a training job with this name already exists (arn:aws:sagemaker:${region}:${ACCOUNT}:training-job/${name})`);
      const created = now();
      const job: Job = { request: body, arn: `arn:aws:sagemaker:${region}:${ACCOUNT}:training-job/${name}`, status: "InProgress", secondary: "Starting", transitions: [], created, modified: created, stopRequested: false, container: `fake-sagemaker-${name}` };
      jobs.set(name, job);
      const run = lifecycle(job);
      running.add(run);
      void run.finally(() => running.delete(run));
      return { TrainingJobArn: job.arn };
    },
    DescribeTrainingJob: (body) => describe(find(body.TrainingJobName)),
    StopTrainingJob: (body) => {
      const job = find(body.TrainingJobName);
      if (job.status !== "InProgress") throw new ApiError("ValidationException", `The request was rejected because the training job is in status ${job.status}.`);
      job.stopRequested = true;
      job.status = "Stopping";
      step(job, "Stopping", "Stopping the training job");
      void docker(["stop", "--time", "5", job.container], { env: options.dockerEnv });
      return {};
    },
    ListTrainingJobs: (body) => {
      let list = [...jobs.values()];
      if (body.NameContains) list = list.filter((job) => String(job.request.TrainingJobName).includes(String(body.NameContains)));
      if (body.StatusEquals) list = list.filter((job) => job.status === body.StatusEquals);
      const key = body.SortBy === "Name" ? (job: Job) => String(job.request.TrainingJobName) : (job: Job) => job.created;
      list.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0) * (body.SortOrder === "Ascending" ? 1 : -1));
      const start = Number(body.NextToken ?? 0);
      const size = Number(body.MaxResults ?? 10);
      const page = list.slice(start, start + size);
      return {
        TrainingJobSummaries: page.map((job) => ({ TrainingJobName: job.request.TrainingJobName, TrainingJobArn: job.arn, CreationTime: job.created, LastModifiedTime: job.modified, TrainingJobStatus: job.status, ...(job.trainingEnd && job.status !== "InProgress" ? { TrainingEndTime: job.trainingEnd } : {}) })),
        ...(start + size < list.length ? { NextToken: String(start + size) } : {}),
      };
    },
    ListTags: (body) => {
      const job = [...jobs.values()].find((candidate) => candidate.arn === body.ResourceArn);
      if (!job) throw new ApiError("ValidationException", "Requested resource not found.");
      return { Tags: job.request.Tags ?? [] };
    },
  };

  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const send = (status: number, body: Json): void => {
        response.writeHead(status, { "Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": `fake-${Date.now()}` });
        response.end(JSON.stringify(body));
      };
      try {
        const target = String(request.headers["x-amz-target"] ?? "");
        if (request.method !== "POST" || !target.startsWith("SageMaker.")) throw new ApiError("UnknownOperationException", `not a SageMaker request: ${request.method} ${target}`);
        const authorization = String(request.headers.authorization ?? "");
        if (!authorization.startsWith("AWS4-HMAC-SHA256 ") || !authorization.includes(`Credential=${accessKeyId}/`)) throw new ApiError("UnrecognizedClientException", "The security token included in the request is invalid.");
        const operation = target.slice("SageMaker.".length);
        const handler = operations[operation];
        const definition = model.operations[operation];
        if (!handler || !definition) throw new ApiError("UnknownOperationException", `the fake does not do ${operation}`);
        const body = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}") as Record<string, Json>;
        const problems: string[] = [];
        if (definition.input) validate(model, definition.input.shape, body, "", problems);
        if (problems.length) throw new ApiError("ValidationException", `${problems.length} validation error(s) detected: ${problems.join("; ")}`);
        requests.push({ target: operation, body });
        send(200, handler(body));
      } catch (err) {
        if (err instanceof ApiError) send(400, { __type: err.type, message: err.message });
        else send(500, { __type: "InternalFailure", message: (err as Error).message });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    script: (name, outcome) => void scripts.set(name, outcome),
    stop: async () => {
      for (const job of jobs.values()) {
        if (job.status === "InProgress" || job.status === "Stopping") {
          job.stopRequested = true;
          await docker(["rm", "--force", job.container], { env: options.dockerEnv }).catch(() => {});
        }
      }
      await Promise.allSettled([...running]);
      await new Promise<void>((resolve) => server.close(() => resolve()));
      s3.destroy();
      logs.destroy();
      fs.rmSync(scratch, { recursive: true, force: true });
    },
  };
}
