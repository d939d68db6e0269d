/**
 * A fake SageMaker for tests (moto's SageMaker reports every training job
 * Completed at once, writes no model and has no StopTrainingJob).
 *
 * Why it can be trusted: it speaks SageMaker's own wire protocol (awsJson1_1:
 * `POST /`, `X-Amz-Target: SageMaker.<Operation>`, Content-Type
 * `application/x-amz-json-1.1`, errors as `{"__type", "message"}`), refuses
 * unsigned requests and ones signed for another key, region or service, and
 * checks every request body against botocore's published SageMaker model
 * (data/sagemaker/2017-07-24/service-2.json.gz, read at start from this
 * machine's botocore, never copied here): required members, unknown members,
 * types, enums, unions, list/map/string lengths, numeric ranges and string
 * patterns (with SageMaker's whole-value Java matching, the Java-only pieces
 * of a few patterns rewritten for JavaScript). A client that drifts from the
 * real API is refused here as it would be there, with the offending path
 * named (`ResourceConfig.InstanceType: "ml.nope" is not one of [...]`).
 *
 * Each job steps through SageMaker's lifecycle on its own after
 * CreateTrainingJob returns: InProgress (Starting → Downloading → Training →
 * Uploading), then Completed, Failed, or Stopping → Stopped (also for
 * MaxRuntimeExceeded), every step in SecondaryStatusTransitions with the
 * messages the real service writes. It lays out /opt/ml in a temporary
 * folder as SageMaker does (input/config/*.json, S3 channels downloaded into
 * input/data/CHANNEL), runs the pushed image with the local container
 * runner's `docker run ... IMAGE train`, sends every line the container
 * prints to CloudWatch Logs (/aws/sagemaker/TrainingJobs, JOB/algo-N-EPOCH),
 * and uploads model.tar.gz (and output.tar.gz when /opt/ml/output/data holds
 * something) to S3ModelArtifacts' place. ResourceConfig.InstanceCount > 1
 * runs one container per host, algo-1 … algo-N, each with its own /opt/ml and
 * resourceconfig.json, on a Docker network of the job's own where each host's
 * name resolves; every host's /opt/ml/model (and output/data) goes into the one
 * model.tar.gz (output.tar.gz), as SageMaker aggregates them: "If multiple
 * containers in a single training job write to this directory they should
 * ensure no file/directory names clash. SageMaker AI aggregates the result in
 * a TAR file" (docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo-output.html).
 * The first host to fail fails the job, and the others are stopped. S3 and CloudWatch Logs are moto's.
 * `script()` forces a job's outcome without Docker, for quick tests of the
 * Failed and Stopped paths.
 *
 * Where the real service would refuse or fail what a local run accepts, so
 * does this fake:
 * - the role: CreateTrainingJob refuses a role that does not exist, does not
 *   trust sagemaker.amazonaws.com, or was created less than
 *   `roleSettleSeconds` ago, counted from no earlier than the first job that
 *   names it (IAM is eventually consistent:
 *   https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency),
 *   with SageMaker's "Could not assume role" ValidationException;
 * - ECR pulls: CreateTrainingJob refuses an image whose repository the role's
 *   policies do not let it pull, with "Access denied for repository: REPO in
 *   registry ID: ACCOUNT." (as reported in aws/sagemaker-spark-container#158);
 * - S3: the role's policies (moto's IAM, read fresh at each step and
 *   evaluated by test/servers/iam-policy.ts) must allow s3:ListBucket and
 *   s3:GetObject on the inputs and s3:PutObject where the model goes, else the
 *   job fails with a ClientError (AWS's documented training-role permissions:
 *   https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html#sagemaker-roles-createtrainingjob-perms);
 * - the image, read back from the registry before it is pulled: an OCI
 *   manifest or an index fails the job with "Unsupported manifest media type
 *   … Ensure that valid manifest media type is used for specified image."
 *   (aws/amazon-sagemaker-feedback#180, moby/buildkit#5480, mlflow/mlflow#13834),
 *   and a config for another platform than linux/amd64 fails it with "exec
 *   format error", as an arm64 image built on an Apple-Silicon Mac does on
 *   SageMaker's x86-64 instances (aws/deep-learning-containers#1157,
 *   aws-samples/sagemaker-studio-custom-image-samples#28).
 */
import { spawnSync } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { gunzipSync } from "node:zlib";
import { CloudWatchLogsClient, CreateLogGroupCommand, CreateLogStreamCommand, PutLogEventsCommand } from "@aws-sdk/client-cloudwatch-logs";
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import {
  GetPolicyCommand,
  GetPolicyVersionCommand,
  GetRoleCommand,
  GetRolePolicyCommand,
  IAMClient,
  ListAttachedRolePoliciesCommand,
  ListRolePoliciesCommand,
} from "@aws-sdk/client-iam";
import { policiesAllow } from "./iam-policy.js";
import { ML_ROOT } from "../../src/package/contract.js";
import { docker, trainingRunArgs, type ContainerMount } from "../../src/package/docker.js";
import { packFolder } from "../../src/storage/archive.js";
import { validate, type Model } from "../../src/backends/sagemaker/model.js";

type Json = unknown;

export { javaPatternToJs, patternOf, validate, type Model, type Shape } from "../../src/backends/sagemaker/model.js";

// ---------------------------------------------------------------- botocore's model

let loaded: Model | undefined;

/** botocore's SageMaker model, from this machine's botocore (loaded once per process). */
export function sagemakerModel(): Model {
  if (loaded) return loaded;
  const found = spawnSync("python3", ["-c", "import botocore, os; print(os.path.dirname(botocore.__file__))"], { encoding: "utf8" });
  if (found.status !== 0)
    throw new Error(`the fake SageMaker needs botocore (pip install botocore) for SageMaker's published model: ${found.stderr || found.error?.message}`);
  const dir = path.join(found.stdout.trim(), "data", "sagemaker");
  const version = fs.readdirSync(dir).sort().at(-1)!;
  const file = path.join(dir, version, "service-2.json");
  const text = fs.existsSync(file) ? fs.readFileSync(file) : gunzipSync(fs.readFileSync(`${file}.gz`));
  loaded = JSON.parse(text.toString("utf8")) as Model;
  return loaded;
}

// ---------------------------------------------------------------- the service

/** An error as SageMaker's JSON protocol sends it: HTTP `status`, body `{"__type": type, "message": message}`. */
class ApiError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

