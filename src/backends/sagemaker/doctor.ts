/**
 * The SageMaker backend's `doctor` checks: the AWS credentials' source (never
 * the keys), the account and region, the role (exists, trusted by SageMaker,
 * allows the output, by role.ts's own evaluation), the output bucket (exists,
 * and writable: a 0-byte object written and deleted), and the image builder.
 */
import { randomBytes } from "node:crypto";
import { awsConfigured, awsRegion } from "../../aws.js";
import type { Context } from "../../context.js";
import { UserError } from "../../errors.js";
import { imageBuilderChecks } from "../../package/builder-check.js";
import { joinLocation } from "../../storage/location.js";
import { parseS3, s3Client } from "../../storage/s3.js";
import type { DoctorCheck } from "../types.js";
import { awsFor, errorName } from "./aws.js";
import { checkRolePermissions, createRoleCommand } from "./role.js";
import type { SageMakerSpec } from "./schema.js";

/** Where the AWS SDK finds credentials in this environment, as a person would say it; never the keys themselves. */
export function credentialSourceOf(env: Context["env"]): string {
  if (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) return "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment";
  if (env.AWS_PROFILE) return `the profile ${env.AWS_PROFILE} (AWS_PROFILE)`;
  if (env.AWS_WEB_IDENTITY_TOKEN_FILE) return "a web identity token (AWS_WEB_IDENTITY_TOKEN_FILE)";
  if (env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI || env.AWS_CONTAINER_CREDENTIALS_FULL_URI) return "the container's credentials endpoint";
  return "the default profile (~/.aws/credentials or ~/.aws/config)";
}

function failed(err: unknown): { detail: string; fix?: string } {
  if (err instanceof UserError) return { detail: err.message.replace(/\.$/, ""), ...(err.hint ? { fix: err.hint } : {}) };
  throw err;
}

/** Whether the role's trust policy lets SageMaker assume it (a statement allowing sts:AssumeRole to sagemaker.amazonaws.com). */
async function trustedBySageMaker(name: string, ctx: Context): Promise<boolean> {
  const { client, sdk } = await (await awsFor(ctx)).iam();
  const role = await client.send(new sdk.GetRoleCommand({ RoleName: name }), { abortSignal: ctx.signal });
  const document = JSON.parse(decodeURIComponent(role.Role?.AssumeRolePolicyDocument ?? "{}")) as { Statement?: unknown };
  const statements = (Array.isArray(document.Statement) ? document.Statement : [document.Statement]) as Array<{
    Effect?: string;
    Action?: string | string[];
    Principal?: { Service?: string | string[] };
  }>;
  const list = (value: string | string[] | undefined): string[] => (value === undefined ? [] : Array.isArray(value) ? value : [value]);
  return statements.some(
    (statement) =>
      statement?.Effect === "Allow" &&
      list(statement.Action).some((action) => action === "sts:AssumeRole" || action === "sts:*" || action === "*") &&
      list(statement.Principal?.Service).includes("sagemaker.amazonaws.com"),
  );
}

/** Write and delete a 0-byte object under the output path: the only proof that this identity may write there. */
async function bucketChecks(outputPath: string, ctx: Context): Promise<DoctorCheck[]> {
  const { bucket } = parseS3(outputPath);
  const { client, sdk } = await s3Client(ctx.env);
  try {
    try {
      await client.send(new sdk.HeadBucketCommand({ Bucket: bucket }));
    } catch (err) {
      const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status === 404)
        return [
          {
            check: "output bucket",
            status: "fail",
            detail: `the bucket ${bucket} does not exist`,
            fix: `Create it (aws s3 mb s3://${bucket}) or pick another config.output_path.`,
          },
        ];
      if (status !== 403) throw err;
    }
    const probe = parseS3(joinLocation(outputPath, `.alekseylearn-doctor-${randomBytes(6).toString("hex")}`));
    const shown = `s3://${probe.bucket}/${probe.key}`;
    try {
      await client.send(new sdk.PutObjectCommand({ Bucket: probe.bucket, Key: probe.key, Body: new Uint8Array() }));
    } catch (err) {
      return [
        { check: "output bucket", status: "ok", detail: `s3://${bucket} exists` },
        {
          check: "output writable",
          status: "fail",
          detail: `writing the 0-byte ${shown} was refused (${errorName(err) || (err as Error).message})`,
          fix: "Ask for s3:PutObject on the output path, or pick a config.output_path you may write to.",
        },
      ];
    }
    await client.send(new sdk.DeleteObjectCommand({ Bucket: probe.bucket, Key: probe.key }));
    return [
      { check: "output bucket", status: "ok", detail: `s3://${bucket} exists` },
      { check: "output writable", status: "ok", detail: `wrote and deleted the 0-byte ${shown}` },
    ];
  } finally {
    client.destroy();
  }
}

