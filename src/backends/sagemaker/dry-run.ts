/**
 * `fit --dry-run` on SageMaker: the requests a submission would send, from
 * the pure plan functions, with what AWS can tell without anything being
 * created — who you are (STS), the role (IAM GetRole), the output bucket
 * (HeadBucket) and the image repository (ECR DescribeRepositories). Without
 * AWS credentials the plan is still made, with the account as a placeholder,
 * and the checks it skipped are named.
 */
import { awsConfigured, awsRegion } from "../../aws.js";
import type { Context } from "../../context.js";
import { failure } from "../../errors.js";
import type { SageMakerJob } from "./schema.js";
import { SAGEMAKER_PLATFORM } from "../../package/container.js";
import { baseImageFor } from "../../package/image.js";
import { imagePlan } from "../../package/image-plan.js";
import { VERSION } from "../../version.js";
import type { ProviderRequest, SubmissionPlan } from "../types.js";
import { awsFor } from "./aws.js";
import { checkBucket } from "./bucket.js";
import { findRepository } from "./image.js";
import { registryOverride } from "../../package/registry.js";
import {
  createRepositoryRequest,
  imageReference,
  isGpuInstance,
  PLACEHOLDERS,
  repositoryName,
  requestProblems,
  roleArnFor,
  trainingJobRequest,
} from "./plan.js";
import { checkRolePermissions, resolveRole, roleDeniedError } from "./role.js";

/** What a SageMaker submission of `job` would do; a UserError for what AWS says would fail (a missing role or bucket), as `fit` would. */
export async function planSageMaker(job: SageMakerJob, ctx: Context): Promise<SubmissionPlan> {
  const { spec } = job;
  const checks: SubmissionPlan["checks"] = { done: [], skipped: [] };
  const placeholders = [
    `the image digest ${PLACEHOLDERS.digest} (known once the image is built and pushed)`,
    `the submission id ${PLACEHOLDERS.submission} (made at submission)`,
  ];
  const repository = repositoryName(spec);
  const requests: ProviderRequest[] = [];
  let image: string;
  let roleArn: string;
  if (awsConfigured(ctx.env)) {
    const aws = await awsFor(ctx);
    const { account } = await aws.identity();
    checks.done.push(`sts:GetCallerIdentity: account ${account}, region ${aws.region}`);
    roleArn = await resolveRole(spec, ctx);
    checks.done.push(`iam:GetRole: the job runs as ${roleArn}`);
    // The role's own policies against this job's paths and repository, as fit checks them before it builds.
    const role = await checkRolePermissions(spec, ctx, job.name);
    if (role.verdict === "deny") throw roleDeniedError(role);
    if (role.verdict === "ok") checks.done.push("the role's policies allow this job's output, inputs, checkpoints and image");
    else if (role.verdict === "unknown") checks.skipped.push(`the role's policies against this job: ${role.why}`);
    else checks.skipped.push("the role's policies against this job (config.check_role=false)");
    await checkBucket(spec.outputPath, "config.output_path", ctx);
    checks.done.push(`s3:HeadBucket: the output bucket of ${spec.outputPath} exists`);
    const existing = await findRepository(repository, ctx);
    checks.done.push(`ecr:DescribeRepositories: ${existing ? `${repository} exists` : `${repository} does not exist yet; it would be created`}`);
    if (!existing) requests.push({ api: "ecr", operation: "CreateRepository", request: createRepositoryRequest(repository) });
    image = existing
      ? `${registryOverride(existing, ctx.env)}@${PLACEHOLDERS.digest}`
      : imageReference({ account, region: aws.region, ...(ctx.env.ALEKSEYLEARN_REGISTRY ? { registry: ctx.env.ALEKSEYLEARN_REGISTRY } : {}) }, repository);
  } else {
    const region = awsRegion(ctx.env);
    checks.skipped.push("no AWS credentials found: who you are (STS), the role (IAM), the output bucket (S3) and the image repository (ECR) were not checked");
    placeholders.unshift(`the AWS account ${PLACEHOLDERS.account}`);
    roleArn = roleArnFor(spec, PLACEHOLDERS.account);
    image = imageReference({ account: PLACEHOLDERS.account, region }, repository);
  }
  const request = trainingJobRequest(spec, { name: job.name, image, roleArn, submissionId: PLACEHOLDERS.submission, version: VERSION });
  const problems = requestProblems(request);
  if (problems.length)
    throw failure(
      `The training job would be refused by SageMaker:`,
      "Change the settings named above.",
      problems.map((problem) => `- ${problem}`),
    );
  checks.done.push("the CreateTrainingJob request is within every limit and pattern of SageMaker's published API model");
  requests.push({ api: "sagemaker", operation: "CreateTrainingJob", request });
  const base = baseImageFor(spec, spec.settings.base_image, isGpuInstance(spec.settings.instance_type));
  return {
    backend: "sagemaker",
    job: job.name,
    ...imagePlan(spec, base, SAGEMAKER_PLATFORM, ctx),
    requests,
    checks,
    placeholders,
  };
}
