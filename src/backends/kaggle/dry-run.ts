/**
 * `fit --dry-run` on Kaggle: the requests a push would send, made without any
 * request at all. It needs only the user name the kernel is pushed under:
 * from a legacy key (KAGGLE_USERNAME, kaggle.json), else KAGGLE_USERNAME
 * beside a token; with a token alone Kaggle would have to be asked, so a
 * placeholder stands in and the plan says so.
 */
import fs from "node:fs";
import path from "node:path";
import type { Context } from "../../context.js";
import type { KaggleJob } from "./schema.js";
import { jobShipment } from "../../package/image-plan.js";
import { reportShipment } from "../../package/ship.js";
import type { ProviderRequest, SubmissionPlan } from "../types.js";
import { UserError } from "../../errors.js";
import { CREATE_TOKEN_HINT, credentialsWithoutAsking } from "./credentials.js";
import { codeDatasetSlug, createCodeDatasetRequest, kernelName, saveKernelRequest } from "./plan.js";

/** What a Kaggle push of `job` would do. */
export async function planKaggle(job: KaggleJob, ctx: Context): Promise<SubmissionPlan> {
  const { spec } = job;
  const checks: SubmissionPlan["checks"] = { done: [], skipped: [] };
  const placeholders: string[] = [];
  const credentials = credentialsWithoutAsking(ctx.env, (message) => ctx.reporter.warn(message));
  if (!credentials)
    throw new UserError(
      "No Kaggle credentials found (KAGGLE_API_TOKEN, ~/.kaggle/access_token, KAGGLE_USERNAME and KAGGLE_KEY, kaggle.json, or ~/.kaggle/credentials.json from `kaggle auth login`).",
      CREATE_TOKEN_HINT,
    );
  let owner = credentials.username;
  checks.done.push(`credentials: from ${credentials.source} (not sent, nor checked: a dry run makes no request)`);
  if (!owner) {
    owner = "USERNAME";
    placeholders.push("USERNAME: the user a token belongs to, which only Kaggle can say (set KAGGLE_USERNAME to see it here)");
  }
  const { slug } = kernelName(spec);
  const requests: ProviderRequest[] = [];
  let codeDataset: string | undefined;
  if (spec.artifact.isFolder) {
    codeDataset = `${owner}/${codeDatasetSlug(slug)}`;
    placeholders.push(
      "the blob upload token in CreateDataset (Kaggle gives it when code.tar.gz is uploaded); a dataset that exists gets CreateDatasetVersion instead",
    );
    requests.push({ api: "kaggle", operation: "CreateDataset", request: createCodeDatasetRequest(owner, slug, "<blob upload token>") });
  }
  const text = fs.readFileSync(path.join(spec.artifact.dir, spec.artifact.entry), "utf8");
  const shipment = spec.artifact.isFolder ? jobShipment(spec, ctx.env) : undefined;
  if (shipment)
    reportShipment(
      shipment,
      (message) => ctx.reporter.warn(message),
      (message) => ctx.reporter.info(message),
    );
  requests.push({
    api: "kaggle",
    operation: "SaveKernel",
    request: saveKernelRequest(spec, owner, { text, jobName: job.name, ...(codeDataset ? { codeDataset } : {}) }),
  });
  return {
    backend: "kaggle",
    job: job.name,
    files: shipment ? shipment.files : [spec.artifact.entry],
    requests,
    checks,
    placeholders,
  };
}
