/**
 * The IAM role SageMaker assumes to run a job: found by name (or given as an
 * ARN); created, or widened, by `alekseylearn init --backend sagemaker
 * --create-role` so that one role serves every project (each project's
 * output, inputs, checkpoints and repository are added to what it already
 * allows); and checked before a build against what this job needs.
 */
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Context } from "../../context.js";
import { failure, UserError } from "../../errors.js";
import { parseS3, s3Client } from "../../storage/s3.js";
import type { SageMakerSpec } from "./schema.js";
import { awsError, awsFor, errorName } from "./aws.js";
import { repositoryName, roleArnFor } from "./plan.js";
import { evaluate, type Decision, type PolicyDocument, type PolicyStatement } from "./policy.js";
import { DEFAULT_ROLE_NAME } from "./schema.js";

/** The trust policy: SageMaker may assume the role. */
export const TRUST_POLICY = {
  Version: "2012-10-17",
  Statement: [{ Effect: "Allow", Principal: { Service: "sagemaker.amazonaws.com" }, Action: "sts:AssumeRole" }],
};

/** The name of the role's inline policy. */
export const POLICY_NAME = "alekseylearn-training";

/** Where ARNs are made: the caller's account, the region, the partition. */
export interface Where {
  account: string;
  region: string;
  partition: string;
}

/** IAM's limit on a role's inline policies, in characters without whitespace (IAM and AWS STS quotas). */
export const ROLE_POLICY_MAX = 10_240;

/**
 * The object ARN patterns of the S3 locations a job of `spec` touches. The
 * output path and checkpoint location are written below them (`KEY/*`).
 * SageMaker reads an S3Prefix channel as every key that starts with it, so an
 * input is `KEY*`: a single object (`data/train.csv`) and a prefix alike.
 */
function objectPatterns(spec: SageMakerSpec, partition: string): string[] {
  const pattern = (location: string, below: boolean): string => {
    const { bucket, key } = parseS3(location);
    const base = below ? key.replace(/\/+$/, "") : key;
    return `arn:${partition}:s3:::${bucket}/${base}${below && base ? "/" : ""}*`;
  };
  const written = [spec.outputPath, ...(spec.settings.checkpoint_s3_uri ? [spec.settings.checkpoint_s3_uri] : [])];
  return [
    ...written.filter(isS3).map((location) => pattern(location, true)),
    ...Object.values(spec.inputs)
      .filter(isS3)
      .map((location) => pattern(location, false)),
  ];
}

function isS3(location: string): boolean {
  return location.startsWith("s3://");
}

/** The buckets of the S3 locations a job of `spec` touches. */
function bucketsOf(spec: SageMakerSpec): string[] {
  return [spec.outputPath, ...Object.values(spec.inputs), ...(spec.settings.checkpoint_s3_uri ? [spec.settings.checkpoint_s3_uri] : [])]
    .filter(isS3)
    .map((location) => parseS3(location).bucket);
}

/** The KMS key ARN of config.kms_key (a key ID, key ARN, alias name or alias ARN). */
export function kmsKeyArn(key: string, where: Where): string {
  if (key.startsWith("arn:")) return key;
  return `arn:${where.partition}:kms:${where.region}:${where.account}:${key.startsWith("alias/") ? key : `key/${key}`}`;
}

/** The ECR repository ARN of `name`. */
function repositoryArn(name: string, where: Where): string {
  return `arn:${where.partition}:ecr:${where.region}:${where.account}:repository/${name}`;
}

/** Drop every pattern another one covers (`a/*` covers `a/b/*` and `a/b*`); sorted, so the same grants give the same policy. */
export function collapse(patterns: Iterable<string>): string[] {
  const unique = [...new Set(patterns)].sort();
  return unique.filter((pattern) => !unique.some((other) => other !== pattern && other.endsWith("*") && pattern.startsWith(other.slice(0, -1))));
}

/** The grants of the role's policy that vary by project. */
interface Grants {
  objects: string[];
  buckets: string[];
  repositories: string[];
  keys: string[];
}

