/**
 * Pure functions from a validated JobSpec to what SageMaker is asked: the
 * problems that stop a spec before anything is built, the ECR repository's
 * name, and the CreateTrainingJob request, field by field.
 */
import type { CreateTrainingJobRequest, TrainingInstanceType } from "@aws-sdk/client-sagemaker";
import { hyperparameterStrings } from "../../package/contract.js";
import { UserError } from "../../errors.js";
import { imageName, refuseEnvironmentCredentials } from "../../package/image.js";
import { settingsEnv } from "../../package/runtime.js";
import { schemeOf } from "../../storage/location.js";
import type { SageMakerSpec } from "./schema.js";
import { validate } from "./model.js";
import { DEFAULT_ROLE_NAME } from "./schema.js";
import { SAGEMAKER_SHAPES } from "./shapes.js";
import { parsePairs, runtimeSettings, distributionProblems } from "../common.js";

/** The tag that marks a job as made by alekseylearn; its value is the submission's id, so a retried submission finds its own job. */
export const SUBMISSION_TAG = "alekseylearn:submission";

/** Stand-ins of the right form for what a plan cannot know before a submission creates or builds it. */
export const PLACEHOLDERS = {
  /** The AWS account, when no credentials say which. */
  account: "000000000000",
  /** The image's digest, known once it is built and pushed. */
  digest: `sha256:${"0".repeat(64)}`,
  /** The submission's id (tagged on the job), made at submission. */
  submission: "00000000-0000-0000-0000-000000000000",
  /** A job name, where none is given yet. */
  name: "alekseylearn-job",
};

/** True for SageMaker instance types with GPUs (P and G families), whose default base image has CUDA. */
export function isGpuInstance(instanceType: string): boolean {
  return /^ml\.(p|g)\d/.test(instanceType);
}

/** True when SageMaker settings (validated, or as given, where `train_instance_type` may still stand for `instance_type`) name a GPU instance type. */
export function wantsGpu(settings: Readonly<Record<string, unknown>>): boolean {
  const instanceType = settings.instance_type ?? settings.train_instance_type;
  return typeof instanceType === "string" && isGpuInstance(instanceType);
}

/** The image reference SageMaker is given: REGISTRY/REPOSITORY@DIGEST, ECR's registry of `account` in `region` unless `registry` names another. */
export function imageReference(where: { account: string; region: string; registry?: string }, repository: string, digest = PLACEHOLDERS.digest): string {
  const registry = where.registry ?? `${where.account}.dkr.ecr.${where.region}.amazonaws.${where.region.startsWith("cn-") ? "com.cn" : "com"}`;
  return `${registry}/${repository}@${digest}`;
}

/** The CreateRepository request for a missing repository (ECR). */
export function createRepositoryRequest(name: string): {
  repositoryName: string;
  imageScanningConfiguration: { scanOnPush: boolean };
  tags: Array<{ Key: string; Value: string }>;
} {
  return { repositoryName: name, imageScanningConfiguration: { scanOnPush: false }, tags: [{ Key: "alekseylearn:repository", Value: "training-images" }] };
}

/** Every way `request` breaks SageMaker's published limits and patterns for CreateTrainingJob (botocore's model): lengths, ranges, patterns, counts. */
export function requestProblems(request: CreateTrainingJobRequest): string[] {
  return validate({ shapes: SAGEMAKER_SHAPES }, "CreateTrainingJobRequest", request).map(
    (problem) => `the CreateTrainingJob request breaks SageMaker's rules: ${problem}`,
  );
}

/** Every reason `spec` cannot run on SageMaker, all at once (empty when it can). */
export function planProblems(spec: SageMakerSpec): string[] {
  const problems: string[] = distributionProblems(spec);
  const { settings } = spec;
  if (!spec.outputPath) problems.push("config.output_path is required on SageMaker: an s3://BUCKET/PREFIX where the model is written");
  else if (schemeOf(spec.outputPath) !== "s3") problems.push(`config.output_path must be an s3:// location on SageMaker, not ${spec.outputPath}`);
  if (!isTrainingInstanceType(settings.instance_type))
    problems.push(`config.instance_type ${settings.instance_type} is not a SageMaker instance type (like ml.c4.2xlarge or ml.g5.xlarge)`);
  if (settings.checkpoint_s3_uri !== undefined && schemeOf(settings.checkpoint_s3_uri) !== "s3")
    problems.push(`config.checkpoint_s3_uri must be an s3:// location, not ${settings.checkpoint_s3_uri}`);
  if (settings.max_wait !== undefined && !settings.use_spot)
    problems.push("config.max_wait applies to spot training only: add --config.use_spot=true, or drop it");
  if (settings.use_spot && settings.max_wait !== undefined && settings.max_wait < settings.max_runtime) {
    problems.push(`config.max_wait (${settings.max_wait}s) must be at least config.max_runtime (${settings.max_runtime}s)`);
  }
  if (settings.role_arn !== undefined && !/^arn:aws[a-z-]*:iam::\d{12}:role\/.+$/.test(settings.role_arn))
    problems.push(`config.role_arn ${settings.role_arn} is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)`);
  for (const [channel, location] of Object.entries(spec.inputs)) {
    if (schemeOf(location) !== "s3")
      problems.push(
        `input ${channel}: SageMaker reads inputs from S3; upload it (aws s3 cp --recursive ${location} s3://BUCKET/PREFIX) and pass --input.${channel}=s3://BUCKET/PREFIX`,
      );
    else if (!/^[A-Za-z0-9.\-_]+$/.test(channel)) problems.push(`input ${channel}: channel names are letters, digits, ., - and _`);
  }
  parsePairs(settings.environment, "environment", problems);
  parsePairs(settings.tags, "tags", problems);
  try {
    refuseEnvironmentCredentials(spec);
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    problems.push(err.message.replace(/\.$/, "") + (err.hint ? ` (${err.hint.replace(/\.$/, "")})` : ""));
  }
  if (problems.length) return problems;
  // The request as it will be sent, with stand-ins for what only the submission knows, against SageMaker's limits: before anything is built.
  const request = trainingJobRequest(spec, {
    name: PLACEHOLDERS.name,
    image: imageReference({ account: PLACEHOLDERS.account, region: "us-east-1" }, repositoryName(spec)),
    roleArn: roleArnFor(spec, PLACEHOLDERS.account),
    submissionId: PLACEHOLDERS.submission,
    version: "0.0.0",
  });
  return requestProblems(request);
}

