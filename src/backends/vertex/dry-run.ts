/**
 * `fit --dry-run` on Vertex AI: the CustomJob a submission would create, from
 * the pure plan functions, exactly as it would be sent. It needs no
 * credentials once the project is known (config.project, the environment or
 * gcloud's configuration files); the checks that would call Google are named
 * as not made.
 */
import type { Context } from "../../context.js";
import { failure } from "../../errors.js";
import { SAGEMAKER_PLATFORM } from "../../package/container.js";
import { baseImageFor } from "../../package/image.js";
import { imagePlan } from "../../package/image-plan.js";
import { VERSION } from "../../version.js";
import type { SubmissionPlan } from "../types.js";
import { noProjectError, resolveProject } from "./google.js";
import { customJobRequest, parentOf, PLACEHOLDERS, planProblems, repositoryPath, wantsGpu } from "./plan.js";
import type { VertexJob } from "./schema.js";

/** What a Vertex submission of `job` would do; a UserError when no project is known or the spec cannot run there. */
export async function planVertex(job: VertexJob, ctx: Context): Promise<SubmissionPlan> {
  const { spec } = job;
  const problems = planProblems(spec);
  if (problems.length)
    throw failure(
      "The job cannot run on Vertex AI:",
      "Change the settings named above.",
      problems.map((problem) => `- ${problem}`),
    );
  const chosen = resolveProject(spec.settings.project, ctx.env);
  if (!chosen) throw noProjectError();
  const { region } = spec.settings;
  const checks: SubmissionPlan["checks"] = {
    done: [`the project is ${chosen.project} (from ${chosen.from}), the region ${region}`],
    skipped: ["the credentials, the output bucket and the image repository were not checked: a dry run on Vertex AI sends nothing to Google"],
  };
  const image = `${repositoryPath(spec, chosen.project)}@${PLACEHOLDERS.digest}`;
  const request = customJobRequest(spec, { name: job.name, image, submissionId: PLACEHOLDERS.submission, version: VERSION });
  // Linux on x86-64 is what Vertex's training machines run, as SageMaker's do.
  const base = baseImageFor(spec, spec.settings.base_image, wantsGpu(spec.settings));
  return {
    backend: "vertex",
    job: job.name,
    ...imagePlan(spec, base, SAGEMAKER_PLATFORM, ctx),
    requests: [{ api: "aiplatform", operation: "projects.locations.customJobs.create", parent: parentOf(chosen.project, region), request }],
    checks,
    placeholders: [
      `the image digest ${PLACEHOLDERS.digest} (known once the image is built and pushed)`,
      `the submission id ${PLACEHOLDERS.submission} (made at submission)`,
    ],
  };
}
