/**
 * The job runtime: the Python that runs inside every job (`runtime/` of this
 * package, standard library only, with its own ruff and pytest). TypeScript
 * never writes the contract's files: it hands the runtime the job's
 * description once — these variables and the arguments `train --KEY VALUE` —
 * and the runtime's platform adapter lays out SageMaker's, Vertex AI's and
 * Kaggle's contracts where the job runs.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { ConfigValue } from "../spec/values.js";
import { hyperparameterStrings } from "./contract.js";
import { byCodePoint } from "../order.js";

/** The runtime's folder in this package (`runtime/`, beside `dist/`). */
export const RUNTIME_DIR = fileURLToPath(new URL("../../../runtime/", import.meta.url));
/** The file that starts a job (`python alekseylearn_entrypoint.py train …`), beside the package it imports. */
export const ENTRYPOINT = "alekseylearn_entrypoint.py";
/** The runtime's Python package. */
const PACKAGE = "alekseylearn_runtime";
/** Where the runtime's files go in an image's build context, and where the image keeps them. */
export const RUNTIME_IN_CONTEXT = ".alekseylearn/runtime";
export const RUNTIME_IN_IMAGE = "/opt/alekseylearn";

/** The bucket the Vertex AI variables name where a job is not on Vertex: /gcs/BUCKET/JOB/… leads to the job's own folders (contract.py's LOCAL_BUCKET). */
export const LOCAL_BUCKET = "alekseylearn-job";

/** Packages a notebook's job needs in its environment (the runtime's notebook runner executes it with nbclient). */
export const NOTEBOOK_PACKAGES = ["nbclient", "ipykernel"] as const;

/** How a script gets its hyperparameters as arguments: the classic training toolkit's form, or SDK v3 ModelTrainer's JSON form. */
export const HYPERPARAMETER_FORMATS = ["toolkit", "json"] as const;
export type HyperparameterFormat = (typeof HYPERPARAMETER_FORMATS)[number];

/** How a job's processes are launched: the script once per host (none), or through torchrun (the runtime's contract.DISTRIBUTIONS). */
export const DISTRIBUTIONS = ["none", "torchrun"] as const;
export type Distribution = (typeof DISTRIBUTIONS)[number];

/** The settings an image carries in its job's environment, where they differ from the runtime's defaults. */
export interface RuntimeSettings {
  hyperparameterArgs?: boolean;
  hyperparameterFormat?: HyperparameterFormat;
  distribution?: Distribution;
  /** torchrun's processes per host; unset: the host's GPU count, else 1. */
  processesPerHost?: number;
}

/** What the runtime is told about a job (the rest it reads from the platform). */
export interface JobDescription {
  /** The entry's path within the code folder. */
  entry: string;
  kind: "script" | "notebook";
  name: string;
  /** The platform adapter to use; unset, the runtime finds it (Vertex AI, Kaggle, else SageMaker). */
  platform?: "local" | "container";
  /** Channel → where its data is, as the job sees it. */
  inputs?: Readonly<Record<string, string>>;
  hyperparameterArgs?: boolean;
  hyperparameterFormat?: HyperparameterFormat;
  distribution?: Distribution;
  processesPerHost?: number;
  /** The local backend's multi-host job: every host's name (algo-1 …), this host's, and the job's free rendezvous port. */
  hosts?: readonly string[];
  currentHost?: string;
  masterPort?: number;
  /** The local backend only: the job's /gcs and /kaggle are its own (bubblewrap), it is watched from outside, its stop grace. */
  sandboxed?: boolean;
  supervised?: boolean;
  stopTimeout?: number;
}

/** The variables that describe `job` to the runtime (only those that differ from its defaults, for settings). */
export function runtimeEnv(job: JobDescription): Record<string, string> {
  const env: Record<string, string> = { ALEKSEYLEARN_ENTRY: job.entry, ALEKSEYLEARN_KIND: job.kind, TRAINING_JOB_NAME: job.name };
  if (job.platform) env.ALEKSEYLEARN_PLATFORM = job.platform;
  if (job.inputs && Object.keys(job.inputs).length) env.ALEKSEYLEARN_INPUTS = JSON.stringify(job.inputs);
  Object.assign(env, settingsEnv(job));
  if (job.hosts && job.hosts.length > 1) env.ALEKSEYLEARN_HOSTS = job.hosts.join(",");
  if (job.currentHost && job.hosts && job.hosts.length > 1) env.ALEKSEYLEARN_CURRENT_HOST = job.currentHost;
  if (job.masterPort !== undefined) env.ALEKSEYLEARN_MASTER_PORT = String(job.masterPort);
  if (job.sandboxed) env.ALEKSEYLEARN_SANDBOXED = "1";
  if (job.supervised) env.ALEKSEYLEARN_SUPERVISED = "1";
  if (job.stopTimeout !== undefined) env.ALEKSEYLEARN_STOP_TIMEOUT = String(job.stopTimeout);
  return env;
}

