/**
 * The output path's bucket, checked before a job is launched: SageMaker itself
 * finds out only when it uploads the model, after the whole training run.
 */
import type { Context } from "../../context.js";
import { failure } from "../../errors.js";
import { parseS3, s3Client } from "../../storage/s3.js";
import { awsError } from "./aws.js";

/** Fail when the bucket of `location` does not exist; warn when it cannot be looked at. */
export async function checkBucket(location: string, what: string, ctx: Context): Promise<void> {
  const { bucket } = parseS3(location);
  const { client, sdk } = await s3Client(ctx.env);
  try {
    await client.send(new sdk.HeadBucketCommand({ Bucket: bucket }));
  } catch (err) {
    const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (status === 404) throw failure(`The bucket ${bucket} of ${what} does not exist.`, `Create it (aws s3 mb s3://${bucket}) or pick another ${what}.`);
    if (status === 403) return ctx.reporter.warn(`You may not look at the bucket ${bucket} of ${what}; the job's role must be allowed to write there.`);
    throw awsError(err, `looking at the bucket ${bucket}`);
  } finally {
    client.destroy();
  }
}