/** A step the role's policies do not allow; its message is the job's failure reason. */
class DeniedError extends Error {}

type TrainingJobStatus = "InProgress" | "Completed" | "Failed" | "Stopping" | "Stopped";

interface Transition {
  Status: string;
  StartTime: number;
  EndTime?: number;
  StatusMessage: string;
}

interface Tag {
  Key: string;
  Value: string;
}

interface Channel {
  ChannelName: string;
  DataSource: { S3DataSource?: { S3DataType: string; S3Uri: string; S3DataDistributionType?: string }; [other: string]: Json };
  ContentType?: string;
  InputMode?: string;
  RecordWrapperType?: string;
}

interface Job {
  name: string;
  request: Record<string, Json>;
  arn: string;
  status: TrainingJobStatus;
  secondary: string;
  transitions: Transition[];
  created: number;
  modified: number;
  trainingStart?: number;
  trainingEnd?: number;
  failureReason?: string;
  /** Where model.tar.gz goes (ModelArtifacts.S3ModelArtifacts, reported from the start as SageMaker does). */
  model: string;
  tags: Tag[];
  /** Why the job is stopping, once it is. */
  stop?: "requested" | "maxRuntime";
  /** The training containers (one per host), once `docker run` has been started. */
  containers: Array<{ name: string; running: boolean }>;
  scripted?: Scripted;
}

/** A forced outcome for one job, so a test need not run a container (set with `script()` before the job is created). */
export interface Scripted {
  /** Fail at this secondary status. At Training the FailureReason reads `AlgorithmError: REASON, exit code: 1`, as a container's would. */
  failAt?: "Starting" | "Downloading" | "Training";
  /** The failure's reason (a SageMaker-like default otherwise). */
  reason?: string;
  /** Stay in Training this long (or until stopped, or MaxRuntimeInSeconds passes); 0 when not set. */
  trainSeconds?: number;
  /** Lines the job "prints", sent to CloudWatch Logs as a container's are. */
  logLines?: string[];
  /** Files (path relative to /opt/ml/model → content) the job "writes", uploaded as model.tar.gz. */
  model?: Record<string, string>;
}

/** What `startFakeSageMaker` needs. */
export interface FakeSageMakerOptions {
  /** moto's URL: the fake reads input channels from and writes models to its S3, and logs to its CloudWatch Logs. */
  moto: string;
  /** The environment of the `docker` program that pulls and runs training images (DOCKER_HOST). */
  dockerEnv: Record<string, string | undefined>;
  /** The region in ARNs and in the credential scope requests must be signed for (us-east-1). */
  region?: string;
  /** The access key ID requests must be signed with (testing). */
  accessKeyId?: string;
  /** Seconds `docker stop` gives a stopped container after SIGTERM (SageMaker gives 120; 5 here). */
  stopGraceSeconds?: number;
  /** For how long after its creation SageMaker cannot assume a role yet (IAM spreading it); 0 by default. */
  roleSettleSeconds?: number;
}

/** A running fake SageMaker. */
export interface FakeSageMaker {
  /** Its endpoint: set AWS_ENDPOINT_URL_SAGEMAKER to it. */
  url: string;
  /** Every request that was answered with success, in order: the operation (`CreateTrainingJob`) and its JSON body. */
  requests: Array<{ target: string; body: Record<string, Json> }>;
  /** Every request refused with an error, in order: the operation and the error's type and message. */
  refused: Array<{ target: string; type: string; message: string }>;
  /** From now on, refuse to assume a role for this many seconds after its creation, counted from no earlier than the first job that names it (IAM spreading it). */
  setRoleSettleSeconds(seconds: number): void;
  /** Force the outcome of the job that will be created as `jobName` (no container runs for it). */
  script(jobName: string, outcome: Scripted): void;
  /** Stop every job's container, close the server, remove its temporary folders. */
  stop(): Promise<void>;
}

const ACCOUNT = "123456789012";
const LOG_GROUP = "/aws/sagemaker/TrainingJobs";
const FAILURE_REASON_MAX = 1024;
const now = (): number => Date.now() / 1000;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function parseS3(uri: string): { Bucket: string; Key: string } {
  const match = /^s3:\/\/([^/]+)\/?(.*)$/.exec(uri);
  if (!match) throw new ApiError("ValidationException", `${uri} is not an s3:// URI the fake can read`);
  return { Bucket: match[1]!, Key: match[2]! };
}

function joinS3(uri: string, ...parts: string[]): string {
  return [uri.replace(/\/+$/, ""), ...parts].join("/");
}

/** Regular files under `dir`, relative, with forward slashes. */
function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true }) as string[])
    .filter((entry) => fs.lstatSync(path.join(dir, entry)).isFile())
    .map((entry) => entry.split(path.sep).join("/"))
    .sort();
}

