/**
 * An s3:// or gs:// output path on Slurm. The job packs its archives on the cluster, in its own folder
 * (WORK/jobs/JOB/output/, `clusterOutput`), and this machine copies them to the bucket, streamed from the login node, with
 * its own credentials, once it sees the job end: `fit` while it follows, or a later `status`, `jobs` or `fetch` when the
 * job was left to run. The local backend uploads from this machine after its job in the same way.
 *
 * Why not from the job itself: the cluster would need a credential for the bucket. The ways to give it none expire before
 * a queued job may start: an S3 presigned URL lasts at most 7 days with Signature Version 4, and no longer than the
 * temporary credentials that signed it (docs.aws.amazon.com/AmazonS3/latest/userguide/using-presigned-url.html;
 * repost.aws/knowledge-center/presigned-url-s3-bucket-expiration), and a single PUT takes at most 5 GB; a Cloud Storage
 * resumable upload's session URI, which authorizes the upload by itself, expires after one week
 * (cloud.google.com/storage/docs/resumable-uploads, "Session URIs"). The cluster's own `aws`/`gsutil` would need its
 * nodes to hold a credential, which alekseylearn can neither give them safely nor check from the login node.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Context } from "../../context.js";
import { failure, UserError } from "../../errors.js";
import { storageFor } from "../../storage/index.js";
import { joinLocation } from "../../storage/location.js";
import { copyFrom, type Login } from "./remote.js";

/** The archives job `job` left in `clusterDir` on the cluster (`names`: model.tar.gz, output.tar.gz), copied to `jobOutput`/output/; their locations by name. */
export async function copyToBucket(
  login: Login,
  job: string,
  clusterDir: string,
  jobOutput: string,
  names: readonly string[],
  ctx: Context,
): Promise<Record<string, string>> {
  const outputs = joinLocation(jobOutput, "output");
  const storage = await storageFor(outputs, ctx);
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "alekseylearn-slurm-upload-"));
  const copied: Record<string, string> = {};
  try {
    // The model last: once model.tar.gz is in the bucket, everything the job left is (fetch by output path looks for it).
    for (const name of [...names].sort((a, b) => (a === "model.tar.gz" ? 1 : b === "model.tar.gz" ? -1 : 0))) {
      const remote = `${clusterDir}/${name}`;
      const local = path.join(scratch, name);
      const location = joinLocation(outputs, name);
      ctx.reporter.info(`Copying ${name} from ${login.host}:${remote} to ${location}`);
      const read = await copyFrom(login, remote, local, ctx);
      if (read.code !== 0) throw failure(`Could not read ${remote} on ${login.host}: ${read.stderr.trim() || `exit status ${read.code}`}`);
      try {
        await storage.upload(local, location);
      } catch (err) {
        if (!(err instanceof UserError)) throw err;
        throw failure(
          `The job ended on the cluster, but ${name} could not be copied to ${location}: ${err.message}`,
          `It stays on the cluster in ${login.host}:${clusterDir}; \`alekseylearn status ${job}\` tries again. ${err.hint ?? ""}`.trim(),
        );
      }
      fs.rmSync(local, { force: true });
      copied[name] = location;
    }
    return copied;
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

/** A UserError unless this machine's credentials can list `location` (a job's output folder, or the output path) in its bucket. */
export async function bucketAnswers(location: string, ctx: Context): Promise<void> {
  try {
    await (await storageFor(location, ctx)).list(location);
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    throw failure(
      `The output path ${location} cannot be reached from this machine: ${err.message}`,
      err.hint ??
        "alekseylearn copies each job's model there with this machine's credentials once the job ends: give this machine credentials that can write there.",
    );
  }
}