/** The ECR repository for `spec`: config.repository, else the artifact's image name. */
export function repositoryName(spec: SageMakerSpec): string {
  return spec.settings.repository ?? imageName(spec);
}

/** The role's ARN: config.role_arn, or the named role in `account`. */
export function roleArnFor(spec: SageMakerSpec, account: string, partition = "aws"): string {
  return spec.settings.role_arn ?? `arn:${partition}:iam::${account}:role/${spec.settings.role_name || DEFAULT_ROLE_NAME}`;
}

/** True for an instance type SageMaker's published model lists for training (botocore's enum, which the SDK's type mirrors). */
export function isTrainingInstanceType(name: string): name is TrainingInstanceType {
  return SAGEMAKER_SHAPES.TrainingInstanceType?.enum?.includes(name) ?? false;
}

/** What CreateTrainingJob needs beyond the spec. */
export interface TrainingJobInputs {
  name: string;
  /** The image, by digest (REGISTRY/REPO@sha256:…), so the job runs exactly what was pushed. */
  image: string;
  roleArn: string;
  /** This submission's id, tagged on the job. */
  submissionId: string;
  /** alekseylearn's version, tagged on the job. */
  version: string;
}

/** The CreateTrainingJob request for `spec` (pure). */
export function trainingJobRequest(spec: SageMakerSpec, inputs: TrainingJobInputs): CreateTrainingJobRequest {
  const { settings } = spec;
  const ignored: string[] = [];
  const spot = settings.use_spot === true;
  const maxRuntime = settings.max_runtime;
  const request: CreateTrainingJobRequest = {
    TrainingJobName: inputs.name,
    AlgorithmSpecification: { TrainingImage: inputs.image, TrainingInputMode: "File" },
    RoleArn: inputs.roleArn,
    OutputDataConfig: { S3OutputPath: spec.outputPath.replace(/\/+$/, "") },
    ResourceConfig: {
      InstanceType: isTrainingInstanceType(settings.instance_type) ? settings.instance_type : undefined,
      InstanceCount: settings.instance_count,
      VolumeSizeInGB: settings.volume_size_gb,
    },
    StoppingCondition: { MaxRuntimeInSeconds: maxRuntime, ...(spot ? { MaxWaitTimeInSeconds: settings.max_wait ?? maxRuntime } : {}) },
    HyperParameters: hyperparameterStrings(spec.hyperparameters),
    EnableManagedSpotTraining: spot,
    Tags: [
      { Key: SUBMISSION_TAG, Value: inputs.submissionId },
      { Key: "alekseylearn:version", Value: inputs.version },
      ...Object.entries(parsePairs(settings.tags, "tags", ignored)).map(([Key, Value]) => ({ Key, Value })),
    ],
  };
  // The one setting the image's entrypoint reads from the job (the SM_* variables it computes itself, as the toolkit does).
  const environment = {
    ...parsePairs(settings.environment, "environment", ignored),
    ...settingsEnv(runtimeSettings(settings)),
  };
  if (Object.keys(environment).length) request.Environment = environment;
  const channels = Object.entries(spec.inputs).sort(([a], [b]) => a.localeCompare(b));
  if (channels.length) {
    request.InputDataConfig = channels.map(([ChannelName, S3Uri]) => ({
      ChannelName,
      DataSource: { S3DataSource: { S3DataType: "S3Prefix", S3Uri, S3DataDistributionType: "FullyReplicated" } },
    }));
  }
  if (settings.checkpoint_s3_uri) request.CheckpointConfig = { S3Uri: settings.checkpoint_s3_uri, LocalPath: "/opt/ml/checkpoints" };
  if (settings.kms_key) {
    request.OutputDataConfig!.KmsKeyId = settings.kms_key;
    request.ResourceConfig!.VolumeKmsKeyId = settings.kms_key;
  }
  return request;
}
