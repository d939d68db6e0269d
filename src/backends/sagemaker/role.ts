/**
 * The IAM role SageMaker assumes to run a job: found by name (or given as an
 * ARN), and created by `alekseylearn init --backend sagemaker --create-role`
 * with exactly what a job needs: its output path (and inputs and checkpoints)
 * in S3, reading its image from ECR, and writing its logs.
 */
import path from "node:path";
import type { Context } from "../../context.js";
import { failure } from "../../errors.js";
import { parseS3 } from "../../storage/s3.js";
import type { JobSpec } from "../../spec/types.js";
import { awsError, awsFor, errorName } from "./aws.js";
import { roleArnFor } from "./plan.js";

/** The trust policy: SageMaker may assume the role. */
export const TRUST_POLICY = {
  Version: "2012-10-17",
  Statement: [{ Effect: "Allow", Principal: { Service: "sagemaker.amazonaws.com" }, Action: "sts:AssumeRole" }],
};

/** The name of the role's inline policy. */
export const POLICY_NAME = "alekseylearn-training";

/** The permissions a job of `spec` needs, and no more (pure). */
export function rolePolicy(spec: JobSpec, where: { account: string; region: string; partition: string }): object {
  const p = where.partition;
  const locations = [spec.outputPath, ...Object.values(spec.inputs), ...(spec.settings.checkpoint_s3_uri ? [String(spec.settings.checkpoint_s3_uri)] : [])].filter((location) => location.startsWith("s3://"));
  const buckets = [...new Set(locations.map((location) => parseS3(location).bucket))].sort();
  const objects = [...new Set(locations.map((location) => {
    const { bucket, key } = parseS3(location);
    return `arn:${p}:s3:::${bucket}/${key.replace(/\/+$/, "")}${key ? "/" : ""}*`;
  }))].sort();
  return {
    Version: "2012-10-17",
    Statement: [
      { Sid: "JobData", Effect: "Allow", Action: ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"], Resource: objects },
      { Sid: "JobBuckets", Effect: "Allow", Action: ["s3:ListBucket", "s3:GetBucketLocation"], Resource: buckets.map((bucket) => `arn:${p}:s3:::${bucket}`) },
      { Sid: "ImagePull", Effect: "Allow", Action: ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"], Resource: `arn:${p}:ecr:${where.region}:${where.account}:repository/alekseylearn/*` },
      { Sid: "ImageAuth", Effect: "Allow", Action: "ecr:GetAuthorizationToken", Resource: "*" },
      {
        Sid: "Logs",
        Effect: "Allow",
        Action: ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
        Resource: `arn:${p}:logs:${where.region}:${where.account}:log-group:/aws/sagemaker/TrainingJobs:*`,
      },
    ],
  };
}

/** The command that creates the default role, as `fit` suggests it. */
export function createRoleCommand(spec: JobSpec, cwd: string): string {
  const full = spec.artifact.isFolder ? spec.artifact.dir : path.join(spec.artifact.dir, spec.artifact.entry);
  const artifact = path.relative(cwd, full) || ".";
  return `alekseylearn init ${artifact.startsWith("..") ? full : artifact}${spec.artifact.isFolder ? ` --entry ${spec.artifact.entry}` : ""} --backend sagemaker --create-role --config.output_path=${spec.outputPath}`;
}

/** The ARN of the role called `name`, or undefined when there is no such role. */
async function findRoleArn(name: string, ctx: Context): Promise<string | undefined> {
  const { client, sdk } = await (await awsFor(ctx)).iam();
  try {
    const found = await client.send(new sdk.GetRoleCommand({ RoleName: name }), { abortSignal: ctx.signal });
    return found.Role?.Arn;
  } catch (err) {
    if (errorName(err) === "NoSuchEntityException" || errorName(err) === "NoSuchEntity") return undefined;
    throw awsError(err, `looking up the IAM role ${name}`);
  }
}

/** The role ARN the job runs as; a UserError naming the command that creates it when the named role is missing. */
export async function resolveRole(spec: JobSpec, ctx: Context): Promise<string> {
  const aws = await awsFor(ctx);
  const { account, partition } = await aws.identity();
  if (spec.settings.role_arn) return roleArnFor(spec, account, partition);
  const name = String(spec.settings.role_name);
  const arn = await findRoleArn(name, ctx);
  if (arn) return arn;
  throw failure(`The IAM role ${name} does not exist in account ${account}; SageMaker runs the job as that role.`, `Create it with: ${createRoleCommand(spec, ctx.cwd)}\n(or name an existing role with --config.role_name=NAME or --config.role_arn=ARN)`);
}

/** Create the role (or, when it exists, bring its policy up to date) for `spec`; returns its ARN and whether it was made now. */
export async function createRole(spec: JobSpec, ctx: Context): Promise<{ arn: string; created: boolean }> {
  const aws = await awsFor(ctx);
  const where = { ...(await aws.identity()), region: aws.region };
  const { client, sdk } = await aws.iam();
  const name = String(spec.settings.role_name);
  let arn = await findRoleArn(name, ctx);
  let created = false;
  try {
    if (!arn) {
      const made = await client.send(new sdk.CreateRoleCommand({
        RoleName: name,
        AssumeRolePolicyDocument: JSON.stringify(TRUST_POLICY),
        Description: "Runs alekseylearn training jobs on SageMaker",
        Tags: [{ Key: "alekseylearn:role", Value: "training" }],
      }), { abortSignal: ctx.signal });
      arn = made.Role?.Arn ?? `arn:${where.partition}:iam::${where.account}:role/${name}`;
      created = true;
    }
    await client.send(new sdk.PutRolePolicyCommand({ RoleName: name, PolicyName: POLICY_NAME, PolicyDocument: JSON.stringify(rolePolicy(spec, where)) }), { abortSignal: ctx.signal });
  } catch (err) {
    throw awsError(err, `creating the IAM role ${name}`);
  }
  return { arn, created };
}
