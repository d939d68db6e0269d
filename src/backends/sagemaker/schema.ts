/** Settings of the SageMaker backend. */
import type { Schema, SettingsOf } from "../../spec/schema.js";
import type { JobRecord } from "../../jobs/job.js";
import type { JobSpec } from "../../spec/types.js";
import { builderSetting, commonSchema, pythonVersionSetting } from "../common.js";

/** The role `fit` uses when none is named, and `init --backend sagemaker --create-role` creates. */
export const DEFAULT_ROLE_NAME = "alekseylearn_sagemaker_role";

/** `--config.KEY` for `--backend sagemaker`. */
export const sagemakerSchema = {
  output_path: { ...commonSchema.output_path, doc: "s3://BUCKET/PREFIX where SageMaker writes OUTPUT_PATH/JOB/output/model.tar.gz (required)." },
  instance_type: {
    type: { kind: "string" },
    default: "ml.c4.2xlarge",
    doc: "The machine type (8 vCPUs, 15 GiB, no GPU by default; see SageMaker's pricing page).",
    aliases: ["train_instance_type"],
  },
  instance_count: commonSchema.instance_count,
  hyperparameter_args: commonSchema.hyperparameter_args,
  hyperparameter_format: commonSchema.hyperparameter_format,
  distribution: commonSchema.distribution,
  processes_per_host: commonSchema.processes_per_host,
  volume_size_gb: { type: { kind: "integer", min: 1, max: 16384 }, default: 30, doc: "Size of each instance's storage volume, in GB." },
  max_runtime: { type: { kind: "duration" }, default: 86400, doc: "Stop the job after this long (StoppingCondition.MaxRuntimeInSeconds)." },
  use_spot: { type: { kind: "boolean" }, default: false, doc: "Use managed spot capacity (cheaper, may be interrupted; set checkpoint_s3_uri to resume)." },
  max_wait: { type: { kind: "duration" }, doc: "With use_spot: how long to wait for spot capacity and run, in all (≥ max_runtime; default max_runtime)." },
  checkpoint_s3_uri: { type: { kind: "string" }, doc: "s3:// location that /opt/ml/checkpoints is synced to and restored from." },
  role_name: { type: { kind: "string" }, default: DEFAULT_ROLE_NAME, doc: "The IAM role SageMaker assumes to run the job." },
  role_arn: { type: { kind: "string" }, doc: "The role's full ARN (instead of role_name)." },
  builder: builderSetting,
  python_version: pythonVersionSetting,
  base_image: {
    type: { kind: "string" },
    default: "auto",
    doc: "The image the job's image is built on; auto: python:3.11-slim, a PyTorch CUDA image on GPU instances, micromamba for environment.yml.",
  },
  repository: { type: { kind: "string" }, doc: "The ECR repository to push to; default: alekseylearn/ and the artifact's name (created when missing)." },
  kms_key: {
    type: { kind: "string" },
    doc: "A KMS key (ID or ARN) that encrypts the model in S3 and the instances' volumes (OutputDataConfig.KmsKeyId, ResourceConfig.VolumeKmsKeyId); unset: SageMaker's defaults.",
  },
  check_role: {
    type: { kind: "boolean" },
    default: true,
    doc: "Before building, check the role's own policies allow this job's output, inputs, checkpoints and repository; stop on a definite deny.",
  },
  environment: { type: { kind: "list" }, default: [], doc: "Environment variables of the job, as KEY=VALUE items." },
  tags: { type: { kind: "list" }, default: [], doc: "Tags on the job, as KEY=VALUE items (alekseylearn adds its own)." },
  poll_interval: { type: { kind: "number", min: 0.05 }, default: 5, doc: "Seconds between status checks while following; grows to 30 while nothing changes." },
} satisfies Schema;

/** The SageMaker backend's settings, typed from its schema. */
export type SageMakerSettings = SettingsOf<typeof sagemakerSchema>;

/** What a job's record keeps of its SageMaker training job. */
export type SageMakerProvider = {
  arn?: string;
  region?: string;
  /** The image, by digest. */
  image?: string;
  role?: string;
  /** This submission's id (the job's alekseylearn:submission tag). */
  submission?: string;
  layersPushed?: string;
  stepsRun?: string;
  /** DescribeTrainingJob's TrainingJobStatus and SecondaryStatus, and the last transition's message. */
  status?: string;
  secondary?: string;
  message?: string;
  billableSeconds?: string;
};

/** A job spec for SageMaker. */
export type SageMakerSpec = JobSpec<SageMakerSettings>;
/** A job record of SageMaker. */
export type SageMakerJob = JobRecord<SageMakerSettings, SageMakerProvider>;
