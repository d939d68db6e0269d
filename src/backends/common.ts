/** Settings every backend shares. */
import type { Schema } from "../spec/schema.js";
import type { BackendName, JobSpec } from "../spec/types.js";
import { DISTRIBUTIONS, HYPERPARAMETER_FORMATS, type RuntimeSettings } from "../package/runtime.js";

/** `output_path`, `instance_count`, `hyperparameter_args`, `hyperparameter_format`, `distribution` and `processes_per_host`, the keys every backend understands (each may add a default). */
export const commonSchema = {
  output_path: { type: { kind: "string" }, doc: "Where model.tar.gz and output.tar.gz go, under OUTPUT_PATH/JOB/output/." },
  instance_count: { type: { kind: "integer", min: 1 }, default: 1, doc: "How many machines run the job.", aliases: ["train_instance_count"] },
  hyperparameter_args: {
    type: { kind: "boolean" },
    default: true,
    doc: "Pass the hyperparameters to a script as command-line arguments (--KEY VALUE, sorted), as SageMaker's training toolkit does; false for a script that rejects unknown arguments. Notebooks never get arguments.",
  },
  hyperparameter_format: {
    type: { kind: "enum", values: HYPERPARAMETER_FORMATS },
    default: "toolkit",
    doc: "How each argument's value is written: toolkit (the classic training toolkit: true → True, a mapping as k=v,…) or json (SDK v3 ModelTrainer's drivers: true, 0.1, {\"a\": 1}, in the hyperparameters' order).",
  },
  distribution: {
    type: { kind: "enum", values: DISTRIBUTIONS },
    default: "none",
    doc: "none: the script runs once on each host, told the rendezvous (MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK, NODE_RANK, LOCAL_RANK) for torch.distributed's env://; torchrun: the script is launched through torchrun on each host (--nnodes, --node_rank, --nproc_per_node, the rendezvous on the first host), each worker with its own RANK, LOCAL_RANK and WORLD_SIZE.",
  },
  processes_per_host: {
    type: { kind: "integer", min: 1 },
    doc: "With distribution=torchrun: the processes torchrun starts on each host (--nproc_per_node); default the host's GPU count, else 1.",
  },
} satisfies Schema;

/** How an image backend builds the job's image (`config.builder`). */
export const BUILDERS = ["auto", "oci", "docker"] as const;

/** `config.builder` of the image backends: auto builds without Docker unless the artifact needs it. */
export const builderSetting = {
  type: { kind: "enum", values: BUILDERS },
  default: "auto",
  doc: "How the image is built: oci assembles and pushes it with no Docker (pip wheels for linux/amd64); docker uses the local Docker daemon; auto uses oci unless the artifact needs Docker (environment.yml, apt.txt, its own Dockerfile, a requirement with no wheel), then Docker.",
} as const;

/** `config.python_version` of the image backends: the base image's Python, for the daemonless builder's wheels. */
export const pythonVersionSetting = {
  type: { kind: "string" },
  doc: "The base image's Python version (3.11) for the wheels of config.builder=oci; default: the base image's PYTHON_VERSION.",
} as const;

/** The settings the job runtime reads from a job's environment (`settingsEnv`), from a backend's validated settings. */
export function runtimeSettings(settings: {
  hyperparameter_args: boolean;
  hyperparameter_format: RuntimeSettings["hyperparameterFormat"];
  distribution: RuntimeSettings["distribution"];
  processes_per_host?: number;
}): RuntimeSettings {
  return {
    hyperparameterArgs: settings.hyperparameter_args,
    hyperparameterFormat: settings.hyperparameter_format,
    distribution: settings.distribution,
    processesPerHost: settings.processes_per_host,
  };
}

/** What is wrong with a spec's distribution settings, for any backend's `check`. */
export function distributionProblems(spec: { artifact: { kind: string }; settings: { distribution: string; processes_per_host?: number } }): string[] {
  const problems: string[] = [];
  if (spec.settings.distribution === "torchrun" && spec.artifact.kind === "notebook")
    problems.push("config.distribution=torchrun launches a script; a notebook runs in one kernel (use a .py entry point)");
  if (spec.settings.processes_per_host !== undefined && spec.settings.distribution !== "torchrun")
    problems.push("config.processes_per_host applies with config.distribution=torchrun (without it the script runs once per host)");
  return problems;
}

/** `KEY=VALUE` items as a record; `problems` gets one line per bad item. */
export function parsePairs(items: readonly string[], what: string, problems: string[]): Record<string, string> {
  const pairs: Record<string, string> = {};
  for (const item of items) {
    const at = item.indexOf("=");
    if (at <= 0) problems.push(`config.${what}: ${JSON.stringify(item)} is not KEY=VALUE`);
    else pairs[item.slice(0, at)] = item.slice(at + 1);
  }
  return pairs;
}

/**
 * The spec of a job started elsewhere (found by name at its provider): its
 * settings and what the provider reports; its code is not on this machine, so
 * its artifact is empty.
 */
export function elsewhereSpec<S extends object>(
  backend: BackendName,
  settings: S,
  known: { hyperparameters?: Record<string, string>; inputs?: Record<string, string>; outputPath: string },
): JobSpec<S> {
  return {
    artifact: { kind: "script", dir: "", entry: "", isFolder: false },
    backend,
    settings,
    hyperparameters: known.hyperparameters ?? {},
    inputs: known.inputs ?? {},
    outputPath: known.outputPath,
  };
}
