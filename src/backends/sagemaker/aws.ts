/**
 * The AWS services the SageMaker backend talks to (STS, IAM, ECR, SageMaker,
 * CloudWatch Logs), one client of each per context, made with the user's AWS
 * setup (src/aws.ts). The SDK modules load only when a SageMaker job is used.
 */
import type { CloudWatchLogsClient } from "@aws-sdk/client-cloudwatch-logs";
import type { ECRClient } from "@aws-sdk/client-ecr";
import type { IAMClient } from "@aws-sdk/client-iam";
import type { SageMakerClient } from "@aws-sdk/client-sagemaker";
import { awsClientConfig, awsRegion, credentialError } from "../../aws.js";
import type { Context } from "../../context.js";
import { failure } from "../../errors.js";
import { loadSdk } from "../../sdk.js";

/** The clients of one context, and who the caller is. */
export interface Aws {
  region: string;
  sagemaker: () => Promise<{ client: SageMakerClient; sdk: typeof import("@aws-sdk/client-sagemaker") }>;
  ecr: () => Promise<{ client: ECRClient; sdk: typeof import("@aws-sdk/client-ecr") }>;
  iam: () => Promise<{ client: IAMClient; sdk: typeof import("@aws-sdk/client-iam") }>;
  logs: () => Promise<{ client: CloudWatchLogsClient; sdk: typeof import("@aws-sdk/client-cloudwatch-logs") }>;
  /** The caller's account and partition (STS GetCallerIdentity), asked once. */
  identity: () => Promise<{ account: string; partition: string }>;
}

const cache = new WeakMap<Context, Promise<Aws>>();

function once<T>(make: () => Promise<T>): () => Promise<T> {
  let made: Promise<T> | undefined;
  return () => (made ??= make());
}

async function makeAws(ctx: Context): Promise<Aws> {
  const env = ctx.env;
  // Each SDK module loads only when its service is first used: they are large, and loading them all would slow every command.
  return {
    region: awsRegion(env),
    sagemaker: once(async () => {
      const sdk = loadSdk<typeof import("@aws-sdk/client-sagemaker")>("@aws-sdk/client-sagemaker");
      return { client: new sdk.SageMakerClient(await awsClientConfig(env, "SAGEMAKER")), sdk };
    }),
    ecr: once(async () => {
      const ecr = loadSdk<typeof import("@aws-sdk/client-ecr")>("@aws-sdk/client-ecr");
      return { client: new ecr.ECRClient(await awsClientConfig(env, "ECR")), sdk: ecr };
    }),
    iam: once(async () => {
      const iam = loadSdk<typeof import("@aws-sdk/client-iam")>("@aws-sdk/client-iam");
      return { client: new iam.IAMClient(await awsClientConfig(env, "IAM")), sdk: iam };
    }),
    logs: once(async () => {
      const logs = loadSdk<typeof import("@aws-sdk/client-cloudwatch-logs")>("@aws-sdk/client-cloudwatch-logs");
      return { client: new logs.CloudWatchLogsClient(await awsClientConfig(env, "CLOUDWATCH_LOGS")), sdk: logs };
    }),
    identity: once(async () => {
      const sts = loadSdk<typeof import("@aws-sdk/client-sts")>("@aws-sdk/client-sts");
      const client = new sts.STSClient(await awsClientConfig(env, "STS"));
      try {
        const who = await client.send(new sts.GetCallerIdentityCommand({}), { abortSignal: ctx.signal });
        const arn = who.Arn ?? "";
        return { account: who.Account ?? "", partition: arn.split(":")[1] || "aws" };
      } catch (err) {
        throw awsError(err, "asking AWS who you are (sts:GetCallerIdentity)");
      }
    }),
  };
}

/** The AWS clients for `ctx` (made once per context). */
export function awsFor(ctx: Context): Promise<Aws> {
  let aws = cache.get(ctx);
  if (!aws) cache.set(ctx, (aws = makeAws(ctx)));
  return aws;
}

/** The name of an SDK error ("ResourceNotFound", "ThrottlingException", …). */
export function errorName(err: unknown): string {
  return (err as { name?: string }).name ?? "";
}

/** An SDK error in the user's terms: missing or refused credentials, access denied, or what AWS said. */
export function awsError(err: unknown, what: string): Error {
  const credentials = credentialError(err, what);
  if (credentials) return credentials;
  const name = errorName(err);
  const message = (err as Error).message ?? String(err);
  if (name === "AbortError") return failure(`Stopped while ${what}.`);
  if (/AccessDenied|UnauthorizedOperation|NotAuthorized/.test(name)) {
    // AWS names the refused action in its message ("… is not authorized to perform: ecr:CreateRepository on resource …").
    const action = /perform:? ([a-z0-9-]+:[A-Za-z0-9*]+)/.exec(message)?.[1] ?? /\(([a-z0-9-]+:[A-Za-z0-9]+)\)/.exec(what)?.[1];
    return failure(
      `AWS denied access while ${what}${action ? `: your identity lacks ${action}` : ""}. AWS said: ${message}`,
      `Ask for ${action ?? "the permission named above"}; the README's "Permissions alekseylearn needs" lists every AWS action each command calls.`,
    );
  }
  // A service's answer (it has $metadata) is the user's to read; anything else is a bug and keeps its stack.
  if ((err as { $metadata?: unknown }).$metadata) return failure(`AWS said ${name || "no"} while ${what}: ${message}`);
  return err instanceof Error ? err : new Error(message);
}
