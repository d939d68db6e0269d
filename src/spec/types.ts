/** The nouns of a job: what runs, in which environment, where, and with which settings. */
import type { Schema, Settings, SettingsOf } from "./schema.js";

/** Every backend the tool knows of, built or not. */
export const BACKEND_NAMES = ["local", "sagemaker", "vertex", "kaggle", "slurm"] as const;
/** The name of a place a job runs. */
export type BackendName = (typeof BACKEND_NAMES)[number];

/** The file that, run correctly, produces a model. */
export interface TrainingArtifact {
  /** How it runs: a script with python, a notebook cell by cell. */
  kind: "script" | "notebook";
  /** Absolute folder holding the code; the job runs with this as its working folder. */
  dir: string;
  /** Path of the file to run, relative to `dir`, with forward slashes. */
  entry: string;
  /** True when the user passed a folder (with --entry) rather than a file. */
  isFolder: boolean;
}

/** The file describing the Python environment the artifact needs. */
export interface EnvironmentFile {
  /** requirements.txt for pip, environment.yml for conda. */
  kind: "requirements" | "conda";
  /** Absolute path. */
  path: string;
  /** The file's text when the job was specified (it decides the environment's identity). */
  content: string;
}

/** A validated, ready-to-run description of a training job. Plain data: it is saved in the job record. */
export interface JobSpec<S extends object = Settings> {
  artifact: TrainingArtifact;
  /** Absent when no environment file was given or found. */
  environment?: EnvironmentFile;
  backend: BackendName;
  /** The backend's settings after validation and defaults, typed by its schema (`SettingsOf<typeof schema>`). */
  settings: S;
  /** Every value the text the user gave (as CreateTrainingJob takes them); the job sees them as SageMaker's toolkit passes them (hyperparameters.json, arguments, SM_HPS, SM_HP_*). */
  hyperparameters: Record<string, string>;
  /** Input channels: channel name → location (a local folder or file, or a URL). */
  inputs: Record<string, string>;
  /** Where outputs go: an absolute local folder, or a URL such as s3://bucket/prefix; empty for a backend that keeps them itself (Kaggle). */
  outputPath: string;
  /** The project config file that supplied defaults, if one did. */
  configFile?: string;
}

/** What building a spec needs of its backend: its settings' schema (which types them) and what it cannot run. */
export interface SpecRules<Sch extends Schema = Schema> {
  readonly name: BackendName;
  /** Its settings (`--config.KEY=VALUE`), with types, defaults and docs. */
  readonly schema: Sch;
  /** Every reason this backend cannot run `spec`, all at once; empty when it can. */
  check(spec: JobSpec<SettingsOf<Sch>>): string[];
}
