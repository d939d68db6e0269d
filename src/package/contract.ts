/**
 * The one contract every backend honours: SageMaker's `/opt/ml` layout and
 * `SM_*` variables. These pure functions say what the job sees; each backend
 * decides how (a private mount here, a preamble on Kaggle, the real thing on
 * SageMaker).
 */
import type { ConfigValue } from "../spec/values.js";

/** Where the job finds its folders. */
export const ML_ROOT = "/opt/ml";
/** The host name SageMaker gives the first (here: only) instance. */
export const CURRENT_HOST = "algo-1";

/** Hyperparameters as SageMaker stores them in hyperparameters.json: every value a string. */
export function hyperparameterStrings(hyperparameters: Readonly<Record<string, ConfigValue>>): Record<string, string> {
  return Object.fromEntries(Object.entries(hyperparameters).map(([key, value]) => [key, typeof value === "string" ? value : JSON.stringify(value)]));
}

/** Environment variable name for a key, as the SageMaker training toolkit forms it (`learning-rate` → `LEARNING_RATE`). */
function envKey(key: string): string {
  return key.toUpperCase().replace(/[^A-Z0-9_]/g, "_");
}

/** What the job needs to know to build its environment. */
export interface ContractInputs {
  /** The folder the job sees as /opt/ml (ML_ROOT where it is mounted there). */
  root: string;
  hyperparameters: Readonly<Record<string, ConfigValue>>;
  /** Input channel names. */
  channels: readonly string[];
  numCpus: number;
  numGpus: number;
}

/** The SM_* variables SageMaker's training toolkit sets, for a job whose /opt/ml is `root`. */
export function contractEnv(inputs: ContractInputs): Record<string, string> {
  const { root } = inputs;
  const env: Record<string, string> = {
    SM_MODEL_DIR: `${root}/model`,
    SM_OUTPUT_DIR: `${root}/output`,
    SM_OUTPUT_DATA_DIR: `${root}/output/data`,
    SM_INPUT_DIR: `${root}/input`,
    SM_INPUT_CONFIG_DIR: `${root}/input/config`,
    SM_CHANNELS: JSON.stringify([...inputs.channels].sort()),
    SM_HPS: JSON.stringify(inputs.hyperparameters),
    SM_NUM_CPUS: String(inputs.numCpus),
    SM_NUM_GPUS: String(inputs.numGpus),
    SM_CURRENT_HOST: CURRENT_HOST,
    SM_HOSTS: JSON.stringify([CURRENT_HOST]),
  };
  for (const channel of inputs.channels) env[`SM_CHANNEL_${envKey(channel)}`] = `${root}/input/data/${channel}`;
  for (const [key, value] of Object.entries(hyperparameterStrings(inputs.hyperparameters))) env[`SM_HP_${envKey(key)}`] = value;
  return env;
}

/** The files SageMaker writes under /opt/ml/input/config, by name. */
export function contractConfigFiles(inputs: Pick<ContractInputs, "hyperparameters" | "channels">): Record<string, unknown> {
  return {
    "hyperparameters.json": hyperparameterStrings(inputs.hyperparameters),
    "resourceconfig.json": { current_host: CURRENT_HOST, hosts: [CURRENT_HOST] },
    "inputdataconfig.json": Object.fromEntries(inputs.channels.map((channel) => [channel, { TrainingInputMode: "File" }])),
  };
}
