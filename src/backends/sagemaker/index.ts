/**
 * The SageMaker backend: the artifact's image is built with the local Docker
 * and pushed to ECR, the job is created with CreateTrainingJob, followed
 * through DescribeTrainingJob (its SecondaryStatus transitions) and CloudWatch
 * Logs, and its model is fetched from S3 where SageMaker writes it.
 */
import { randomUUID } from "node:crypto";
import type { DescribeTrainingJobResponse } from "@aws-sdk/client-sagemaker";
import { awsConfigured } from "../../aws.js";
import type { Context } from "../../context.js";
import { failure } from "../../errors.js";
import { isFinal, type JobRecord, type JobState } from "../../jobs/job.js";
import { joinLocation } from "../../storage/location.js";
import { validateSettings } from "../../spec/schema.js";
import { VERSION } from "../../version.js";
import type { Backend, JobChanges } from "../types.js";
import { followCloudJob, leftOutput } from "../follow.js";
import { elsewhereSpec } from "../common.js";
import { awsError, awsFor, errorName } from "./aws.js";
import { checkBucket } from "./bucket.js";
import { sagemakerDoctor } from "./doctor.js";
import { pushTrainingImage } from "./image.js";
import type { PushedImage } from "../../package/registry.js";
import { TrainingLog } from "./logs.js";
import { planSageMaker } from "./dry-run.js";
import { planProblems, requestProblems, SUBMISSION_TAG, trainingJobRequest, wantsGpu } from "./plan.js";
import { checkRolePermissions, createRole, resolveRole, roleDeniedError, whileRoleSettles } from "./role.js";
import { sagemakerSchema, type SageMakerJob, type SageMakerProvider, type SageMakerSpec } from "./schema.js";

/** SageMaker's secondary statuses before the training code runs. */
const WAITING = new Set(["Starting", "Pending", "LaunchingMLInstances", "PreparingTrainingStack", "Downloading", "DownloadingTrainingImage"]);

/** The unified state of a SageMaker job. */
export function stateOf(status: string | undefined, secondary: string | undefined): JobState {
  switch (status) {
    case "Completed":
      return "completed";
    case "Failed":
      return "failed";
    case "Stopped":
      return "stopped";
    case "Deleting":
      // DeleteTrainingJob is allowed only on a job in a terminal state (Stopped, Failed or Completed: botocore's sagemaker
      // model, DeleteTrainingJob), so the job has ended; SageMaker no longer says how, and its record is going away.
      return "stopped";
    default:
      return secondary && WAITING.has(secondary) ? "queued" : "running";
  }
}

/** Create the job; a retried request whose first try did reach SageMaker finds its own job instead of launching a second. */
export async function createJob(request: ReturnType<typeof trainingJobRequest>, submissionId: string, ctx: Context): Promise<string> {
  const { client: sagemaker, sdk } = await (await awsFor(ctx)).sagemaker();
  try {
    const created = await sagemaker.send(new sdk.CreateTrainingJobCommand(request));
    return created.TrainingJobArn ?? "";
  } catch (err) {
    if (errorName(err) !== "ResourceInUse") throw awsError(err, `creating the training job ${request.TrainingJobName}`);
    // The name is taken: by this very submission when its tag says so (an earlier try got through), else by another job.
    const existing = await sagemaker.send(new sdk.DescribeTrainingJobCommand({ TrainingJobName: request.TrainingJobName }));
    const arn = existing.TrainingJobArn ?? "";
    const tags = await sagemaker.send(new sdk.ListTagsCommand({ ResourceArn: arn }));
    if (tags.Tags?.some((tag) => tag.Key === SUBMISSION_TAG && tag.Value === submissionId)) return arn;
    throw failure(
      `SageMaker already has a training job named ${request.TrainingJobName}.`,
      "Training job names are unique per account and region; pick another with --name.",
    );
  }
}

/**
 * Build the job's image while who you are, the role and the output bucket are checked; the image goes to
 * ECR only once all have passed (a failed check stops the build and leaves nothing in AWS). Returns the
 * pushed image and the role's ARN.
 */