/** The SageMaker backend's checks for `spec` (its output path and role settings). */
export async function sagemakerDoctor(spec: SageMakerSpec, ctx: Context, options: { asked: boolean }): Promise<DoctorCheck[]> {
  if (!options.asked && !awsConfigured(ctx.env)) return [];
  const checks: DoctorCheck[] = [];
  const skipRest = (why: string): DoctorCheck[] => [
    ...checks,
    ...["role", "output bucket"].map((check): DoctorCheck => ({ check, status: "skip", detail: why })),
    // The builder needs no account: it is checked whatever happened above.
  ];
  const aws = await awsFor(ctx);
  let account: string;
  try {
    ({ account } = await aws.identity());
    checks.push({ check: "credentials", status: "ok", detail: `from ${credentialSourceOf(ctx.env)}` });
    checks.push({ check: "account", status: "ok", detail: `${account}, region ${awsRegion(ctx.env)}` });
  } catch (err) {
    checks.push({ check: "credentials", status: "fail", ...failed(err) });
    return [...skipRest("needs working credentials"), ...(await imageBuilderChecks(ctx, spec.settings.builder))];
  }

  const name = spec.settings.role_arn ? spec.settings.role_arn.split("/").pop()! : spec.settings.role_name;
  if (!spec.outputPath) {
    checks.push({ check: "role", status: "skip", detail: "needs config.output_path (the role must allow writing there)" });
    checks.push({
      check: "output bucket",
      status: "skip",
      detail: "no config.output_path given",
      fix: "Pass --config.output_path=s3://BUCKET/PREFIX, or set output_path in alekseylearn.yml.",
    });
    checks.push(...(await imageBuilderChecks(ctx, spec.settings.builder)));
    return checks;
  }
  try {
    const verdict = await checkRolePermissions(spec, ctx);
    const trusted = verdict.roleArn.split(":")[4] === account ? await trustedBySageMaker(name, ctx) : undefined;
    if (trusted === false)
      checks.push({
        check: "role",
        status: "fail",
        detail: `${verdict.roleArn} exists but SageMaker may not assume it (its trust policy has no sts:AssumeRole for sagemaker.amazonaws.com)`,
        fix: `Recreate it with: ${createRoleCommand(spec, ctx.cwd)} (or add SageMaker to its trust policy)`,
      });
    else if (verdict.verdict === "deny")
      checks.push({
        check: "role",
        status: "fail",
        detail: `${verdict.roleArn} lacks ${verdict.missing.map((need) => `${need.action} (${need.why})`).join(", ")}`,
        fix: `Give it this output with: ${verdict.fix}`,
      });
    else if (verdict.verdict === "unknown")
      checks.push({ check: "role", status: "skip", detail: `${verdict.roleArn} exists; whether it covers the output is unknown: ${verdict.why}` });
    else if (verdict.verdict === "skipped") checks.push({ check: "role", status: "skip", detail: `${verdict.roleArn}: config.check_role=false` });
    else checks.push({ check: "role", status: "ok", detail: `${verdict.roleArn} exists, is trusted by SageMaker and allows writing ${spec.outputPath}` });
  } catch (err) {
    checks.push({ check: "role", status: "fail", ...failed(err) });
  }
  try {
    checks.push(...(await bucketChecks(spec.outputPath, ctx)));
  } catch (err) {
    checks.push({ check: "output bucket", status: "fail", detail: `looking at ${spec.outputPath} failed: ${errorName(err) || (err as Error).message}` });
  }
  checks.push(...(await imageBuilderChecks(ctx, spec.settings.builder)));
  return checks;
}
