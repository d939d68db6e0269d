/**
 * Pure functions from a validated JobSpec to what Vertex AI is asked: the
 * problems that stop a spec before anything is built, the Artifact Registry
 * image's name, and the CustomJob body of
 * `projects.locations.customJobs.create`, field by field, in the shapes of
 * Google's published aiplatform v1 API description (int64 as strings,
 * durations as "Ns", enums by name).
 */
import path from "node:path";
import { ML_ROOT } from "../../package/contract.js";
import { UserError } from "../../errors.js";
import { imageName, refuseEnvironmentCredentials } from "../../package/image.js";
import { settingsEnv, trainArgs } from "../../package/runtime.js";
import { schemeOf } from "../../storage/location.js";
import type { JobState } from "../../jobs/job.js";
import type { VertexSpec } from "./schema.js";
import { parsePairs, runtimeSettings, distributionProblems } from "../common.js";

/** True when Vertex settings ask for NVIDIA GPUs (an NVIDIA_* accelerator_type), whose default base image has CUDA; a TPU needs no CUDA, and gets the plain image. */
export function wantsGpu(settings: Readonly<Record<string, unknown>>): boolean {
  const accelerator = settings.accelerator_type;
  return typeof accelerator === "string" && accelerator.startsWith("NVIDIA_");
}

/** The label that marks a job as made by alekseylearn; its value is the submission's id, so a retried submission finds its own job. */
export const SUBMISSION_LABEL = "alekseylearn-submission";

/** The Artifact Registry repository images go to when config.repository names none (created when missing). */
export const DEFAULT_REPOSITORY = "alekseylearn";

/**
 * MachineSpec.acceleratorType's values in aiplatform.v1.json (revision
 * 20260920), less ACCELERATOR_TYPE_UNSPECIFIED; a test compares this list with
 * the published description, so a new accelerator shows up as a failing test
 * rather than a refused job.
 */
export const ACCELERATOR_TYPES = [
  "NVIDIA_TESLA_K80",
  "NVIDIA_TESLA_P100",
  "NVIDIA_TESLA_V100",
  "NVIDIA_TESLA_P4",
  "NVIDIA_TESLA_T4",
  "NVIDIA_TESLA_A100",
  "NVIDIA_A100_80GB",
  "NVIDIA_L4",
  "NVIDIA_H100_80GB",
  "NVIDIA_H100_MEGA_80GB",
  "NVIDIA_H200_141GB",
  "NVIDIA_B200",
  "NVIDIA_GB200",
  "NVIDIA_RTX_PRO_6000",
  "TPU_V2",
  "TPU_V3",
  "TPU_V4_POD",
  "TPU_V5_LITEPOD",
] as const;

/** One accelerator type Vertex knows. */
export type AcceleratorType = (typeof ACCELERATOR_TYPES)[number];

/** Stand-ins of the right form for what a plan cannot know before a submission creates or builds it. */
export const PLACEHOLDERS = {
  /** The image's digest, known once it is built and pushed. */
  digest: `sha256:${"0".repeat(64)}`,
  /** The submission's id (a label of the job), made at submission. */
  submission: "00000000-0000-0000-0000-000000000000",
  /** A job name, where none is given yet. */
  name: "alekseylearn-job",
  /** A project, where none is known yet (checks before a project is resolved). */
  project: "my-project",
};

/** The environment variable the entrypoint reads the job's input channels from on Vertex: a JSON object, channel → local path under /gcs. */
export const INPUTS_ENV = "ALEKSEYLEARN_INPUTS";
/** The environment variable naming the folder (under /gcs) the entrypoint packs model.tar.gz and output.tar.gz into: OUTPUT_PATH/JOB/output. */
export const OUTPUT_ENV = "ALEKSEYLEARN_OUTPUT_DIR";
/** The environment variable naming the folder (under /gcs) /opt/ml/checkpoints is restored from and synced to. */
export const CHECKPOINTS_ENV = "ALEKSEYLEARN_CHECKPOINTS";

/** The CustomJob body, as aiplatform v1 describes GoogleCloudAiplatformV1CustomJob (only the fields a request may set). */
export interface CustomJobBody {
  displayName: string;
  jobSpec: {
    workerPoolSpecs: WorkerPoolSpec[];
    baseOutputDirectory: { outputUriPrefix: string };
    scheduling: { timeout: string; restartJobOnWorkerRestart: boolean; strategy?: "SPOT" };
    serviceAccount?: string;
    network?: string;
  };
  labels: Record<string, string>;
  encryptionSpec?: { kmsKeyName: string };
}

