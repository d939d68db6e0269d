/** Settings of the Vertex AI backend, and what a job's record keeps of its custom job. */
import type { Schema, SettingsOf } from "../../spec/schema.js";
import type { JobRecord } from "../../jobs/job.js";
import type { JobSpec } from "../../spec/types.js";
import { builderSetting, commonSchema, pythonVersionSetting } from "../common.js";

/** The region used when none is named (Vertex AI's own default in its samples and the gcloud CLI). */
export const DEFAULT_REGION = "us-central1";

/** `--config.KEY` for `--backend vertex`. */
export const vertexSchema = {
  output_path: {
    ...commonSchema.output_path,
    doc: "gs://BUCKET/PREFIX; the job's baseOutputDirectory is OUTPUT_PATH/JOB, its model OUTPUT_PATH/JOB/output/model.tar.gz (required).",
  },
  project: {
    type: { kind: "string" },
    doc: "The Google Cloud project; default: GOOGLE_CLOUD_PROJECT, CLOUDSDK_CORE_PROJECT, gcloud's active configuration, the credentials' project.",
  },
  quota_project: {
    type: { kind: "string" },
    doc: "The project Google bills and meters the calls to (x-goog-user-project); default: GOOGLE_CLOUD_QUOTA_PROJECT, else the credentials' quota_project_id.",
  },
  region: {
    type: { kind: "string" },
    default: DEFAULT_REGION,
    doc: "The region of the job, its regional endpoint (https://REGION-aiplatform.googleapis.com) and its image repository.",
  },
  machine_type: { type: { kind: "string" }, default: "n1-standard-4", doc: "The Compute Engine machine type of every replica (4 vCPUs, 15 GB by default)." },
  accelerator_type: { type: { kind: "string" }, doc: "A GPU or TPU on each replica, as Vertex names it (NVIDIA_TESLA_T4, NVIDIA_L4, …); unset: none." },
  accelerator_count: { type: { kind: "integer", min: 1 }, default: 1, doc: "How many accelerators each replica has (with accelerator_type)." },
  instance_count: {
    ...commonSchema.instance_count,
    doc: "How many machines run the job, in all: worker pool 0 holds one replica, pool 1 the rest (same image).",
  },
  hyperparameter_args: commonSchema.hyperparameter_args,
  hyperparameter_format: commonSchema.hyperparameter_format,
  distribution: commonSchema.distribution,
  processes_per_host: commonSchema.processes_per_host,
  boot_disk_size_gb: {
    type: { kind: "integer", min: 100, max: 65536 },
    default: 100,
    doc: "Size of each replica's boot disk, in GB (Vertex's minimum is 100).",
  },
  max_runtime: { type: { kind: "duration" }, default: 604800, doc: "Stop the job after this long (scheduling.timeout; Vertex's default is 7 days)." },
  use_spot: {
    type: { kind: "boolean" },
    default: false,
    doc: "Run on Spot VMs (scheduling.strategy SPOT: cheaper, may be preempted; set checkpoint_uri to resume).",
  },
  service_account: {
    type: { kind: "string" },
    doc: "The service account the job runs as (an email); unset: the project's Vertex AI Custom Code Service Agent.",
  },
  network: { type: { kind: "string" }, doc: "The VPC network the job is peered with (projects/NUMBER/global/networks/NAME); unset: none." },
  kms_key: {
    type: { kind: "string" },
    doc: "A Cloud KMS key (projects/P/locations/L/keyRings/R/cryptoKeys/K) that encrypts the job (encryptionSpec.kmsKeyName).",
  },
  environment: { type: { kind: "list" }, default: [], doc: "Environment variables of the job, as KEY=VALUE items." },
  labels: { type: { kind: "list" }, default: [], doc: "Labels on the job, as KEY=VALUE items (lowercase; alekseylearn adds its own)." },
  builder: builderSetting,
  python_version: pythonVersionSetting,
  base_image: {
    type: { kind: "string" },
    default: "auto",
    doc: "The image the job's image is built on; auto: python:3.11-slim, a PyTorch CUDA image with an NVIDIA accelerator_type, micromamba for environment.yml.",
  },
  repository: {
    type: { kind: "string" },
    doc: "The Artifact Registry image to push to, REGION-docker.pkg.dev/PROJECT/REPO/IMAGE; default: the alekseylearn repository and the artifact's name.",
  },
  checkpoint_uri: { type: { kind: "string" }, doc: "gs:// location that /opt/ml/checkpoints is synced to and restored from on restart." },
  poll_interval: {
    type: { kind: "number", min: 0.05 },
    default: 5,
    doc: "Seconds between status checks while following; grows to 30 while nothing changes. Log lines are read at most every 5 s (Cloud Logging's read quota).",
  },
} satisfies Schema;

/** The Vertex backend's settings, typed from its schema. */
export type VertexSettings = SettingsOf<typeof vertexSchema>;

/** What a job's record keeps of its Vertex AI custom job. */
export type VertexProvider = {
  /** The custom job's resource name, projects/NUMBER/locations/REGION/customJobs/ID. */
  resource?: string;
  project?: string;
  region?: string;
  /** The image, by digest. */
  image?: string;
  /** This submission's id (the job's alekseylearn-submission label). */
  submission?: string;
  /** What the image's push did (layers sent, build steps run), for the benchmarks. */
  layersPushed?: string;
  stepsRun?: string;
  /** Set once `stop` has asked Vertex to cancel the job (a cancelled job without it was cancelled elsewhere, or timed out). */
  cancelRequested?: string;
  /** The custom job's createTime and endTime as Vertex gives them (where its log starts; when it ended). */
  createTime?: string;
  endTime?: string;
  /** The API's JobState and error.message. */
  status?: string;
  message?: string;
};

/** A job spec for Vertex AI. */
export type VertexSpec = JobSpec<VertexSettings>;
/** A job record of Vertex AI. */
export type VertexJob = JobRecord<VertexSettings, VertexProvider>;