/** The project grants of a policy this module wrote (by its statements' Sids). */
function grantsOf(document: PolicyDocument | undefined): Grants {
  const grants: Grants = { objects: [], buckets: [], repositories: [], keys: [] };
  const statements = document ? (Array.isArray(document.Statement) ? document.Statement : [document.Statement]) : [];
  const into: Record<string, keyof Grants> = { JobData: "objects", JobBuckets: "buckets", ImagePull: "repositories", JobKeys: "keys" };
  for (const statement of statements) {
    const kind = into[statement.Sid ?? ""];
    if (kind && statement.Resource !== undefined) grants[kind].push(...[statement.Resource].flat());
  }
  return grants;
}

/**
 * The role's policy: what `existing` (the policy as it is) allows, and what a
 * job of `spec` needs, merged by bucket with covered prefixes dropped (pure).
 * What every job needs besides is in AWS's documented training role:
 * CloudWatch metrics and logs, the ECR login, and pulling the image
 * (https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html#sagemaker-roles-createtrainingjob-perms).
 */
export function rolePolicy(spec: SageMakerSpec, where: Where, existing?: PolicyDocument): PolicyDocument {
  const p = where.partition;
  const had = grantsOf(existing);
  const objects = collapse([...had.objects, ...objectPatterns(spec, p)]);
  const buckets = collapse([...had.buckets, ...bucketsOf(spec).map((bucket) => `arn:${p}:s3:::${bucket}`)]);
  // The default repositories are all under alekseylearn/; config.repository may name any other.
  const repositories = collapse([...had.repositories, repositoryArn("alekseylearn/*", where), repositoryArn(repositoryName(spec), where)]);
  const keys = collapse([...had.keys, ...(spec.settings.kms_key ? [kmsKeyArn(spec.settings.kms_key, where)] : [])]);
  const logGroup = `arn:${p}:logs:${where.region}:${where.account}:log-group:/aws/sagemaker/TrainingJobs`;
  const statements: PolicyStatement[] = [
    { Sid: "JobData", Effect: "Allow", Action: ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"], Resource: objects },
    { Sid: "JobBuckets", Effect: "Allow", Action: ["s3:ListBucket", "s3:GetBucketLocation"], Resource: buckets },
    {
      Sid: "ImagePull",
      Effect: "Allow",
      Action: ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
      Resource: repositories,
    },
    { Sid: "ImageAuth", Effect: "Allow", Action: "ecr:GetAuthorizationToken", Resource: "*" },
    {
      Sid: "Logs",
      Effect: "Allow",
      Action: ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
      Resource: [logGroup, `${logGroup}:*`],
    },
    // PutMetricData takes no resource-level permission: `*` is its only resource.
    { Sid: "Metrics", Effect: "Allow", Action: "cloudwatch:PutMetricData", Resource: "*" },
  ];
  // The model is encrypted with the key, and the volume's grant made with it (OutputDataConfig.KmsKeyId, ResourceConfig.VolumeKmsKeyId).
  if (keys.length)
    statements.push({
      Sid: "JobKeys",
      Effect: "Allow",
      Action: ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:CreateGrant", "kms:DescribeKey"],
      Resource: keys,
    });
  return { Version: "2012-10-17", Statement: statements };
}

/** A policy's size as IAM counts it against its limit: its JSON without whitespace. */
export function policySize(document: PolicyDocument): number {
  return JSON.stringify(document).length;
}

/** The `init --create-role` command that gives the role what a job of `spec` needs (its output, inputs, checkpoints, repository and key). */
export function createRoleCommand(spec: SageMakerSpec, cwd: string): string {
  const full = spec.artifact.isFolder ? spec.artifact.dir : path.join(spec.artifact.dir, spec.artifact.entry);
  const artifact = path.relative(cwd, full) || ".";
  const { settings } = spec;
  const parts = [`alekseylearn init ${artifact.startsWith("..") ? full : artifact}`];
  if (spec.artifact.isFolder) parts.push(`--entry ${spec.artifact.entry}`);
  parts.push("--backend sagemaker --create-role", `--config.output_path=${spec.outputPath}`);
  for (const [channel, location] of Object.entries(spec.inputs)) parts.push(`--input.${channel}=${location}`);
  if (settings.checkpoint_s3_uri) parts.push(`--config.checkpoint_s3_uri=${settings.checkpoint_s3_uri}`);
  if (settings.repository) parts.push(`--config.repository=${settings.repository}`);
  if (settings.kms_key) parts.push(`--config.kms_key=${settings.kms_key}`);
  if (settings.role_name && settings.role_name !== DEFAULT_ROLE_NAME) parts.push(`--config.role_name=${settings.role_name}`);
  return parts.join(" ");
}

/** The role called `name` (its ARN and when it was made), or undefined when there is no such role. */
async function findRole(name: string, ctx: Context): Promise<{ arn: string; created?: Date; boundary?: string } | undefined> {
  const { client, sdk } = await (await awsFor(ctx)).iam();
  try {
    const found = await client.send(new sdk.GetRoleCommand({ RoleName: name }), { abortSignal: ctx.signal });
    if (!found.Role?.Arn) return undefined;
    return {
      arn: found.Role.Arn,
      ...(found.Role.CreateDate ? { created: new Date(found.Role.CreateDate) } : {}),
      ...(found.Role.PermissionsBoundary?.PermissionsBoundaryArn ? { boundary: found.Role.PermissionsBoundary.PermissionsBoundaryArn } : {}),
    };
  } catch (err) {
    if (errorName(err) === "NoSuchEntityException" || errorName(err) === "NoSuchEntity") return undefined;
    throw awsError(err, `looking up the IAM role ${name} (iam:GetRole)`);
  }
}

/** The role ARN the job runs as; a UserError naming the command that creates it when the named role is missing. */
export async function resolveRole(spec: SageMakerSpec, ctx: Context): Promise<string> {
  const aws = await awsFor(ctx);
  const { account, partition } = await aws.identity();
  if (spec.settings.role_arn) return roleArnFor(spec, account, partition);
  const name = spec.settings.role_name;
  const role = await findRole(name, ctx);
  if (role) return role.arn;
  throw failure(
    `The IAM role ${name} does not exist in account ${account}; SageMaker runs the job as that role.`,
    `Create it with: ${createRoleCommand(spec, ctx.cwd)}\n(or name an existing role with --config.role_name=NAME or --config.role_arn=ARN)`,
  );
}

/** An IAM policy document as IAM returns it (URL-encoded JSON). */
function parseDocument(encoded: string | undefined): PolicyDocument | undefined {
  if (!encoded) return undefined;
  return JSON.parse(decodeURIComponent(encoded)) as PolicyDocument;
}

/** The role's inline policy that this module writes, or undefined when it has none yet. */
async function currentPolicy(name: string, ctx: Context): Promise<PolicyDocument | undefined> {
  const { client, sdk } = await (await awsFor(ctx)).iam();
  try {
    const got = await client.send(new sdk.GetRolePolicyCommand({ RoleName: name, PolicyName: POLICY_NAME }), { abortSignal: ctx.signal });
    return parseDocument(got.PolicyDocument);
  } catch (err) {
    if (errorName(err) === "NoSuchEntityException" || errorName(err) === "NoSuchEntity") return undefined;
    throw awsError(err, `reading the policy of the IAM role ${name} (iam:GetRolePolicy)`);
  }
}

/**
 * Create the role (or, when it exists, add what a job of `spec` needs to what
 * its policy already allows, so every project's jobs keep working); returns
 * its ARN and whether it was made now. Stops before IAM's size limit on a
 * role's policies would be passed, naming a role of the project's own.
 */
export async function createRole(spec: SageMakerSpec, ctx: Context): Promise<{ arn: string; created: boolean }> {
  const aws = await awsFor(ctx);
  const where = { ...(await aws.identity()), region: aws.region };
  const { client, sdk } = await aws.iam();
  const name = spec.settings.role_name;
  const found = await findRole(name, ctx);
  const policy = rolePolicy(spec, where, found ? await currentPolicy(name, ctx) : undefined);
  const size = policySize(policy);
  if (size > ROLE_POLICY_MAX) {
    throw new UserError(
      `The role ${name} would need a policy of ${size} characters to serve this project too; IAM allows ${ROLE_POLICY_MAX} for a role's inline policies.`,
      `Give this project a role of its own: add --config.role_name=NAME (here and to fit, or as config.role_name in alekseylearn.yml). Nothing was changed.`,
    );
  }
  let arn = found?.arn;
  try {
    if (!arn) {
      const made = await client.send(
        new sdk.CreateRoleCommand({
          RoleName: name,
          AssumeRolePolicyDocument: JSON.stringify(TRUST_POLICY),
          Description: "Runs alekseylearn training jobs on SageMaker",
          Tags: [{ Key: "alekseylearn:role", Value: "training" }],
        }),
        { abortSignal: ctx.signal },
      );
      arn = made.Role?.Arn ?? `arn:${where.partition}:iam::${where.account}:role/${name}`;
    }
    await client.send(new sdk.PutRolePolicyCommand({ RoleName: name, PolicyName: POLICY_NAME, PolicyDocument: JSON.stringify(policy) }), {
      abortSignal: ctx.signal,
    });
  } catch (err) {
    throw awsError(err, `creating the IAM role ${name}`);
  }
  return { arn, created: !found };
}

// ---------------------------------------------------------------- the check before a build

/** One permission a job needs of its role: an action on a resource, and what for. */
export interface RoleNeed {
  action: string;
  /** The resource ARN; alternatives (a single object or a prefix) when any one of them will do. */
  resources: string[];
  why: string;
}

/** What the role's own policies say of this job: `ok`; `deny` with what is missing; `unknown` with why it cannot be told; `skipped` with config.check_role=false. */
export type RoleCheck =
  | { verdict: "ok"; roleArn: string; createdAt?: Date }
  | { verdict: "deny"; roleArn: string; missing: RoleNeed[]; fix: string; createdAt?: Date }
  | { verdict: "unknown"; roleArn: string; why: string; createdAt?: Date }
  | { verdict: "skipped"; roleArn: string };

/** What a job of `spec` named `jobName` needs its role to allow: writing its model, reading its inputs, syncing checkpoints, pulling its image (pure). */
export function roleNeeds(spec: SageMakerSpec, where: Where, jobName: string): RoleNeed[] {
  const p = where.partition;
  const needs: RoleNeed[] = [];
  const object = (bucket: string, key: string): string => `arn:${p}:s3:::${bucket}/${key}`;
  if (spec.outputPath.startsWith("s3://")) {
    const { bucket, key } = parseS3(spec.outputPath);
    needs.push({
      action: "s3:PutObject",
      resources: [object(bucket, `${key.replace(/\/+$/, "")}${key ? "/" : ""}${jobName}/output/model.tar.gz`)],
      why: `writing the model to ${spec.outputPath}`,
    });
  }
  for (const [channel, location] of Object.entries(spec.inputs)) {
    if (!location.startsWith("s3://")) continue;
    const { bucket, key } = parseS3(location);
    needs.push({ action: "s3:ListBucket", resources: [`arn:${p}:s3:::${bucket}`], why: `listing input ${channel} (${location})` });
    // The input is a single object or a prefix: either grant lets SageMaker read it.
    needs.push({
      action: "s3:GetObject",
      resources: [object(bucket, key), object(bucket, `${key.replace(/\/+$/, "")}/part`)],
      why: `reading input ${channel} (${location})`,
    });
  }
  if (spec.settings.checkpoint_s3_uri) {
    const location = spec.settings.checkpoint_s3_uri;
    const { bucket, key } = parseS3(location);
    const file = object(bucket, `${key.replace(/\/+$/, "")}${key ? "/" : ""}checkpoint`);
    needs.push({ action: "s3:PutObject", resources: [file], why: `saving checkpoints to ${location}` });
    needs.push({ action: "s3:GetObject", resources: [file], why: `restoring checkpoints from ${location}` });
  }
  const repository = repositoryArn(repositoryName(spec), where);
  for (const action of ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"])
    needs.push({ action, resources: [repository], why: `pulling the image from ${repositoryName(spec)}` });
  needs.push({ action: "ecr:GetAuthorizationToken", resources: ["*"], why: "logging in to ECR to pull the image" });
  return needs;
}

/** Every identity policy of role `name`: its inline policies and the default versions of its attached ones. */
async function identityPolicies(name: string, ctx: Context): Promise<PolicyDocument[]> {
  const { client, sdk } = await (await awsFor(ctx)).iam();
  const documents: PolicyDocument[] = [];
  let marker: string | undefined;
  do {
    const page = await client.send(new sdk.ListRolePoliciesCommand({ RoleName: name, Marker: marker }), { abortSignal: ctx.signal });
    for (const policyName of page.PolicyNames ?? []) {
      const got = await client.send(new sdk.GetRolePolicyCommand({ RoleName: name, PolicyName: policyName }), { abortSignal: ctx.signal });
      const document = parseDocument(got.PolicyDocument);
      if (document) documents.push(document);
    }
    marker = page.IsTruncated ? page.Marker : undefined;
  } while (marker);
  do {
    const page = await client.send(new sdk.ListAttachedRolePoliciesCommand({ RoleName: name, Marker: marker }), { abortSignal: ctx.signal });
    for (const attached of page.AttachedPolicies ?? []) documents.push(await managedPolicy(attached.PolicyArn!, ctx));
    marker = page.IsTruncated ? page.Marker : undefined;
  } while (marker);
  return documents;
}

/** The default version of the managed policy `arn`. */
async function managedPolicy(arn: string, ctx: Context): Promise<PolicyDocument> {
  const { client, sdk } = await (await awsFor(ctx)).iam();
  const policy = await client.send(new sdk.GetPolicyCommand({ PolicyArn: arn }), { abortSignal: ctx.signal });
  const version = await client.send(new sdk.GetPolicyVersionCommand({ PolicyArn: arn, VersionId: policy.Policy?.DefaultVersionId }), {
    abortSignal: ctx.signal,
  });
  return parseDocument(version.PolicyVersion?.Document) ?? { Statement: [] };
}

/**
 * Whether a resource policy could grant what the role's own policies do not:
 * within one account, a bucket policy or an ECR repository policy naming the
 * role allows on its own (AWS's policy evaluation logic). True when there is
 * such a policy, or when it cannot be read.
 */
async function resourcePolicyMayGrant(resource: string, ctx: Context): Promise<boolean> {
  if (resource.startsWith("arn:") && resource.split(":")[2] === "s3") {
    const bucket = resource.split(":::")[1]!.split("/")[0]!;
    const { client, sdk } = await s3Client(ctx.env);
    try {
      await client.send(new sdk.GetBucketPolicyCommand({ Bucket: bucket }), { abortSignal: ctx.signal });
      return true;
    } catch (err) {
      return errorName(err) !== "NoSuchBucketPolicy";
    } finally {
      client.destroy();
    }
  }
  if (resource.split(":")[2] === "ecr" && resource.includes(":repository/")) {
    const { client, sdk } = await (await awsFor(ctx)).ecr();
    try {
      await client.send(new sdk.GetRepositoryPolicyCommand({ repositoryName: resource.split(":repository/")[1]! }), { abortSignal: ctx.signal });
      return true;
    } catch (err) {
      // No repository yet (fit creates it, with no policy) or none set: nothing grants but the role's own policies.
      return !["RepositoryPolicyNotFoundException", "RepositoryNotFoundException"].includes(errorName(err));
    }
  }
  return false;
}

/**
 * Evaluate the role's own identity policies (inline and attached, and its
 * permissions boundary) against what a job of `spec` needs. `deny` only when
 * it is certain: nothing allows a need (or a Deny refuses it) and no resource
 * policy could grant it. `unknown` when it cannot tell: the IAM reads are
 * refused, a Condition or policy variable decides, a resource policy might
 * grant, or the role is in another account. moto has no
 * SimulatePrincipalPolicy, and on AWS it needs its own permission, so the
 * policies are read and evaluated here.
 */
export async function checkRolePermissions(spec: SageMakerSpec, ctx: Context, jobName = "JOB"): Promise<RoleCheck> {
  const aws = await awsFor(ctx);
  const { account, partition } = await aws.identity();
  const roleArn = roleArnFor(spec, account, partition);
  if (spec.settings.check_role === false) return { verdict: "skipped", roleArn };
  const roleAccount = roleArn.split(":")[4];
  if (roleAccount !== account)
    return { verdict: "unknown", roleArn, why: `the role is in account ${roleAccount}, not yours (${account}), so its policies cannot be read` };
  const name = roleArn.split(":role/")[1]!.split("/").pop()!;
  const where = { account, partition, region: aws.region };
  let role: Awaited<ReturnType<typeof findRole>>;
  let documents: PolicyDocument[];
  let boundary: PolicyDocument | undefined;
  try {
    role = await findRole(name, ctx);
    if (!role)
      throw failure(
        `The IAM role ${name} does not exist in account ${account}; SageMaker runs the job as that role.`,
        `Create it with: ${createRoleCommand(spec, ctx.cwd)}\n(or name an existing role with --config.role_name=NAME or --config.role_arn=ARN)`,
      );
    documents = await identityPolicies(name, ctx);
    if (role.boundary) boundary = await managedPolicy(role.boundary, ctx);
  } catch (err) {
    if (err instanceof UserError && !/denied access/.test(err.message)) throw err;
    if (/AccessDenied|NotAuthorized|denied access/i.test(`${errorName(err)} ${(err as Error).message}`)) {
      return {
        verdict: "unknown",
        roleArn,
        why: "you may not read the role's policies (iam:GetRole, iam:ListRolePolicies, iam:GetRolePolicy, iam:ListAttachedRolePolicies, iam:GetPolicy, iam:GetPolicyVersion)",
      };
    }
    throw awsError(err, `reading the policies of the IAM role ${name}`);
  }
  const createdAt = role.created;
  const missing: RoleNeed[] = [];
  const unsure: string[] = [];
  for (const need of roleNeeds(spec, where, jobName)) {
    const decisions = need.resources.map((resource): Decision => {
      const own = evaluate(documents, need.action, resource);
      if (!boundary || own !== "allow") return own;
      // A permissions boundary caps what the identity policies allow (reference_policies_evaluation-logic.html).
      const capped = evaluate([boundary], need.action, resource);
      return capped === "implicit" ? "deny" : capped;
    });
    if (decisions.includes("allow")) continue;
    if (decisions.includes("conditional")) {
      unsure.push(`${need.action} for ${need.why} depends on a policy condition`);
    } else if (!decisions.includes("deny") && (await resourcePolicyMayGrant(need.resources[0]!, ctx))) {
      unsure.push(`${need.action} for ${need.why} may be granted by the resource's own policy`);
    } else {
      missing.push(need);
    }
  }
  if (missing.length) return { verdict: "deny", roleArn, missing, fix: createRoleCommand(spec, ctx.cwd), ...(createdAt ? { createdAt } : {}) };
  if (unsure.length) return { verdict: "unknown", roleArn, why: unsure.join("; "), ...(createdAt ? { createdAt } : {}) };
  return { verdict: "ok", roleArn, ...(createdAt ? { createdAt } : {}) };
}

/** The UserError of a definite deny: what the role lacks, and the command that grants it. */
export function roleDeniedError(check: Extract<RoleCheck, { verdict: "deny" }>): UserError {
  const lines = check.missing.map((need) => `  ${need.action} on ${need.resources[0]} (${need.why})`);
  return failure(
    `The role ${check.roleArn} may not do what this job needs; SageMaker would fail it after the instance started:`,
    `Give the role this job's paths with: ${check.fix}\n(or pass --config.check_role=false to submit anyway)`,
    lines,
  );
}

/** How long after a role was made CreateTrainingJob's "could not assume role" is taken for IAM still spreading it (IAM is eventually consistent). */
export const ROLE_SETTLE_MS = 60_000;

/**
 * Run `create` (CreateTrainingJob), retrying SageMaker's "could not assume
 * role" refusal for up to a minute when the role was made in the last few
 * minutes: IAM takes a while to make a new role usable everywhere
 * (https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency).
 */
export async function whileRoleSettles<T>(create: () => Promise<T>, roleCreatedAt: Date | undefined, ctx: Context, pauseMs = 2_000): Promise<T> {
  const recent = roleCreatedAt !== undefined && Date.now() - roleCreatedAt.getTime() < 5 * 60_000;
  const start = Date.now();
  let said = false;
  for (;;) {
    try {
      return await create();
    } catch (err) {
      if (!recent || !/could not assume role/i.test((err as Error).message) || Date.now() - start > ROLE_SETTLE_MS) throw err;
      if (!said) ctx.reporter.info("SageMaker cannot assume the role yet (IAM is still spreading a role made minutes ago); trying again for up to a minute…");
      said = true;
      await sleep(pauseMs, undefined, ctx.signal ? { signal: ctx.signal } : undefined);
    }
  }
}
