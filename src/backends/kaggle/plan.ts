/**
 * From a validated JobSpec to the Kaggle requests, as pure functions: the
 * kernel's slug and title, the accelerator settings, and the SaveKernel
 * request itself. Tests look at these without a network.
 */
import path from "node:path";
import { slugify } from "../../jobs/names.js";
import { shippableRequirements } from "../../package/ship.js";
import type { KaggleSpec } from "./schema.js";
import type { SaveKernelRequest } from "./api.js";
import { notebookKernel, scriptKernel, type PreambleSpec } from "./preamble.js";

const MIN_TITLE = 5;
const MAX_TITLE = 50;
/** Kaggle machine shapes look like NvidiaTeslaT4, NvidiaL4X1, TpuV6E8. */
const MACHINE_SHAPE = /^(Nvidia|Tpu)[A-Za-z0-9]+$/;

/** The kernel's title and slug: from the settings, else from the artifact's folder and name (`iris train` → `iris-train`). */
export function kernelName(spec: KaggleSpec): { title: string; slug: string; problems: string[] } {
  const problems: string[] = [];
  const stem = spec.artifact.isFolder ? path.basename(spec.artifact.dir) : `${path.basename(spec.artifact.dir)} ${path.parse(spec.artifact.entry).name}`;
  const given = { title: spec.settings.title, slug: spec.settings.slug };
  let title = given.title;
  if (title === undefined) {
    title = given.slug ? given.slug.replace(/-/g, " ") : stem.replace(/[-_]+/g, " ").trim();
    if (title.length < MIN_TITLE) title = `${title} training`.trim();
    title = title.slice(0, MAX_TITLE).trim();
  }
  const slug = given.slug ?? slugify(title);
  if (title.length < MIN_TITLE || title.length > MAX_TITLE)
    problems.push(`config.title must be ${MIN_TITLE} to ${MAX_TITLE} characters, got ${JSON.stringify(title)}`);
  if (slugify(title) !== slug)
    problems.push(`config.slug ${JSON.stringify(slug)} must equal the slugified title ${JSON.stringify(slugify(title))} (Kaggle derives one from the other)`);
  return { title, slug, problems };
}

/** The SaveKernel fields that pick the hardware, from `config.accelerator`. */
export function acceleratorFields(accelerator: string): Pick<SaveKernelRequest, "enableGpu" | "enableTpu" | "machineShape"> | undefined {
  if (accelerator === "none") return { enableGpu: false, enableTpu: false };
  if (accelerator === "gpu") return { enableGpu: true, enableTpu: false };
  if (accelerator === "tpu") return { enableGpu: false, enableTpu: true };
  if (MACHINE_SHAPE.test(accelerator))
    return { enableGpu: accelerator.startsWith("Nvidia"), enableTpu: accelerator.startsWith("Tpu"), machineShape: accelerator };
  return undefined;
}

/** The dataset reference of a `kaggle://OWNER/SLUG` input, or undefined for anything else. */
export function datasetOfInput(location: string): string | undefined {
  const match = /^kaggle:\/\/([^/]+\/[^/]+)$/.exec(location);
  return match?.[1];
}

/** What the kernel's code is: the artifact's text (and, for a folder, the dataset its other files go up in). */
export interface KernelCode {
  /** The entry file's text (script source or notebook JSON). */
  text: string;
  /** OWNER/SLUG of the dataset holding code.tar.gz, for a folder artifact. */
  codeDataset?: string;
  /** alekseylearn's name of the job (the script sees it as TRAINING_JOB_NAME). */
  jobName?: string;
}

