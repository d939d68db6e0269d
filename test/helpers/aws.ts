/** The AWS CLI against a test server, as the tests' own hands (not the product's), and test credentials. */
import { spawnSync } from "node:child_process";

/** AWS settings for tests: fixed keys (the secret given, so a test can look for it), us-east-1, no instance metadata lookups. */
export function testAwsKeys(secret = "testing"): Record<string, string> {
  return {
    AWS_ACCESS_KEY_ID: "testing",
    AWS_SECRET_ACCESS_KEY: secret,
    AWS_REGION: "us-east-1",
    AWS_DEFAULT_REGION: "us-east-1",
    AWS_EC2_METADATA_DISABLED: "true",
  };
}

/** Run `aws ARGS` against `endpoint` with `keys`; its JSON output, or an error with its stderr. */
export function awsCli(endpoint: string, args: readonly string[], keys: Record<string, string>): string {
  const result = spawnSync("aws", [...args, "--endpoint-url", endpoint, "--output", "json"], { env: { ...process.env, ...keys }, encoding: "utf8" });
  if (result.status !== 0) throw new Error(`aws ${args.join(" ")}: ${result.stderr}`);
  return result.stdout;
}
