/** Settings of the local backend. */
import type { Schema, SettingsOf } from "../../spec/schema.js";
import type { JobRecord } from "../../jobs/job.js";
import type { JobSpec } from "../../spec/types.js";
import { builderSetting, commonSchema, pythonVersionSetting } from "../common.js";

/** `--config.KEY` for `--backend local`. */
export const localSchema = {
  ...commonSchema,
  output_path: { ...commonSchema.output_path, default: "./alekseylearn-output" },
  python: { type: { kind: "string" }, default: "python3", doc: "Interpreter the job's virtual environment is created from." },
  sandbox: {
    type: { kind: "enum", values: ["auto", "bwrap", "none"] },
    default: "auto",
    doc: "How /opt/ml is made private: bwrap (bubblewrap) mounts it; none only sets SM_* variables; auto uses bwrap when it works.",
  },
  runner: {
    type: { kind: "enum", values: ["process", "docker"] },
    default: "process",
    doc: "process: run with this machine's Python; docker: build the image SageMaker would run and run it with `train`, /opt/ml mounted from the job's folder.",
  },
  base_image: {
    type: { kind: "string" },
    default: "auto",
    doc: "With runner=docker: the image the job's image is built on (auto: python:3.11-slim, micromamba for environment.yml).",
  },
  // SageMaker's setting and validation as they are; with runner=process, where no image is built, check() refuses oci or docker.
  builder: {
    ...builderSetting,
    doc: "With runner=docker: how the image is built. docker: docker build; oci: assembled without Docker exactly as `alekseylearn build` makes it for SageMaker (base read from its registry), then given to Docker with docker load; auto: docker (the runner needs the daemon anyway, and its build cache and local base images serve repeated runs).",
  },
  python_version: pythonVersionSetting,
  platform: {
    type: { kind: "string" },
    default: "auto",
    doc: "With runner=docker: the platform the image is built for (linux/amd64 is SageMaker's); auto: this Docker's own.",
  },
  stop_timeout: {
    type: { kind: "duration" },
    default: 30,
    doc: "After Ctrl-C or `stop`, how long the job (every process of it gets SIGTERM) has to exit before it is killed; what it saved in /opt/ml/model is packed. SageMaker gives 120s.",
  },
} satisfies Schema;

/** The local backend's settings, typed from its schema. */
export type LocalSettings = SettingsOf<typeof localSchema>;

/** What a local job's record keeps of how it runs. */
export type LocalProvider = {
  /** `docker` for the container runner. */
  runner?: string;
  image?: string;
  imageId?: string;
  /** How the image was made (runner=docker): `docker` (docker build) or `oci` (assembled without Docker, then docker load). */
  builder?: string;
  /** builder=oci: `loaded` (docker load ran) or `present` (the daemon had the image already: nothing was loaded). */
  load?: "loaded" | "present";
  /** `bwrap` or `none`. */
  sandbox?: string;
  /** The cached environment's folder. */
  environment?: string;
};

/** A job spec for this machine. */
export type LocalSpec = JobSpec<LocalSettings>;
/** A job record of this machine. */
export type LocalJob = JobRecord<LocalSettings, LocalProvider>;