async function buildWhileChecking(spec: SageMakerSpec, ctx: Context): Promise<{ pushed: PushedImage; roleArn: string }> {
  const aws = await awsFor(ctx);
  const checks = new AbortController();
  const signal = ctx.signal ? AbortSignal.any([ctx.signal, checks.signal]) : checks.signal;
  let open!: (ok: boolean) => void;
  const gate = new Promise<boolean>((resolve) => (open = resolve));
  let buildStarted!: () => void;
  const started = new Promise<void>((resolve) => (buildStarted = resolve));
  const pushing = pushTrainingImage(spec, { ...ctx, signal }, { gate, onBuildStarted: buildStarted });
  pushing.catch(() => {}); // awaited below, after the checks
  // Loading the SDK modules holds the JavaScript thread: they load once Docker is building (or could not start).
  await Promise.race([
    started,
    pushing.then(
      () => {},
      () => {},
    ),
  ]);
  void aws.sagemaker().catch(() => {});
  try {
    await aws.identity();
    const [roleArn] = await Promise.all([resolveRole(spec, ctx), checkBucket(spec.outputPath, "config.output_path", ctx)]);
    open(true);
    return { pushed: await pushing, roleArn };
  } catch (err) {
    checks.abort();
    open(false);
    await pushing.catch(() => {});
    throw err;
  }
}

/** The record's changes for what DescribeTrainingJob said. */
export function changesFrom(answer: DescribeTrainingJobResponse, record: JobRecord): JobChanges {
  const state = stateOf(answer.TrainingJobStatus, answer.SecondaryStatus);
  const transitions = answer.SecondaryStatusTransitions ?? [];
  const last = transitions[transitions.length - 1];
  const changes: JobChanges = {
    state,
    provider: {
      ...record.provider,
      status: answer.TrainingJobStatus ?? "",
      secondary: answer.SecondaryStatus ?? "",
      message: last?.StatusMessage ?? "",
      ...(answer.BillableTimeInSeconds !== undefined ? { billableSeconds: String(answer.BillableTimeInSeconds) } : {}),
    },
  };
  if (answer.TrainingStartTime) changes.startedAt = new Date(answer.TrainingStartTime).toISOString();
  if (isFinal(state)) changes.endedAt = new Date(answer.TrainingEndTime ?? answer.LastModifiedTime ?? Date.now()).toISOString();
  if (answer.ModelArtifacts?.S3ModelArtifacts && state === "completed") changes.model = answer.ModelArtifacts.S3ModelArtifacts;
  if (answer.TrainingJobStatus === "Deleting")
    changes.reason = `deleted on SageMaker (status Deleting, after DeleteTrainingJob): the job had ended${answer.FailureReason ? ` (${answer.FailureReason})` : ""}; SageMaker keeps no record of it once deleted`;
  else if (answer.FailureReason) changes.reason = answer.FailureReason;
  else if (state === "stopped") changes.reason = "stopped by request";
  return changes;
}

/** A status line for the log: SageMaker's secondary status and its message. */
function statusLine(record: JobRecord): string {
  const { secondary, message } = record.provider ?? {};
  return `[sagemaker] ${secondary || record.state}${message ? `: ${message}` : ""}`;
}

