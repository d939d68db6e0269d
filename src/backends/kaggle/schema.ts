/** Settings of the Kaggle backend. */
import type { Schema, SettingsOf } from "../../spec/schema.js";
import type { JobRecord } from "../../jobs/job.js";
import type { JobSpec } from "../../spec/types.js";
import { commonSchema } from "../common.js";

/** `--config.KEY` for `--backend kaggle`. Kaggle keeps a kernel's outputs itself, so there is no output_path. */
export const kaggleSchema = {
  instance_count: commonSchema.instance_count,
  hyperparameter_args: commonSchema.hyperparameter_args,
  hyperparameter_format: commonSchema.hyperparameter_format,
  slug: { type: { kind: "string" }, doc: "The kernel's slug (its URL name); default: the slugified title." },
  title: { type: { kind: "string" }, doc: "The kernel's title, 5 to 50 characters; default: from the artifact's folder and name." },
  is_private: { type: { kind: "boolean" }, default: true, doc: "Keep the kernel private." },
  accelerator: { type: { kind: "string" }, default: "none", doc: "none, gpu, tpu, or a Kaggle machine shape such as NvidiaTeslaT4." },
  enable_internet: { type: { kind: "boolean" }, default: true, doc: "Give the kernel internet access (needed to pip install requirements.txt)." },
  dataset_sources: { type: { kind: "list" }, default: [], doc: "Datasets (OWNER/SLUG) attached at /kaggle/input." },
  competition_sources: { type: { kind: "list" }, default: [], doc: "Competitions whose data is attached." },
  kernel_sources: { type: { kind: "list" }, default: [], doc: "Other kernels (OWNER/SLUG) whose output is attached." },
  model_sources: { type: { kind: "list" }, default: [], doc: "Models (OWNER/MODEL/FRAMEWORK/VARIATION[/VERSION]) attached." },
  docker_image_pinning: {
    type: { kind: "enum", values: ["original", "latest"] as const },
    doc: "Run on the kernel's original Docker image or the latest one.",
  },
  max_runtime: { type: { kind: "duration" }, doc: "Stop the session after this long (sessionTimeoutSeconds)." },
  poll_interval: { type: { kind: "number", min: 0.05 }, default: 10, doc: "Seconds between status checks while following; grows to 60." },
} satisfies Schema;

/** The Kaggle backend's settings, typed from its schema. */
export type KaggleSettings = SettingsOf<typeof kaggleSchema>;

/** What a job's record keeps of its kernel. */
export type KaggleProvider = {
  owner?: string;
  slug?: string;
  url?: string;
  version?: string;
  /** When this version was pushed (ISO time): an end reported soon after may be the previous version's. */
  pushedAt?: string;
  /** "1" once this version's run was seen (queued or running). */
  seen?: string;
};

/** A job spec for Kaggle. */
export type KaggleSpec = JobSpec<KaggleSettings>;
/** A job record of Kaggle. */
export type KaggleJob = JobRecord<KaggleSettings, KaggleProvider>;