/** One worker pool of a CustomJob. */
export interface WorkerPoolSpec {
  machineSpec: { machineType: string; acceleratorType?: AcceleratorType; acceleratorCount?: number };
  /** int64, so a string in JSON. */
  replicaCount: string;
  diskSpec: { bootDiskType: string; bootDiskSizeGb: number };
  containerSpec: { imageUri: string; args: string[]; env: Array<{ name: string; value: string }> };
}

/** `projects/PROJECT/locations/REGION`, the parent of a custom job (and of a repository). */
export function parentOf(project: string, region: string): string {
  return `projects/${project}/locations/${region}`;
}

/** The path Vertex mounts `gs://BUCKET/PATH` at inside a job, with Cloud Storage FUSE: /gcs/BUCKET/PATH. */
export function fusePath(uri: string): string {
  const rest = uri.replace(/^gs:\/\//, "").replace(/\/+$/, "");
  return path.posix.join("/gcs", rest);
}

/** True for a Vertex accelerator type. */
export function isAcceleratorType(name: string): name is AcceleratorType {
  return (ACCELERATOR_TYPES as readonly string[]).includes(name);
}

/**
 * A project ID as it appears in a Docker image path. A domain-scoped project (`example.com:my-proj`) has a colon, which
 * Docker reads as a port or a tag, so Artifact Registry names it with a slash instead: `example.com/my-proj`
 * (cloud.google.com/artifact-registry/docs/docker/names, "Domain-scoped projects": the colon in the project ID is
 * replaced with a forward slash in the image's name).
 */
export function dockerProjectPath(project: string): string {
  return project.replace(":", "/");
}

/** The image's repository path for `spec` in `project`: REGION-docker.pkg.dev/PROJECT/alekseylearn/<folder>-<stem>, or config.repository. */
export function repositoryPath(spec: VertexSpec, project: string): string {
  return spec.settings.repository ?? `${spec.settings.region}-docker.pkg.dev/${dockerProjectPath(project)}/${imageName(spec)}`;
}

/**
 * Artifact Registry's rule for a repository ID (cloud.google.com/artifact-registry/docs/repositories/create-repos,
 * "Repository name"): lowercase letters, numbers and hyphens, starting with a letter and ending with a letter or a number,
 * at most 63 characters.
 */
export const REPOSITORY_ID = /^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * The Artifact Registry repository an image path lies in: its host, region, project (as the API names it:
 * `example.com:my-proj` for the path's `example.com/my-proj`) and repository id. The repository id is taken as written;
 * `imagePathProblem` checks it against Artifact Registry's rule.
 */
export function registryOf(imagePath: string): { host: string; project: string; repository: string; region: string } | undefined {
  const match = /^(([a-z0-9-]+)-docker\.pkg\.dev)\/(?:([a-z0-9-]+(?:\.[a-z0-9-]+)+)\/)?([a-z][a-z0-9-]*)\/([^/:@]+)\/[a-z0-9._/-]+$/.exec(imagePath);
  if (!match) return undefined;
  const project = match[3] ? `${match[3]}:${match[4]}` : match[4]!;
  return { host: match[1]!, region: match[2]!, project, repository: match[5]! };
}

/** Why `imagePath` (config.repository) is not an Artifact Registry image path Vertex AI can be given, or undefined when it is. */
export function imagePathProblem(imagePath: string): string | undefined {
  if (/^[a-z0-9-]+-docker\.pkg\.dev\/[^/]*:/.test(imagePath))
    return `config.repository ${imagePath} has a colon in its project: Docker names cannot hold one, and Artifact Registry writes a domain-scoped project example.com:my-proj as example.com/my-proj in an image path (cloud.google.com/artifact-registry/docs/docker/names, Domain-scoped projects)`;
  const registry = registryOf(imagePath);
  if (!registry) return `config.repository ${imagePath} is not an Artifact Registry image path (REGION-docker.pkg.dev/PROJECT/REPOSITORY/IMAGE)`;
  if (!REPOSITORY_ID.test(registry.repository))
    return `config.repository ${imagePath}: ${registry.repository} is not an Artifact Registry repository ID (lowercase letters, numbers and hyphens, starting with a letter, ending with a letter or number, at most 63 characters)`;
  return undefined;
}

/** How many environment variables a container may be given: ContainerSpec.env's "Maximum limit is 100" (aiplatform.v1.json, GoogleCloudAiplatformV1ContainerSpec). */
export const MAX_CONTAINER_ENV = 100;

/** The body of `projects.locations.repositories.create` (artifactregistry v1) for a missing Docker repository. */
export function createRepositoryRequest(): { format: "DOCKER"; description: string; labels: Record<string, string> } {
  return { format: "DOCKER", description: "Training images of alekseylearn jobs", labels: { alekseylearn: "training-images" } };
}

// Google's label rules (cloud.google.com/resource-manager/docs/labels-overview): keys start with a lowercase letter; keys and values are at most 63 lowercase letters, digits, _ and -.
const LABEL_KEY = /^[a-z][a-z0-9_-]{0,62}$/;
const LABEL_VALUE = /^[a-z0-9_-]{0,63}$/;

/** A version (0.1.0) or other text as a label value: lowercase, with . and anything else outside the alphabet as -. */
export function labelValue(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9_-]/g, "-")
    .slice(0, 63);
}