/** The SageMaker backend. */
export const sagemakerBackend = {
  name: "sagemaker",
  summary: "AWS SageMaker training jobs: the image is built with Docker and pushed to ECR; the model lands in S3",
  schema: sagemakerSchema,
  onInterrupt: "detach",

  check: planProblems,
  plan: planSageMaker,
  wantsGpu,

  async doctor(spec, ctx, options) {
    return sagemakerDoctor(spec, ctx, options);
  },
  async createRole(spec, ctx) {
    return createRole(spec, ctx);
  },

  async submit(job, ctx, options) {
    const { spec } = job;
    const aws = await awsFor(ctx);
    // The role's own policies against this job, before anything is built: a definite deny stops here, naming the fix.
    const role = await checkRolePermissions(spec, ctx, job.name);
    if (role.verdict === "deny") throw roleDeniedError(role);
    if (role.verdict === "unknown") ctx.reporter.warn(`Could not check the role ${role.roleArn} against this job (${role.why}); going on.`);
    const { pushed, roleArn } = await buildWhileChecking(spec, ctx);
    if (/AmazonSageMaker-ExecutionRole/.test(roleArn) && !spec.outputPath.includes("sagemaker")) {
      ctx.reporter.warn(
        `${roleArn} is a role SageMaker created, which may only write to S3 keys containing "sagemaker"; ${spec.outputPath} has no such part, so the model upload may be denied.`,
      );
    }
    const submission = randomUUID();
    const request = trainingJobRequest(spec, { name: job.name, image: pushed.image, roleArn, submissionId: submission, version: VERSION });
    // check() held the request to SageMaker's limits with stand-ins before the build; the real image reference and role are checked too.
    const problems = requestProblems(request);
    if (problems.length)
      throw failure(
        "The training job would be refused by SageMaker:",
        "Change the settings named above.",
        problems.map((problem) => `- ${problem}`),
      );
    ctx.reporter.info(
      `Creating the training job ${job.name} on ${request.ResourceConfig?.InstanceCount} × ${request.ResourceConfig?.InstanceType} in ${aws.region}…`,
    );
    const arn = await whileRoleSettles(() => createJob(request, submission, ctx), role.verdict === "skipped" ? undefined : role.createdAt, ctx);
    if (options.detach) ctx.reporter.info(`Submitted ${arn}`);
    return {
      state: "queued",
      provider: {
        arn,
        region: aws.region,
        image: pushed.image,
        role: roleArn,
        submission,
        layersPushed: String(pushed.layersPushed),
        stepsRun: String(pushed.stepsRun),
      },
    };
  },

  async describe(job, ctx) {
    if (isFinal(job.state) || !job.provider?.arn) return {};
    const { client: sagemaker, sdk } = await (await awsFor(ctx)).sagemaker();
    let answer: DescribeTrainingJobResponse;
    try {
      answer = await sagemaker.send(new sdk.DescribeTrainingJobCommand({ TrainingJobName: job.name }));
    } catch (err) {
      throw awsError(err, `asking SageMaker about ${job.name}`);
    }
    const changes = changesFrom(answer, job);
    if (changes.state === "completed" || changes.state === "failed") {
      const output = await leftOutput(job.jobOutput, ctx);
      if (output) changes.output = output;
    }
    return changes;
  },

  async *logs(job, ctx, options) {
    const log = new TrainingLog(job.name, ctx, options.signal, job.spec.settings.instance_count);
    yield* followCloudJob({
      follow: options.follow,
      ...(options.signal ? { signal: options.signal } : {}),
      pollSeconds: job.spec.settings.poll_interval,
      refresh: async () => (options.refresh ? await options.refresh() : { ...job, ...(await this.describe(job, ctx)) }),
      status: (record) => (record.provider?.arn ? statusLine(record) : undefined),
      read: () => log.read(),
      ended: (record) => {
        const billable = record.provider?.billableSeconds;
        return billable === undefined
          ? []
          : [`[sagemaker] ${record.state}; billable time ${billable} s${record.spec.settings.use_spot ? " (managed spot)" : ""}`];
      },
    });
  },

  async lookup(name, ctx) {
    if (!awsConfigured(ctx.env)) return undefined;
    let answer: DescribeTrainingJobResponse;
    try {
      const { client: sagemaker, sdk } = await (await awsFor(ctx)).sagemaker();
      answer = await sagemaker.send(new sdk.DescribeTrainingJobCommand({ TrainingJobName: name }));
    } catch {
      return undefined; // no such job, or no AWS to ask: the caller says the name is unknown
    }
    const outputPath = answer.OutputDataConfig?.S3OutputPath?.replace(/\/+$/, "") ?? "";
    const created = new Date(answer.CreationTime ?? Date.now()).toISOString();
    // What is known of a job started elsewhere: its settings as SageMaker reports them (the rest at their defaults); its code is not here.
    const { settings } = validateSettings(
      sagemakerSchema,
      {
        instance_type: answer.ResourceConfig?.InstanceType ?? "",
        instance_count: answer.ResourceConfig?.InstanceCount ?? 1,
        use_spot: answer.EnableManagedSpotTraining ?? false,
      },
      "the sagemaker backend",
    );
    const record: SageMakerJob = {
      name,
      backend: "sagemaker",
      state: "queued",
      spec: elsewhereSpec("sagemaker", settings, {
        hyperparameters: { ...answer.HyperParameters },
        inputs: Object.fromEntries((answer.InputDataConfig ?? []).map((channel) => [channel.ChannelName ?? "", channel.DataSource?.S3DataSource?.S3Uri ?? ""])),
        outputPath,
      }),
      createdAt: created,
      jobOutput: outputPath ? joinLocation(outputPath, name) : "",
      provider: {
        arn: answer.TrainingJobArn ?? "",
        region: (await awsFor(ctx)).region,
        image: answer.AlgorithmSpecification?.TrainingImage ?? "",
        role: answer.RoleArn ?? "",
      },
    };
    return { ...record, ...changesFrom(answer, record) };
  },

  async stop(job, ctx) {
    const { client: sagemaker, sdk } = await (await awsFor(ctx)).sagemaker();
    try {
      await sagemaker.send(new sdk.StopTrainingJobCommand({ TrainingJobName: job.name }));
    } catch (err) {
      throw awsError(err, `stopping ${job.name}`);
    }
  },
} satisfies Backend<typeof sagemakerSchema, SageMakerProvider>;
