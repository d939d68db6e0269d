/**
 * The job's image in Artifact Registry: built with the local Docker for
 * linux/amd64, its Docker repository created when missing (and the user told),
 * pushed with a short-lived access token as the password of `oauth2accesstoken`
 * (Artifact Registry's documented token login, given to `docker login` on
 * stdin), and referred to by digest.
 */
import type { Context } from "../../context.js";
import { failure } from "../../errors.js";
import { buildTrainingImage, SAGEMAKER_PLATFORM } from "../../package/container.js";
import { baseImageFor, imageName } from "../../package/image.js";
import { assembleForRegistry, pushAssembled } from "../../package/oci/build.js";
import { chooseBuilder, resolveBuilder } from "../../package/oci/choose.js";
import { DOCKER_MANIFEST_V2, OCI_MANIFEST, pushBuiltImage, registryOverride, unusableImageHint, type PushedImage } from "../../package/registry.js";
import type { GoogleSession } from "./auth.js";
import type { VertexApi } from "./api.js";
import { registryOf, repositoryPath, wantsGpu } from "./plan.js";
import type { VertexSpec } from "./schema.js";

/** The user name of Artifact Registry's access-token login (cloud.google.com/artifact-registry/docs/docker/authentication#token). */
export const TOKEN_USER = "oauth2accesstoken";

/**
 * Build the job's image and put it in Artifact Registry; returns it by digest
 * under its Artifact Registry name (REGION-docker.pkg.dev/PROJECT/REPO/IMAGE@sha256:…),
 * which the job pulls. The repository is looked up while Docker builds;
 * nothing is created or pushed until the build has succeeded and `gate` (the
 * caller's own checks) has resolved true.
 */
export async function pushVertexImage(
  spec: VertexSpec,
  project: string,
  google: { session: GoogleSession; api: VertexApi },
  ctx: Context,
  options: { gate?: Promise<boolean> } = {},
): Promise<PushedImage> {
  const imagePath = repositoryPath(spec, project);
  const registry = registryOf(imagePath);
  if (!registry) throw failure(`${imagePath} is not an Artifact Registry image path (REGION-docker.pkg.dev/PROJECT/REPOSITORY/IMAGE).`);
  const base = baseImageFor(spec, spec.settings.base_image, wantsGpu(spec.settings));
  if (chooseBuilder(spec, spec.settings.builder, base).builder === "oci") {
    // No Docker: the repository is looked up while the image is assembled; nothing is created or pushed before the gate.
    const exists = google.api.repositoryExists(registry.project, registry.region, registry.repository);
    exists.catch(() => {});
    const uri = registryOverride(imagePath, ctx.env);
    const token = await google.session.accessToken();
    // Artifact Registry's token login: user oauth2accesstoken, the access token as password (cloud.google.com/artifact-registry/docs/docker/authentication#token).
    const assembled = await assembleForRegistry(spec, base, uri.split("/")[0]!, { user: TOKEN_USER, password: token }, ctx);
    if (assembled) {
      if (!(await (options.gate ?? Promise.resolve(true)))) throw failure("Stopped before pushing: the checks before it failed.");
      if (!(await exists)) {
        ctx.reporter.info(`Creating the Artifact Registry repository ${registry.repository} in ${registry.project} (${registry.region}).`);
        await google.api.createRepository(registry.project, registry.region, registry.repository);
      }
      const pushed = await pushAssembled(assembled, uri, ctx);
      return { ...pushed, image: `${imagePath}@${pushed.image.split("@")[1]!}` };
    }
  } else if (spec.settings.builder === "auto") {
    await resolveBuilder(spec, "auto", base, ctx);
  }
  let found: Promise<boolean> | undefined;
  const askRegistry = (): void => {
    found = google.api.repositoryExists(registry.project, registry.region, registry.repository);
    found.catch(() => {}); // awaited below; a failure must not count as unhandled meanwhile
  };
  const built = await buildTrainingImage(
    spec,
    {
      tag: `${imageName(spec)}:latest`,
      gpu: wantsGpu(spec.settings),
      baseImage: spec.settings.base_image,
      // Vertex AI's training machines are x86-64, as SageMaker's are.
      platform: SAGEMAKER_PLATFORM,
      onStarted: askRegistry,
    },
    ctx,
  );
  if (!(await (options.gate ?? Promise.resolve(true)))) throw failure("Stopped before pushing: the checks before it failed.");
  if (!(await (found ?? google.api.repositoryExists(registry.project, registry.region, registry.repository)))) {
    ctx.reporter.info(
      `Creating the Artifact Registry repository ${registry.repository} in ${registry.project} (${registry.region}): no image has been pushed there from this project and region before.`,
    );
    await google.api.createRepository(registry.project, registry.region, registry.repository);
  }
  const token = await google.session.accessToken();
  const pushed = await pushBuiltImage(
    built.imageId,
    {
      backend: "vertex",
      service: "Vertex AI",
      uri: registryOverride(imagePath, ctx.env),
      // `docker login -u oauth2accesstoken` for the push (cloud.google.com/artifact-registry/docs/docker/authentication#token);
      // the reads of the Docker API send the access token itself as a Bearer token, as Artifact Registry documents them
      // (cloud.google.com/artifact-registry/docs/reference/docker-api: `Authorization: Bearer $(gcloud auth print-access-token)`).
      user: TOKEN_USER,
      password: token,
      authorization: `Bearer ${token}`,
      // Artifact Registry stores OCI manifests as well as Docker's, and no Vertex AI source says a job cannot pull one,
      // so only the platform is checked on Vertex (SageMaker's refusal of OCI manifests is its documented one).
      manifestTypes: [DOCKER_MANIFEST_V2, OCI_MANIFEST],
      unusableHint: unusableImageHint(spec),
    },
    ctx,
  );
  return { image: `${imagePath}@${pushed.digest}`, stepsRun: built.stepsRun, layersPushed: pushed.layersPushed, reused: pushed.reused };
}