/** Every reason `spec` cannot run on Vertex AI, all at once (empty when it can). */
export function planProblems(spec: VertexSpec): string[] {
  const problems: string[] = distributionProblems(spec);
  const { settings } = spec;
  if (!spec.outputPath) problems.push("config.output_path is required on Vertex AI: a gs://BUCKET/PREFIX where the model is written");
  else if (schemeOf(spec.outputPath) !== "gs" || !/^gs:\/\/[a-z0-9][a-z0-9._-]{1,221}[a-z0-9](\/|$)/.test(spec.outputPath))
    problems.push(`config.output_path must be a gs://BUCKET/PREFIX location on Vertex AI, not ${spec.outputPath}`);
  if (!/^[a-z]+-[a-z]+\d+$/.test(settings.region))
    problems.push(`config.region ${settings.region} is not a Google Cloud region (like us-central1 or europe-west4)`);
  if (settings.project !== undefined && !/^[a-z][a-z0-9-]{4,28}[a-z0-9]$|^[a-z][a-z0-9.-]*:[a-z][a-z0-9-]{4,28}[a-z0-9]$/.test(settings.project))
    problems.push(
      `config.project ${settings.project} is not a project ID (Google's rule: 6 to 30 lowercase letters, digits and hyphens, starting with a letter, not ending with a hyphen)`,
    );
  if (settings.accelerator_type !== undefined && !isAcceleratorType(settings.accelerator_type))
    problems.push(`config.accelerator_type ${settings.accelerator_type} is not a Vertex AI accelerator type (like NVIDIA_TESLA_T4 or NVIDIA_L4)`);
  if (!/^[a-z][a-z0-9]*(-[a-z0-9]+)+$/.test(settings.machine_type))
    problems.push(`config.machine_type ${settings.machine_type} is not a Compute Engine machine type (like n1-standard-4 or a2-highgpu-1g)`);
  if (settings.checkpoint_uri !== undefined && schemeOf(settings.checkpoint_uri) !== "gs")
    problems.push(`config.checkpoint_uri must be a gs:// location, not ${settings.checkpoint_uri}`);
  if (settings.service_account !== undefined && !/^[^@\s]+@[^@\s]+\.[a-z]+$/.test(settings.service_account))
    problems.push(`config.service_account ${settings.service_account} is not a service account's email`);
  if (settings.kms_key !== undefined && !/^projects\/[^/]+\/locations\/[^/]+\/keyRings\/[^/]+\/cryptoKeys\/[^/]+$/.test(settings.kms_key))
    problems.push(`config.kms_key ${settings.kms_key} is not a Cloud KMS key name (projects/P/locations/L/keyRings/R/cryptoKeys/K)`);
  if (settings.network !== undefined && !/^projects\/[^/]+\/global\/networks\/[^/]+$/.test(settings.network))
    problems.push(`config.network ${settings.network} is not a network name (projects/NUMBER/global/networks/NAME)`);
  if (settings.quota_project !== undefined && !/^[a-z][a-z0-9-]{4,28}[a-z0-9]$|^[a-z][a-z0-9.-]*:[a-z][a-z0-9-]{4,28}[a-z0-9]$/.test(settings.quota_project))
    problems.push(
      `config.quota_project ${settings.quota_project} is not a project ID (Google's rule: 6 to 30 lowercase letters, digits and hyphens, starting with a letter, not ending with a hyphen)`,
    );
  const repositoryProblem = settings.repository === undefined ? undefined : imagePathProblem(settings.repository);
  if (repositoryProblem) problems.push(repositoryProblem);
  for (const [channel, location] of Object.entries(spec.inputs)) {
    if (schemeOf(location) !== "gs")
      problems.push(
        `input ${channel}: Vertex AI reads inputs from Cloud Storage; upload it (gcloud storage cp --recursive ${location} gs://BUCKET/PREFIX) and pass --input.${channel}=gs://BUCKET/PREFIX`,
      );
    else if (!/^[A-Za-z0-9.\-_]+$/.test(channel)) problems.push(`input ${channel}: channel names are letters, digits, ., - and _`);
  }
  parsePairs(settings.environment, "environment", problems);
  for (const [key, value] of Object.entries(parsePairs(settings.labels, "labels", problems))) {
    if (!LABEL_KEY.test(key) || !LABEL_VALUE.test(value))
      problems.push(`config.labels: ${key}=${value} breaks Google's label rules (at most 63 lowercase letters, digits, _ and -; keys start with a letter)`);
    else if (key.startsWith("alekseylearn")) problems.push(`config.labels: ${key} is alekseylearn's own label`);
  }
  // Vertex refuses a ContainerSpec with more than 100 env entries; counted with alekseylearn's own, as the request will carry them.
  const envCount = customJobRequest(
    { ...spec, outputPath: spec.outputPath || "gs://bucket" },
    { name: PLACEHOLDERS.name, image: "i", submissionId: PLACEHOLDERS.submission, version: "0" },
  ).jobSpec.workerPoolSpecs[0]!.containerSpec.env.length;
  if (envCount > MAX_CONTAINER_ENV)
    problems.push(
      `the job's container would get ${envCount} environment variables (config.environment and alekseylearn's own); Vertex AI takes at most ${MAX_CONTAINER_ENV} (ContainerSpec.env)`,
    );
  try {
    refuseEnvironmentCredentials(spec);
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    problems.push(err.message.replace(/\.$/, "") + (err.hint ? ` (${err.hint.replace(/\.$/, "")})` : ""));
  }
  return problems;
}