/** The variables for the job's settings that an image carries in its job's environment (SageMaker's Environment, Vertex's env), only where not the default. */
export function settingsEnv(settings: RuntimeSettings): Record<string, string> {
  return {
    ...(settings.distribution && settings.distribution !== "none" ? { ALEKSEYLEARN_DISTRIBUTION: settings.distribution } : {}),
    ...(settings.processesPerHost !== undefined ? { ALEKSEYLEARN_PROCESSES_PER_HOST: String(settings.processesPerHost) } : {}),
    ...(settings.hyperparameterArgs === false ? { ALEKSEYLEARN_HYPERPARAMETER_ARGS: "false" } : {}),
    ...(settings.hyperparameterFormat && settings.hyperparameterFormat !== "toolkit"
      ? { ALEKSEYLEARN_HYPERPARAMETER_FORMAT: settings.hyperparameterFormat }
      : {}),
  };
}

/** The runtime's arguments: `train`, then the hyperparameters as typed, `--KEY VALUE` sorted by key (as the runtime writes hyperparameters.json from them). */
export function trainArgs(hyperparameters: Readonly<Record<string, ConfigValue>>): string[] {
  const strings = hyperparameterStrings(hyperparameters);
  return [
    "train",
    ...Object.keys(strings)
      .sort()
      .flatMap((key) => [`--${key}`, strings[key]!]),
  ];
}

/** The runtime's files that ship (path relative to the runtime folder → text), sorted: the entrypoint and the package, without its tests. */
export function runtimeFiles(dir = RUNTIME_DIR): Record<string, string> {
  const files: Record<string, string> = { [ENTRYPOINT]: fs.readFileSync(path.join(dir, ENTRYPOINT), "utf8") };
  const walk = (relative: string): void => {
    for (const entry of fs.readdirSync(path.join(dir, relative), { withFileTypes: true }).sort((a, b) => byCodePoint(a.name, b.name))) {
      const name = `${relative}/${entry.name}`;
      if (entry.isDirectory() && entry.name !== "__pycache__") walk(name);
      else if (entry.isFile() && entry.name.endsWith(".py")) files[name] = fs.readFileSync(path.join(dir, name), "utf8");
    }
  };
  walk(PACKAGE);
  return files;
}

/** The path of the entrypoint in this package, for a job run with this machine's Python. */
export function entrypointPath(): string {
  return path.join(RUNTIME_DIR, ENTRYPOINT);
}

/** What the runtime would give the script: its arguments, its variables and the config files, as the job sees them. */
export interface ScriptContract {
  args: string[];
  env: Record<string, string>;
  files: Record<string, unknown>;
}

/** The contract `python` would give the job `job` with `hyperparameters` (`fit --dry-run`); undefined when that Python cannot run the runtime. */
export function previewContract(
  python: string,
  job: JobDescription,
  hyperparameters: Readonly<Record<string, ConfigValue>>,
  codeDir: string,
  pathVar: string | undefined,
): ScriptContract | undefined {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), "alekseylearn-contract-"));
  try {
    const env = { PATH: pathVar ?? "", ...runtimeEnv(job), SAGEMAKER_BASE_DIR: base };
    const result = spawnSync(python, ["-S", entrypointPath(), "preview", ...trainArgs(hyperparameters).slice(1)], {
      cwd: codeDir,
      env,
      encoding: "utf8",
      timeout: 30_000,
    });
    if (result.status !== 0) return undefined;
    // Paths as the job sees them: under /opt/ml, not the scratch folder.
    return JSON.parse(result.stdout.split(base).join("/opt/ml")) as ScriptContract;
  } catch {
    return undefined;
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
}
