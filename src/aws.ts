/**
 * The user's AWS setup, read as the AWS CLI reads it, from the context's
 * environment: static keys or the default credential chain (profiles with
 * AWS_PROFILE, SSO, instance roles), the region from AWS_REGION,
 * AWS_DEFAULT_REGION or the profile, and AWS_ENDPOINT_URL with its
 * service-specific variants (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL_SAGEMAKER, …),
 * which is also how tests point every client at local servers.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Context } from "./context.js";
import { UserError } from "./errors.js";
import { loadSdk } from "./sdk.js";

type Env = Context["env"];
/** Credentials as every SDK client takes them: fixed keys, or a provider. */
type Credentials = NonNullable<import("@aws-sdk/client-s3").S3ClientConfig["credentials"]>;

/** The region of a profile in ~/.aws/config (or AWS_CONFIG_FILE), if it names one. */
function profileRegion(env: Env): string | undefined {
  const file = env.AWS_CONFIG_FILE || path.join(env.HOME || os.homedir(), ".aws", "config");
  const profile = env.AWS_PROFILE || "default";
  let section = "";
  try {
    for (const raw of fs.readFileSync(file, "utf8").split(/\r?\n/)) {
      const line = raw.trim();
      const header = /^\[(?:profile\s+)?([^\]]+)\]$/.exec(line);
      if (header) section = header[1]!.trim();
      else if (section === profile && /^region\s*=/.test(line)) return line.split("=")[1]!.trim();
    }
  } catch {
    // no config file
  }
  return undefined;
}

/** The region requests go to. */
export function awsRegion(env: Env): string {
  return env.AWS_REGION || env.AWS_DEFAULT_REGION || profileRegion(env) || "us-east-1";
}

/** The endpoint for `service` (its AWS_ENDPOINT_URL_<SERVICE> name, e.g. S3, SAGEMAKER, CLOUDWATCH_LOGS), when one is set. */
export function awsEndpoint(env: Env, service: string): string | undefined {
  return env[`AWS_ENDPOINT_URL_${service}`] || env.AWS_ENDPOINT_URL || undefined;
}

/** Credentials: the keys in the environment, else the default provider chain for AWS_PROFILE. */
export async function awsCredentials(env: Env): Promise<Credentials> {
  if (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) {
    return {
      accessKeyId: env.AWS_ACCESS_KEY_ID,
      secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
      ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
    };
  }
  return loadSdk<typeof import("@aws-sdk/credential-providers")>("@aws-sdk/credential-providers").fromNodeProviderChain(
    env.AWS_PROFILE ? { profile: env.AWS_PROFILE } : {},
  );
}

/** True when this environment shows any sign of an AWS setup (keys, a profile, a config or credentials file, SSO, a container or web identity role), so an optional lookup does not wait on the instance metadata address for nothing. */
export function awsConfigured(env: Env): boolean {
  if (
    env.AWS_ACCESS_KEY_ID ||
    env.AWS_PROFILE ||
    env.AWS_WEB_IDENTITY_TOKEN_FILE ||
    env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI ||
    env.AWS_CONTAINER_CREDENTIALS_FULL_URI
  )
    return true;
  const home = env.HOME || os.homedir();
  return [env.AWS_CONFIG_FILE || path.join(home, ".aws", "config"), env.AWS_SHARED_CREDENTIALS_FILE || path.join(home, ".aws", "credentials")].some((file) =>
    fs.existsSync(file),
  );
}

/** The settings every AWS SDK client is made with, for `service` (its endpoint variable's suffix). */
export async function awsClientConfig(
  env: Env,
  service: string,
): Promise<{ region: string; credentials: Credentials; endpoint?: string; maxAttempts: number }> {
  const endpoint = awsEndpoint(env, service);
  return { region: awsRegion(env), credentials: await awsCredentials(env), ...(endpoint ? { endpoint } : {}), maxAttempts: 5 };
}

/** The UserError for credentials that are missing or refused, when `err` is that; credentials never appear in it. */
export function credentialError(err: unknown, what: string): UserError | undefined {
  const name = (err as { name?: string }).name ?? "";
  const message = (err as Error).message ?? String(err);
  if (name === "CredentialsProviderError" || /Could not load credentials/i.test(message)) {
    return new UserError(
      "No AWS credentials found.",
      "Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, choose a profile with AWS_PROFILE (`aws configure`, or `aws sso login`), or run where an instance role is available.",
      1,
    );
  }
  if (
    [
      "InvalidAccessKeyId",
      "SignatureDoesNotMatch",
      "ExpiredToken",
      "InvalidToken",
      "InvalidClientTokenId",
      "UnrecognizedClientException",
      "ExpiredTokenException",
    ].includes(name)
  ) {
    return new UserError(
      `AWS refused the credentials while ${what} (${name}).`,
      "Check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the profile in AWS_PROFILE; `aws sts get-caller-identity` shows who you are.",
      1,
    );
  }
  return undefined;
}