/** What the CustomJob needs beyond the spec. */
export interface CustomJobInputs {
  name: string;
  /** The image, by digest (REGION-docker.pkg.dev/P/R/I@sha256:…), so the job runs exactly what was pushed. */
  image: string;
  /** This submission's id, a label of the job. */
  submissionId: string;
  /** alekseylearn's version, a label of the job. */
  version: string;
}

/**
 * The image's arguments: `train` (the runtime's one command, as on SageMaker)
 * and the hyperparameters as typed, `--KEY VALUE` sorted by key, from which
 * the runtime writes hyperparameters.json (Vertex writes no
 * /opt/ml/input/config of its own).
 */
export function containerArgs(spec: VertexSpec): string[] {
  return trainArgs(spec.hyperparameters);
}

/** The CustomJob body for `spec` (pure): what `projects.locations.customJobs.create` is sent. */
export function customJobRequest(spec: VertexSpec, inputs: CustomJobInputs): CustomJobBody {
  const { settings } = spec;
  const ignored: string[] = [];
  const jobOutput = `${spec.outputPath.replace(/\/+$/, "")}/${inputs.name}`;
  const environment: Record<string, string> = {
    ...parsePairs(settings.environment, "environment", ignored),
    ...settingsEnv(runtimeSettings(settings)),
    // The job's name, as SageMaker gives it (the toolkit's SM_TRAINING_ENV reads it), and where the entrypoint finds and leaves files through /gcs.
    TRAINING_JOB_NAME: inputs.name,
    // The machine type, for resourceconfig.json's instance type (SM_CURRENT_INSTANCE_TYPE), which the entrypoint writes on Vertex.
    ALEKSEYLEARN_MACHINE_TYPE: settings.machine_type,
    [OUTPUT_ENV]: fusePath(`${jobOutput}/output`),
  };
  const channels = Object.entries(spec.inputs).sort(([a], [b]) => a.localeCompare(b));
  if (channels.length) environment[INPUTS_ENV] = JSON.stringify(Object.fromEntries(channels.map(([channel, uri]) => [channel, fusePath(uri)])));
  if (settings.checkpoint_uri) environment[CHECKPOINTS_ENV] = fusePath(settings.checkpoint_uri);
  const accelerator = settings.accelerator_type !== undefined && isAcceleratorType(settings.accelerator_type) ? settings.accelerator_type : undefined;
  const pool = (replicas: number): WorkerPoolSpec => ({
    machineSpec: { machineType: settings.machine_type, ...(accelerator ? { acceleratorType: accelerator, acceleratorCount: settings.accelerator_count } : {}) },
    replicaCount: String(replicas),
    diskSpec: { bootDiskType: "pd-ssd", bootDiskSizeGb: settings.boot_disk_size_gb },
    containerSpec: {
      imageUri: inputs.image,
      args: containerArgs(spec),
      env: Object.entries(environment)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([name, value]) => ({ name, value })),
    },
  });
  // Vertex's pool 0 is the chief, with exactly one replica; the other hosts (SageMaker's instance_count, in all) form pool 1, on the same image.
  const workerPoolSpecs = [pool(1), ...(settings.instance_count > 1 ? [pool(settings.instance_count - 1)] : [])];
  const body: CustomJobBody = {
    displayName: inputs.name,
    jobSpec: {
      workerPoolSpecs,
      baseOutputDirectory: { outputUriPrefix: jobOutput },
      scheduling: {
        timeout: `${settings.max_runtime}s`,
        // "Restarts the entire CustomJob if a worker gets restarted" (Scheduling, aiplatform.v1.json): with checkpoints every worker
        // resumes from them; without, one worker's restart would throw away every worker's progress, so only that worker starts over.
        restartJobOnWorkerRestart: settings.checkpoint_uri !== undefined,
        ...(settings.use_spot ? { strategy: "SPOT" as const } : {}),
      },
    },
    labels: {
      alekseylearn: labelValue(inputs.version),
      [SUBMISSION_LABEL]: labelValue(inputs.submissionId),
      ...parsePairs(settings.labels, "labels", ignored),
    },
  };
  if (settings.service_account) body.jobSpec.serviceAccount = settings.service_account;
  if (settings.network) body.jobSpec.network = settings.network;
  if (settings.kms_key) body.encryptionSpec = { kmsKeyName: settings.kms_key };
  return body;
}