/** The SaveKernel request for `spec`, pushed as OWNER/SLUG. */
export function saveKernelRequest(spec: KaggleSpec, owner: string, code: KernelCode): SaveKernelRequest {
  const { settings } = spec;
  const { title, slug } = kernelName(spec);
  const channels = Object.fromEntries(Object.entries(spec.inputs).map(([channel, location]) => [channel, datasetOfInput(location)!]));
  const preamble: PreambleSpec = {
    program: spec.artifact.entry,
    hyperparameterArgs: settings.hyperparameter_args !== false,
    hyperparameterFormat: settings.hyperparameter_format,
    ...(code.jobName ? { jobName: code.jobName } : {}),
    hyperparameters: spec.hyperparameters,
    channels,
    enableInternet: settings.enable_internet === true,
    // The kernel's source is kept by Kaggle (and public with is_private=false): no credential goes in it.
    ...(spec.environment?.kind === "requirements" ? { requirements: shippableRequirements(spec.environment.content).text } : {}),
    ...(code.codeDataset ? { codeDataset: code.codeDataset } : {}),
  };
  const isScript = spec.artifact.kind === "script";
  const text = isScript
    ? scriptKernel({ ...preamble, entry: spec.artifact.entry, ...(code.codeDataset ? {} : { source: code.text }) })
    : notebookKernel(code.text, preamble);
  const datasets = [...settings.dataset_sources, ...Object.values(channels), ...(code.codeDataset ? [code.codeDataset] : [])];
  return {
    slug: `${owner}/${slug}`,
    newTitle: title,
    text,
    language: "python",
    kernelType: isScript ? "script" : "notebook",
    isPrivate: settings.is_private === true,
    ...acceleratorFields(settings.accelerator)!,
    enableInternet: settings.enable_internet === true,
    datasetDataSources: [...new Set(datasets)],
    competitionDataSources: settings.competition_sources,
    kernelDataSources: settings.kernel_sources,
    modelDataSources: settings.model_sources,
    categoryIds: [],
    ...(settings.docker_image_pinning ? { dockerImagePinningType: settings.docker_image_pinning } : {}),
    ...(settings.max_runtime !== undefined ? { sessionTimeoutSeconds: settings.max_runtime } : {}),
  };
}

/** The slug of the private dataset a folder artifact's code goes up in. */
export function codeDatasetSlug(kernelSlug: string): string {
  return `${kernelSlug}-code`.slice(0, 50);
}

/** The CreateDataset request for a folder artifact's code dataset, given the upload's blob token. */
export function createCodeDatasetRequest(
  owner: string,
  kernelSlug: string,
  fileToken: string,
): { ownerSlug: string; slug: string; title: string; isPrivate: boolean; licenseName: string; files: Array<{ token: string }> } {
  return {
    ownerSlug: owner,
    slug: codeDatasetSlug(kernelSlug),
    title: `${kernelSlug} code`.slice(0, 50),
    isPrivate: true,
    licenseName: "unknown",
    files: [{ token: fileToken }],
  };
}

/** Every reason the Kaggle backend cannot run `spec`. */
export function kaggleProblems(spec: KaggleSpec): string[] {
  const problems = [...kernelName(spec).problems];
  if (spec.settings.instance_count > 1) problems.push("a Kaggle kernel runs on one machine; config.instance_count must be 1");
  if (!acceleratorFields(spec.settings.accelerator))
    problems.push(`config.accelerator must be none, gpu, tpu or a machine shape such as NvidiaTeslaT4, got ${JSON.stringify(spec.settings.accelerator)}`);
  if (spec.environment?.kind === "conda")
    problems.push("Kaggle runs its own Python image and cannot build an environment.yml; pass a requirements.txt with --envfile");
  if (spec.environment?.kind === "requirements" && shippableRequirements(spec.environment.content).removed) {
    problems.push(
      `${path.basename(spec.environment.path)} has a credential in a URL (a package index's password or token), which would be kept in the kernel's source on Kaggle; put the private packages in the folder as wheels (pip download -d wheels PACKAGE, then --find-links wheels) instead`,
    );
  }
  for (const [channel, location] of Object.entries(spec.inputs)) {
    if (!datasetOfInput(location))
      problems.push(
        `input ${channel}: a Kaggle kernel reads Kaggle datasets; write it as kaggle://OWNER/DATASET (upload local data as a dataset first), not ${location}`,
      );
  }
  return problems;
}