/** Start the fake on a free loopback port. */
export async function startFakeSageMaker(options: FakeSageMakerOptions): Promise<FakeSageMaker> {
  const model = sagemakerModel();
  const region = options.region ?? "us-east-1";
  const accessKeyId = options.accessKeyId ?? "testing";
  const grace = options.stopGraceSeconds ?? 5;
  const client = { region, endpoint: options.moto, credentials: { accessKeyId: "testing", secretAccessKey: "testing" } };
  const s3 = new S3Client({ ...client, forcePathStyle: true });
  const logs = new CloudWatchLogsClient(client);
  const iam = new IAMClient(client);
  let settle = options.roleSettleSeconds ?? 0;
  // Each role's first CreateTrainingJob try, for the settle window (below).
  const firstTry = new Map<string, number>();
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "fake-sagemaker-"));
  const closing = new AbortController();
  const jobs = new Map<string, Job>();
  const scripts = new Map<string, Scripted>();
  const requests: FakeSageMaker["requests"] = [];
  const refused: FakeSageMaker["refused"] = [];
  const running = new Set<Promise<void>>();

  // -------------------------------------------------------------- the role and the image, as SageMaker sees them

  const decode = (text: string | undefined): { Statement: unknown } =>
    JSON.parse(decodeURIComponent(text ?? "%7B%22Statement%22%3A%5B%5D%7D")) as { Statement: unknown };
  const roleName = (arn: string): string => arn.split(":role/")[1]?.split("/").pop() ?? "";
  /** The role's identity policies as IAM (moto) holds them now: inline and attached. */
  const rolePolicies = async (arn: string): Promise<Array<{ Statement: unknown }>> => {
    const name = roleName(arn);
    const documents: Array<{ Statement: unknown }> = [];
    for (const policyName of (await iam.send(new ListRolePoliciesCommand({ RoleName: name }))).PolicyNames ?? []) {
      documents.push(decode((await iam.send(new GetRolePolicyCommand({ RoleName: name, PolicyName: policyName }))).PolicyDocument));
    }
    for (const attached of (await iam.send(new ListAttachedRolePoliciesCommand({ RoleName: name }))).AttachedPolicies ?? []) {
      const policy = await iam.send(new GetPolicyCommand({ PolicyArn: attached.PolicyArn }));
      documents.push(
        decode(
          (await iam.send(new GetPolicyVersionCommand({ PolicyArn: attached.PolicyArn, VersionId: policy.Policy?.DefaultVersionId }))).PolicyVersion?.Document,
        ),
      );
    }
    return documents;
  };
  const roleMay = async (job: Job, action: string, resource: string): Promise<boolean> =>
    policiesAllow(await rolePolicies(String(job.request.RoleArn)), action, resource);
  const objectArn = (uri: string): string => {
    const { Bucket, Key } = parseS3(uri);
    return `arn:aws:s3:::${Bucket}/${Key}`;
  };

  /** SageMaker assumes the role when the job is created: it must exist, trust SageMaker, and have had time to spread through IAM. */
  const assumeRole = async (arn: string): Promise<void> => {
    const refuse = (): never => {
      throw new ApiError(
        "ValidationException",
        `Could not assume role ${arn}. Please ensure that the role exists and allows principal 'sagemaker.amazonaws.com' to assume the role.`,
      );
    };
    let role;
    try {
      role = (await iam.send(new GetRoleCommand({ RoleName: roleName(arn) }))).Role;
    } catch {
      return refuse();
    }
    if (!role || role.Arn !== arn || !decodeURIComponent(role.AssumeRolePolicyDocument ?? "").includes("sagemaker.amazonaws.com")) return refuse();
    if (role.CreateDate && settle > 0) {
      // The window starts at the role's creation, as IAM's does, but never before the job's first try with it: how long the
      // client took to build its image (a busy machine) must not decide whether the test sees a refusal.
      if (!firstTry.has(arn)) firstTry.set(arn, Date.now());
      const since = Math.max(new Date(role.CreateDate).getTime(), firstTry.get(arn)!);
      if (Date.now() - since < settle * 1000) return refuse();
    }
  };

  /** The image's registry, repository and digest (REGISTRY/REPOSITORY@sha256:… or :TAG). */
  const imageParts = (image: string): { host: string; repository: string; reference: string } => {
    const slash = image.indexOf("/");
    const rest = image.slice(slash + 1);
    const at = rest.lastIndexOf("@");
    const colon = rest.lastIndexOf(":");
    const cut = at >= 0 ? at : colon >= 0 ? colon : rest.length;
    return {
      host: image.slice(0, slash),
      repository: rest.slice(0, cut),
      reference: at >= 0 ? rest.slice(at + 1) : colon >= 0 ? rest.slice(colon + 1) : "latest",
    };
  };

  /** SageMaker pulls with the role's credentials: it refuses at creation a repository the role may not pull from. */
  const checkPull = async (body: Record<string, Json>): Promise<void> => {
    const image = (body.AlgorithmSpecification as { TrainingImage: string }).TrainingImage;
    const { repository } = imageParts(image);
    const arn = `arn:aws:ecr:${region}:${ACCOUNT}:repository/${repository}`;
    const documents = await rolePolicies(String(body.RoleArn));
    if (
      !["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"].every((action) => policiesAllow(documents, action, arn)) ||
      !policiesAllow(documents, "ecr:GetAuthorizationToken", "*")
    ) {
      throw new ApiError(
        "ValidationException",
        `Access denied for repository: ${repository} in registry ID: ${ACCOUNT}. Please check if your ECR repository and image exist and role ${String(body.RoleArn)} has proper pull permissions for SageMaker: ecr:BatchCheckLayerAvailability, ecr:BatchGetImage, ecr:GetDownloadUrlForLayer`,
      );
    }
  };

  /** What the registry holds for the job's image: why SageMaker could not run it (a job failure reason), or undefined. */
  const imageProblem = async (image: string): Promise<string | undefined> => {
    const { host, repository, reference } = imageParts(image);
    const base = `http://${host}/v2/${repository}`;
    const accept =
      "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.index.v1+json";
    const answer = await fetch(`${base}/manifests/${reference}`, { headers: { Accept: accept } });
    if (!answer.ok) return `ClientError: Requested image ${image} not found.`;
    const manifest = (await answer.json()) as { mediaType?: string; config?: { digest: string } };
    const type = manifest.mediaType ?? answer.headers.get("content-type") ?? "";
    if (type !== "application/vnd.docker.distribution.manifest.v2+json")
      return `ClientError: Unsupported manifest media type ${type} for image ${image}. Ensure that valid manifest media type is used for specified image.`;
    const config = (await (await fetch(`${base}/blobs/${manifest.config!.digest}`)).json()) as { os?: string; architecture?: string };
    if (config.os !== "linux" || config.architecture !== "amd64") return "AlgorithmError: exec /usr/bin/python3: exec format error, exit code: 1";
    return undefined;
  };

  // -------------------------------------------------------------- lifecycle steps

  const step = (job: Job, secondary: string, message: string): void => {
    const at = now();
    const last = job.transitions.at(-1);
    if (last && last.EndTime === undefined) last.EndTime = at;
    job.transitions.push({ Status: secondary, StartTime: at, StatusMessage: message });
    job.secondary = secondary;
    job.modified = at;
  };
  /** The job's last transition: `status` with `secondary`. */
  const finish = (job: Job, status: TrainingJobStatus, secondary: string, message: string): void => {
    if (job.trainingStart !== undefined) job.trainingEnd ??= now();
    step(job, secondary, message);
    job.transitions.at(-1)!.EndTime = job.modified;
    job.status = status;
  };
  const fail = (job: Job, reason: string): void => {
    job.failureReason = reason.length > FAILURE_REASON_MAX ? reason.slice(0, FAILURE_REASON_MAX) : reason;
    finish(job, "Failed", "Failed", job.failureReason);
  };
  /** Stop a job: Stopping now, its container (once there is one) sent SIGTERM, then SIGKILL after the grace period. */
  const requestStop = (job: Job, why: NonNullable<Job["stop"]>): void => {
    if (job.stop || job.status !== "InProgress") return;
    job.stop = why;
    job.status = "Stopping";
    step(job, "Stopping", "Stopping the training job");
    void stopContainer(job);
  };
  const stopContainer = async (job: Job): Promise<void> => {
    // `docker run` may not have created a container yet: try until the run has ended.
    await Promise.all(
      job.containers.map(async (container) => {
        while (container.running) {
          await docker(["stop", "--time", String(grace), container.name], { env: options.dockerEnv }).catch(() => undefined);
          await sleep(200);
        }
      }),
    );
  };
  const halted = (job: Job): boolean => job.stop !== undefined || closing.signal.aborted;

  // -------------------------------------------------------------- /opt/ml

  const channelsOf = (job: Job): Channel[] => (job.request.InputDataConfig as Channel[] | undefined) ?? [];

  /** How many hosts the job has (ResourceConfig.InstanceCount), named algo-1 … algo-N as SageMaker names them. */
  const hostsOf = (job: Job): string[] =>
    Array.from({ length: (job.request.ResourceConfig as { InstanceCount?: number } | undefined)?.InstanceCount ?? 1 }, (_, i) => `algo-${i + 1}`);

  /** input/config as SageMaker writes it on `host`; model, output/data, input/data and checkpoints made. */
  const layout = (job: Job, ml: string, host = "algo-1"): void => {
    for (const sub of ["model", "output/data", "input/config", "input/data", "checkpoints"]) fs.mkdirSync(path.join(ml, sub), { recursive: true });
    const channels = channelsOf(job);
    const instanceType = (job.request.ResourceConfig as { InstanceType?: string } | undefined)?.InstanceType ?? "";
    const inputMode = (job.request.AlgorithmSpecification as { TrainingInputMode?: string } | undefined)?.TrainingInputMode ?? "File";
    // SageMaker writes these itself (docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo-running-container.html);
    // every host in one homogeneous group.
    const hosts = hostsOf(job);
    const files: Record<string, Json> = {
      // The request's HyperParameters as given: SageMaker's are strings already.
      "hyperparameters.json": job.request.HyperParameters ?? {},
      "resourceconfig.json": {
        current_host: host,
        current_instance_type: instanceType,
        current_group_name: "homogeneousCluster",
        hosts,
        instance_groups: [{ instance_group_name: "homogeneousCluster", instance_type: instanceType, hosts }],
        network_interface_name: "eth0",
      },
      "inputdataconfig.json": Object.fromEntries(
        channels.map((channel) => [
          channel.ChannelName,
          {
            TrainingInputMode: channel.InputMode ?? inputMode,
            S3DistributionType: channel.DataSource.S3DataSource?.S3DataDistributionType ?? "FullyReplicated",
            RecordWrapperType: channel.RecordWrapperType ?? "None",
            ...(channel.ContentType ? { ContentType: channel.ContentType } : {}),
          },
        ]),
      ),
    };
    for (const [file, content] of Object.entries(files)) fs.writeFileSync(path.join(ml, "input", "config", file), JSON.stringify(content));
  };

  /** Copy every object under `uri` into `dir` (names relative to the prefix); how many were copied, or undefined when the bucket does not exist. */
  const downloadPrefix = async (uri: string, dir: string, permit?: (key: string) => Promise<void>): Promise<number | undefined> => {
    const { Bucket, Key } = parseS3(uri);
    let count = 0;
    let token: string | undefined;
    do {
      let page;
      try {
        page = await s3.send(new ListObjectsV2Command({ Bucket, Prefix: Key, ContinuationToken: token }), { abortSignal: closing.signal });
      } catch (err) {
        if ((err as Error).name === "NoSuchBucket") return undefined;
        throw err;
      }
      for (const object of page.Contents ?? []) {
        if (!object.Key || object.Key.endsWith("/")) continue;
        const relative = object.Key.slice(Key.length).replace(/^\/+/, "") || path.posix.basename(object.Key);
        const target = path.resolve(dir, relative);
        if (!target.startsWith(dir + path.sep)) continue; // a key with `..` stays out of /opt/ml, as it would on SageMaker's volume
        await permit?.(object.Key);
        fs.mkdirSync(path.dirname(target), { recursive: true });
        const got = await s3.send(new GetObjectCommand({ Bucket, Key: object.Key }), { abortSignal: closing.signal });
        await pipeline(got.Body as Readable, fs.createWriteStream(target));
        count++;
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return count;
  };

  /** Download the S3 channels into input/data/CHANNEL; the failure reason SageMaker would give, if any. */
  const downloadChannels = async (job: Job, ml: string): Promise<string | undefined> => {
    for (const channel of channelsOf(job)) {
      const source = channel.DataSource.S3DataSource;
      if (!source)
        return `ClientError: the fake SageMaker reads S3 channels only, and channel ${channel.ChannelName} has ${Object.keys(channel.DataSource).join(", ")}`;
      if (source.S3DataType !== "S3Prefix")
        return `ClientError: the fake SageMaker reads S3DataType S3Prefix only, not ${source.S3DataType} (channel ${channel.ChannelName})`;
      const { Bucket } = parseS3(source.S3Uri);
      if (!(await roleMay(job, "s3:ListBucket", `arn:aws:s3:::${Bucket}`))) {
        return `ClientError: Data download failed: Access Denied (403) listing s3://${Bucket}: the role ${String(job.request.RoleArn)} may not s3:ListBucket on it (channel ${channel.ChannelName}).`;
      }
      const count = await downloadPrefix(source.S3Uri, path.join(ml, "input", "data", channel.ChannelName), async (key) => {
        if (!(await roleMay(job, "s3:GetObject", `arn:aws:s3:::${Bucket}/${key}`)))
          throw new DeniedError(
            `ClientError: Data download failed: Access Denied (403) reading s3://${Bucket}/${key}: the role ${String(job.request.RoleArn)} may not s3:GetObject on it (channel ${channel.ChannelName}).`,
          );
      });
      if (!count) {
        const { Bucket } = parseS3(source.S3Uri);
        return `ClientError: No S3 objects found under S3 URL "${source.S3Uri}" given in input data source. Please ensure that the bucket exists in the selected region (${region}), that objects exist under that S3 prefix, and that the role ${String(job.request.RoleArn)} has "s3:ListBucket" permissions on bucket "${Bucket}".`;
      }
    }
    return undefined;
  };

  const upload = async (file: string, uri: string): Promise<void> => {
    await s3.send(new PutObjectCommand({ ...parseS3(uri), Body: fs.createReadStream(file), ContentLength: fs.statSync(file).size }), {
      abortSignal: closing.signal,
    });
  };
  /** Pack `folder` to `uri` as a gzip tar (as SageMaker packs /opt/ml/model); false when the folder is empty (nothing is written). */
  const uploadPacked = async (folder: string, uri: string): Promise<boolean> => {
    const archive = path.join(scratch, `${randomUUID()}.tar.gz`);
    try {
      await packFolder(folder, archive);
      if (!fs.existsSync(archive)) return false;
      await upload(archive, uri);
      return true;
    } finally {
      fs.rmSync(archive, { force: true });
    }
  };
  const checkpointUri = (job: Job): string | undefined => (job.request.CheckpointConfig as { S3Uri: string } | undefined)?.S3Uri;
  /** SageMaker syncs /opt/ml/checkpoints to CheckpointConfig.S3Uri while the job runs; here, once it ends. */
  const uploadCheckpoints = async (job: Job, ml: string): Promise<void> => {
    const uri = checkpointUri(job);
    if (!uri || closing.signal.aborted) return;
    for (const file of filesUnder(path.join(ml, "checkpoints"))) await upload(path.join(ml, "checkpoints", file), joinS3(uri, file));
  };

  // -------------------------------------------------------------- CloudWatch Logs

  /** A log stream for the job's container; lines go to CloudWatch Logs in batches, every 200 ms. */
  const openLog = async (job: Job, host = "algo-1"): Promise<{ push(line: string): void; close(): Promise<void> }> => {
    const stream = `${job.name}/${host}-${Math.floor(now())}`;
    await logs.send(new CreateLogGroupCommand({ logGroupName: LOG_GROUP })).catch((err: Error) => {
      if (err.name !== "ResourceAlreadyExistsException") throw err;
    });
    await logs.send(new CreateLogStreamCommand({ logGroupName: LOG_GROUP, logStreamName: stream }));
    const pending: Array<{ timestamp: number; message: string }> = [];
    let sending = Promise.resolve();
    const flush = (): void => {
      while (pending.length) {
        const logEvents = pending.splice(0, 10_000); // PutLogEvents takes at most 10,000 events
        sending = sending
          .then(() => logs.send(new PutLogEventsCommand({ logGroupName: LOG_GROUP, logStreamName: stream, logEvents })))
          .then(
            () => undefined,
            (err: Error) => void process.stderr.write(`fake SageMaker: PutLogEvents for ${stream} failed: ${err.message}\n`),
          );
      }
    };
    const timer = setInterval(flush, 200);
    return {
      push: (line) => {
        // CloudWatch keeps no empty event, and at most 256 KiB of one.
        if (line) pending.push({ timestamp: Date.now(), message: line.slice(0, 200_000) });
      },
      close: async () => {
        clearInterval(timer);
        flush();
        await sending;
      },
    };
  };

  // -------------------------------------------------------------- Training

  /**
   * Run the job's image on every host as SageMaker does (`IMAGE train`, each host's /opt/ml mounted; several hosts on a network
   * of their own); the first failed host's exit code, last line of output and /opt/ml, else algo-1's.
   */
  const trainAll = async (job: Job, mls: string[]): Promise<{ code: number | null; last: string; ml: string }> => {
    const hosts = hostsOf(job);
    const network = hosts.length > 1 ? `fake-sagemaker-${job.name}-${randomBytes(3).toString("hex")}` : undefined;
    if (network) {
      const made = await docker(["network", "create", network], { env: options.dockerEnv, signal: closing.signal });
      if (made.code !== 0) throw new Error(`docker network create ${network}: ${made.tail.join("").trim()}`);
    }
    try {
      let failed: { code: number | null; last: string; ml: string } | undefined;
      const results = await Promise.all(
        hosts.map(async (host, index) => {
          const result = { ...(await train(job, mls[index]!, host, network)), ml: mls[index]! };
          if (result.code !== 0 && !failed && !job.stop) {
            failed = result;
            void Promise.all(
              job.containers.map((container) => docker(["stop", "--time", String(grace), container.name], { env: options.dockerEnv }).catch(() => undefined)),
            );
          }
          return result;
        }),
      );
      return failed ?? results[0]!;
    } finally {
      if (network) await docker(["network", "rm", network], { env: options.dockerEnv }).catch(() => undefined);
    }
  };

  /** Run the job's image on `host` (`IMAGE train`, /opt/ml mounted); its exit code and last line of output. */
  const train = async (job: Job, ml: string, host = "algo-1", network?: string): Promise<{ code: number | null; last: string }> => {
    const env = (job.request.Environment as Record<string, string> | undefined) ?? {};
    const mounts: ContainerMount[] = [];
    const localPath = (job.request.CheckpointConfig as { LocalPath?: string } | undefined)?.LocalPath;
    if (localPath && path.posix.normalize(localPath) !== `${ML_ROOT}/checkpoints`)
      mounts.push({ host: path.join(ml, "checkpoints"), inside: localPath, readOnly: false });
    const image = (job.request.AlgorithmSpecification as { TrainingImage: string }).TrainingImage;
    const name = `fake-sagemaker-${job.name}-${host}-${randomBytes(3).toString("hex")}`;
    const args = trainingRunArgs({ image, name, ml, env, mounts, ...(network ? { network: { name: network, hostname: host } } : {}) });
    const log = await openLog(job, host);
    let last = "";
    const container = { name, running: true };
    job.containers.push(container);
    if (job.stop) void stopContainer(job);
    try {
      // Environment values reach the container through the docker program's own environment (`--env NAME`).
      const result = await docker(args, {
        env: { ...options.dockerEnv, ...env },
        signal: closing.signal,
        onLine: (line) => {
          if (line.trim()) last = line.trim();
          log.push(line);
        },
      });
      return { code: result.code, last };
    } finally {
      container.running = false;
      await log.close();
    }
  };

  /** A scripted job's Training: its model files and log lines, then a wait. */
  const pretend = async (job: Job, ml: string, scripted: Scripted): Promise<{ code: number; last: string }> => {
    for (const [file, content] of Object.entries(scripted.model ?? {})) {
      const target = path.join(ml, "model", file);
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.writeFileSync(target, content);
    }
    if (scripted.logLines?.length) {
      const log = await openLog(job);
      for (const line of scripted.logLines) log.push(line);
      await log.close();
    }
    const until = Date.now() + (scripted.trainSeconds ?? 0) * 1000;
    while (Date.now() < until && !halted(job)) await sleep(50);
    return { code: scripted.failAt === "Training" ? 1 : 0, last: scripted.reason ?? scripted.logLines?.at(-1) ?? "" };
  };

  /** Every host's `sub` folder (model, output/data) in one folder, as SageMaker aggregates them into one archive (algo-1's file kept on a clash). */
  const aggregate = (mls: string[], sub: string): string => {
    if (mls.length === 1) return path.join(mls[0]!, sub);
    const merged = fs.mkdtempSync(path.join(scratch, "merged-"));
    for (const ml of mls) if (fs.existsSync(path.join(ml, sub))) fs.cpSync(path.join(ml, sub), merged, { recursive: true, force: false });
    return merged;
  };

  /** Stopped (or MaxRuntimeExceeded): what the job left in /opt/ml/model in its grace period is still uploaded, as SageMaker does. */
  const stopped = async (job: Job, mls: string[]): Promise<void> => {
    if (job.trainingStart !== undefined && !closing.signal.aborted) {
      await uploadCheckpoints(job, mls[0]!);
      await uploadPacked(aggregate(mls, "model"), job.model);
    }
    if (job.stop === "maxRuntime")
      finish(
        job,
        "Stopped",
        "MaxRuntimeExceeded",
        "Training job stopped because it exceeded the maximum allowed runtime (StoppingCondition.MaxRuntimeInSeconds).",
      );
    else finish(job, "Stopped", "Stopped", "Training job stopped");
  };

  const lifecycle = async (job: Job): Promise<void> => {
    const scripted = job.scripted;
    // One /opt/ml per host; algo-1's first.
    const mls = hostsOf(job).map(() => fs.mkdtempSync(path.join(scratch, "ml-")));
    const ml = mls[0]!;
    let deadline: NodeJS.Timeout | undefined;
    try {
      step(job, "Starting", "Preparing the instances for training");
      await sleep(100);
      if (scripted?.failAt === "Starting")
        return fail(
          job,
          scripted.reason ?? "CapacityError: Unable to provision requested ML compute capacity. Please retry using a different ML instance type.",
        );
      if (halted(job)) return await stopped(job, mls);

      step(job, "Downloading", "Downloading input data");
      hostsOf(job).forEach((host, index) => layout(job, mls[index]!, host));
      let problem: string | undefined;
      try {
        problem = await downloadChannels(job, ml);
      } catch (err) {
        if (!(err instanceof DeniedError)) throw err;
        problem = err.message;
      }
      if (problem) return fail(job, problem);
      const checkpoints = checkpointUri(job);
      if (checkpoints) await downloadPrefix(checkpoints, path.join(ml, "checkpoints"));
      // FullyReplicated: every host gets every channel's objects (and the checkpoints).
      for (const other of mls.slice(1))
        for (const sub of ["input/data", "checkpoints"]) fs.cpSync(path.join(ml, sub), path.join(other, sub), { recursive: true });
      if (scripted?.failAt === "Downloading") return fail(job, scripted.reason ?? "ClientError: Data download failed.");
      if (!scripted) {
        // The image is pulled before Training starts ("Training image download completed").
        const image = (job.request.AlgorithmSpecification as { TrainingImage: string }).TrainingImage;
        const unusable = await imageProblem(image);
        if (unusable) return fail(job, unusable);
        const pulled = await docker(["pull", image], { env: options.dockerEnv, signal: closing.signal });
        if (pulled.code !== 0 && !halted(job))
          return fail(
            job,
            `ClientError: Cannot pull the training image ${image}: ${
              pulled.tail
                .filter((line) => line.trim())
                .at(-1)
                ?.trim() ?? `docker pull exited with ${pulled.code}`
            }`,
          );
      }
      if (halted(job)) return await stopped(job, mls);

      step(job, "Training", "Training image download completed. Training in progress.");
      job.trainingStart = now();
      const maxRuntime = (job.request.StoppingCondition as { MaxRuntimeInSeconds?: number } | undefined)?.MaxRuntimeInSeconds ?? 86_400;
      deadline = setTimeout(() => requestStop(job, "maxRuntime"), maxRuntime * 1000);
      const result = scripted ? { ...(await pretend(job, ml, scripted)), ml } : await trainAll(job, mls);
      clearTimeout(deadline);
      job.trainingEnd = now();
      if (closing.signal.aborted) return;
      if (job.stop) return await stopped(job, mls);
      if (result.code !== 0) {
        await uploadCheckpoints(job, ml);
        let said = "";
        try {
          said = fs.readFileSync(path.join(result.ml, "output", "failure"), "utf8").trim();
        } catch {
          said = "";
        }
        return fail(job, `AlgorithmError: ${said || result.last || "See job logs for more information"}, exit code: ${result.code}`);
      }

      step(job, "Uploading", "Uploading generated training model");
      if (!(await roleMay(job, "s3:PutObject", objectArn(job.model)))) {
        return fail(
          job,
          `ClientError: Artifact upload failed: Access Denied (403) writing ${job.model}: the role ${String(job.request.RoleArn)} may not s3:PutObject there.`,
        );
      }
      await uploadCheckpoints(job, ml);
      await uploadPacked(aggregate(mls, "model"), job.model);
      await uploadPacked(aggregate(mls, "output/data"), joinS3(job.model.replace(/\/model\.tar\.gz$/, ""), "output.tar.gz"));
      finish(job, "Completed", "Completed", "Training job completed");
    } catch (err) {
      if (!closing.signal.aborted)
        fail(job, `InternalServerError: We encountered an internal error. Please try again. (fake SageMaker: ${(err as Error).message})`);
    } finally {
      clearTimeout(deadline);
      for (const folder of mls) fs.rmSync(folder, { recursive: true, force: true });
    }
  };

  // -------------------------------------------------------------- operations

  const describe = (job: Job): Record<string, Json> => {
    const members = model.shapes.DescribeTrainingJobResponse?.members ?? {};
    // What the request set comes back as set (Tags excepted: DescribeTrainingJob has none).
    const answer: Record<string, Json> = Object.fromEntries(Object.entries(job.request).filter(([key]) => key in members));
    Object.assign(answer, {
      TrainingJobName: job.name,
      TrainingJobArn: job.arn,
      ModelArtifacts: { S3ModelArtifacts: job.model },
      TrainingJobStatus: job.status,
      SecondaryStatus: job.secondary,
      SecondaryStatusTransitions: job.transitions.map((transition) => ({ ...transition })),
      StoppingCondition: job.request.StoppingCondition ?? { MaxRuntimeInSeconds: 86_400 },
      EnableNetworkIsolation: job.request.EnableNetworkIsolation ?? false,
      EnableInterContainerTrafficEncryption: job.request.EnableInterContainerTrafficEncryption ?? false,
      EnableManagedSpotTraining: job.request.EnableManagedSpotTraining ?? false,
      CreationTime: job.created,
      LastModifiedTime: job.modified,
    });
    if (job.status === "Failed" && job.failureReason) answer.FailureReason = job.failureReason;
    if (job.trainingStart !== undefined) answer.TrainingStartTime = job.trainingStart;
    if (job.trainingStart !== undefined && job.trainingEnd !== undefined && ["Completed", "Failed", "Stopped"].includes(job.status)) {
      answer.TrainingEndTime = job.trainingEnd;
      const seconds = Math.max(1, Math.round(job.trainingEnd - job.trainingStart));
      answer.TrainingTimeInSeconds = seconds;
      // Managed spot bills less than the time trained.
      answer.BillableTimeInSeconds = job.request.EnableManagedSpotTraining ? Math.max(1, Math.round(seconds * 0.3)) : seconds;
    }
    return answer;
  };

  const find = (name: Json): Job => {
    const job = jobs.get(String(name));
    if (!job) throw new ApiError("ValidationException", "Requested resource not found.");
    return job;
  };
  const byArn = (arn: Json): Job => {
    const job = [...jobs.values()].find((candidate) => candidate.arn === arn);
    if (!job) throw new ApiError("ValidationException", "Requested resource not found.");
    return job;
  };
  /** A page of `items` from NextToken (an offset this fake issued). */
  const page = <T>(items: T[], body: Record<string, Json>, size: number): { items: T[]; next?: string } => {
    const token = body.NextToken as string | undefined;
    if (token !== undefined && !/^\d+$/.test(token)) throw new ApiError("ValidationException", "Invalid pagination token.");
    const start = Number(token ?? 0);
    return { items: items.slice(start, start + size), ...(start + size < items.length ? { next: String(start + size) } : {}) };
  };

  /** What SageMaker checks beyond the model, for what this fake runs. */
  const checkCreate = (body: Record<string, Json>): void => {
    const problems: string[] = [];
    const algorithm = body.AlgorithmSpecification as { TrainingImage?: string } | undefined;
    if (!algorithm?.TrainingImage)
      problems.push("AlgorithmSpecification.TrainingImage: required by the fake SageMaker (it runs images; AlgorithmName is not supported)");
    const resources = body.ResourceConfig as { InstanceType?: string; InstanceCount?: number } | undefined;
    if (!resources?.InstanceType) problems.push("ResourceConfig.InstanceType: required");
    if (resources && (resources.InstanceCount ?? 0) < 1) problems.push("ResourceConfig.InstanceCount: at least 1");
    const stopping = body.StoppingCondition as { MaxRuntimeInSeconds?: number; MaxWaitTimeInSeconds?: number } | undefined;
    if (body.EnableManagedSpotTraining === true && !((stopping?.MaxWaitTimeInSeconds ?? 0) >= (stopping?.MaxRuntimeInSeconds ?? 86_400))) {
      problems.push("Invalid MaxWaitTimeInSeconds. It must be present and be greater than or equal to MaxRuntimeInSeconds");
    }
    if (body.EnableManagedSpotTraining !== true && stopping?.MaxWaitTimeInSeconds !== undefined)
      problems.push("StoppingCondition.MaxWaitTimeInSeconds: only for managed spot training (EnableManagedSpotTraining)");
    const names = ((body.InputDataConfig as Channel[] | undefined) ?? []).map((channel) => channel.ChannelName);
    if (new Set(names).size !== names.length) problems.push("InputDataConfig: channel names must be unique");
    if (problems.length) throw new ApiError("ValidationException", problems.join("; "));
  };

  const operations: Record<string, (body: Record<string, Json>) => Json | Promise<Json>> = {
    CreateTrainingJob: async (body) => {
      checkCreate(body);
      const name = body.TrainingJobName as string;
      const arn = `arn:aws:sagemaker:${region}:${ACCOUNT}:training-job/${name}`;
      await assumeRole(String(body.RoleArn));
      await checkPull(body);
      if (jobs.has(name))
        throw new ApiError(
          "ResourceInUse",
          `Training job names must be unique within an AWS account and region, and a training job with this name already exists (${arn})`,
        );
      const created = now();
      const job: Job = {
        name,
        request: structuredClone(body),
        arn,
        status: "InProgress",
        secondary: "Starting",
        transitions: [],
        created,
        modified: created,
        model: joinS3((body.OutputDataConfig as { S3OutputPath: string }).S3OutputPath, name, "output", "model.tar.gz"),
        tags: [...((body.Tags as Tag[] | undefined) ?? [])],
        scripted: scripts.get(name),
        containers: [],
      };
      jobs.set(name, job);
      const run = lifecycle(job);
      running.add(run);
      void run.finally(() => running.delete(run));
      return { TrainingJobArn: arn };
    },
    DescribeTrainingJob: (body) => describe(find(body.TrainingJobName)),
    StopTrainingJob: (body) => {
      const job = find(body.TrainingJobName);
      if (job.status !== "InProgress")
        throw new ApiError("ValidationException", `The request was rejected because the training job is in status ${job.status}.`);
      requestStop(job, "requested");
      return {};
    },
    ListTrainingJobs: (body) => {
      const after = (value: Json, than: number): boolean => value === undefined || than > Number(value);
      const before = (value: Json, than: number): boolean => value === undefined || than < Number(value);
      let list = [...jobs.values()].filter(
        (job) =>
          (body.NameContains === undefined || job.name.includes(String(body.NameContains))) &&
          after(body.CreationTimeAfter, job.created) &&
          before(body.CreationTimeBefore, job.created) &&
          after(body.LastModifiedTimeAfter, job.modified) &&
          before(body.LastModifiedTimeBefore, job.modified),
      );
      const key = body.SortBy === "Name" ? (job: Job) => job.name : body.SortBy === "Status" ? (job: Job) => job.status : (job: Job) => job.created;
      // SortOrder's documented default is Ascending, but the service lists newest first, as its own ListTrainingJobs example says.
      const order = body.SortOrder === "Ascending" ? 1 : -1;
      list.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0) * order);
      const { items, next } = page(list, body, Number(body.MaxResults ?? 10));
      // As SageMaker documents: a page of MaxResults jobs is taken first, then filtered by StatusEquals.
      list = body.StatusEquals === undefined ? items : items.filter((job) => job.status === body.StatusEquals);
      return {
        TrainingJobSummaries: list.map((job) => ({
          TrainingJobName: job.name,
          TrainingJobArn: job.arn,
          CreationTime: job.created,
          LastModifiedTime: job.modified,
          TrainingJobStatus: job.status,
          SecondaryStatus: job.secondary,
          ...(job.trainingEnd !== undefined && ["Completed", "Failed", "Stopped"].includes(job.status) ? { TrainingEndTime: job.trainingEnd } : {}),
        })),
        ...(next ? { NextToken: next } : {}),
      };
    },
    ListTags: (body) => {
      const { items, next } = page(byArn(body.ResourceArn).tags, body, Number(body.MaxResults ?? 50));
      return { Tags: items, ...(next ? { NextToken: next } : {}) };
    },
    AddTags: (body) => {
      const job = byArn(body.ResourceArn);
      for (const tag of body.Tags as Tag[]) {
        const existing = job.tags.find((candidate) => candidate.Key === tag.Key);
        if (existing) existing.Value = tag.Value;
        else job.tags.push({ Key: tag.Key, Value: tag.Value });
      }
      if (job.tags.length > 50) throw new ApiError("ValidationException", "A resource can have at most 50 tags.");
      return { Tags: body.Tags };
    },
  };

  // -------------------------------------------------------------- the wire

  /** Refuse a request that is not SigV4-signed with our key, for our region and for sagemaker (the signature itself is not checked). */
  const authorize = (header: string | undefined): void => {
    if (!header) throw new ApiError("MissingAuthenticationTokenException", "Missing Authentication Token", 403);
    const scope = /^AWS4-HMAC-SHA256 .*Credential=([^/,\s]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request/.exec(header);
    if (!scope)
      throw new ApiError(
        "IncompleteSignatureException",
        `Authorization header requires a SigV4 Credential, SignedHeaders and Signature: ${header.split(" ")[0]}`,
        403,
      );
    const [, key, , scopeRegion, service] = scope;
    if (key !== accessKeyId) throw new ApiError("UnrecognizedClientException", "The security token included in the request is invalid.");
    if (scopeRegion !== region) throw new ApiError("InvalidSignatureException", `Credential should be scoped to a valid region, not '${scopeRegion}'. `, 403);
    if (service !== "sagemaker") throw new ApiError("InvalidSignatureException", `Credential should be scoped to correct service: 'sagemaker'. `, 403);
  };

  const handle = async (request: http.IncomingMessage, raw: string): Promise<Json> => {
    const target = String(request.headers["x-amz-target"] ?? "");
    const prefix = `${model.metadata.targetPrefix}.`;
    if (request.method !== "POST" || request.url?.split("?")[0] !== "/" || !target.startsWith(prefix))
      throw new ApiError("UnknownOperationException", `not a SageMaker call: ${request.method} ${request.url} X-Amz-Target ${target || "(none)"}`);
    authorize(request.headers.authorization);
    const contentType = String(request.headers["content-type"] ?? "");
    if (!contentType.startsWith(`application/x-amz-json-${model.metadata.jsonVersion}`))
      throw new ApiError("SerializationException", `Content-Type must be application/x-amz-json-${model.metadata.jsonVersion}, not ${contentType || "(none)"}`);
    const operation = target.slice(prefix.length);
    const definition = model.operations[operation];
    if (!definition) throw new ApiError("UnknownOperationException", `SageMaker has no operation ${operation}`);
    const handler = operations[operation];
    if (!handler)
      throw new ApiError("UnknownOperationException", `the fake SageMaker does not do ${operation} (it does ${Object.keys(operations).join(", ")})`);
    let body: Json;
    try {
      body = JSON.parse(raw || "{}");
    } catch {
      throw new ApiError("SerializationException", "The request body is not JSON.");
    }
    const problems = definition.input ? validate(model, definition.input.shape, body) : [];
    if (problems.length)
      throw new ApiError("ValidationException", `${problems.length} validation error${problems.length === 1 ? "" : "s"} detected: ${problems.join("; ")}`);
    let answer: Json;
    try {
      answer = await handler(body as Record<string, Json>);
    } catch (err) {
      if (err instanceof ApiError) refused.push({ target: operation, type: err.type, message: err.message });
      throw err;
    }
    requests.push({ target: operation, body: body as Record<string, Json> });
    return answer;
  };

  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const send = (status: number, body: Json): void => {
        response.writeHead(status, { "Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": randomUUID() });
        response.end(JSON.stringify(body));
      };
      handle(request, Buffer.concat(chunks).toString("utf8")).then(
        (answer) => send(200, answer),
        (err: unknown) => {
          if (err instanceof ApiError) send(err.status, { __type: err.type, message: err.message });
          else send(500, { __type: "InternalFailure", message: `fake SageMaker: ${(err as Error).stack ?? String(err)}` });
        },
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    refused,
    script: (jobName, outcome) => void scripts.set(jobName, outcome),
    setRoleSettleSeconds: (seconds) => void (settle = seconds),
    stop: async () => {
      const containers = [...jobs.values()].flatMap((job) => job.containers.filter((container) => container.running).map((container) => container.name));
      closing.abort();
      await Promise.all(containers.map((name) => docker(["rm", "--force", name], { env: options.dockerEnv }).catch(() => undefined)));
      await Promise.allSettled([...running]);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      s3.destroy();
      logs.destroy();
      iam.destroy();
      fs.rmSync(scratch, { recursive: true, force: true });
    },
  };
}