/** Where the model lands for a job whose output is `jobOutput` (OUTPUT_PATH/JOB), as on every backend. */
export function modelLocation(jobOutput: string): string {
  return `${jobOutput}/output/model.tar.gz`;
}

/** Every JobState of aiplatform v1 (GoogleCloudAiplatformV1CustomJob.state's enum). */
export const JOB_STATES = [
  "JOB_STATE_UNSPECIFIED",
  "JOB_STATE_QUEUED",
  "JOB_STATE_PENDING",
  "JOB_STATE_RUNNING",
  "JOB_STATE_SUCCEEDED",
  "JOB_STATE_FAILED",
  "JOB_STATE_CANCELLING",
  "JOB_STATE_CANCELLED",
  "JOB_STATE_PAUSED",
  "JOB_STATE_EXPIRED",
  "JOB_STATE_UPDATING",
  "JOB_STATE_PARTIALLY_SUCCEEDED",
] as const;

/**
 * A Vertex job state as the tool's own: queued and pending wait for machines;
 * cancelling, paused and updating are a job still alive (it may yet end
 * either way); expired (it never ran in time) and partially succeeded (some
 * work failed) are failures, since a user cannot trust the model of either.
 */
export function stateOf(state: string): JobState {
  switch (state) {
    case "JOB_STATE_QUEUED":
    case "JOB_STATE_PENDING":
    case "JOB_STATE_UNSPECIFIED":
      return "queued";
    case "JOB_STATE_RUNNING":
    case "JOB_STATE_CANCELLING":
    case "JOB_STATE_PAUSED":
    case "JOB_STATE_UPDATING":
      return "running";
    case "JOB_STATE_SUCCEEDED":
      return "completed";
    case "JOB_STATE_CANCELLED":
      return "stopped";
    case "JOB_STATE_FAILED":
    case "JOB_STATE_EXPIRED":
    case "JOB_STATE_PARTIALLY_SUCCEEDED":
      return "failed";
    default:
      // A state newer than this version knows: still alive until the API says it ended.
      return "running";
  }
}

/** The Cloud Logging filter for a custom job's lines (resource.type ml_job, keyed by the job's numeric id). */
export function logFilter(jobId: string): string {
  return `resource.type="ml_job" AND resource.labels.job_id="${jobId}"`;
}

/** The model folder a job sees, as on every backend (the entrypoint copies it to $AIP_MODEL_DIR as well). */
export const MODEL_DIR = `${ML_ROOT}/model`;
