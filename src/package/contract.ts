/**
 * The one contract every backend honours: SageMaker's `/opt/ml` layout. These
 * pure functions write what SageMaker writes under /opt/ml/input/config; the
 * SM_* variables and a script's arguments are computed from those files where
 * the script runs, by the training toolkit in miniature (`toolkit.ts`), as
 * SageMaker's own training toolkit does.
 */
import type { ConfigValue } from "../spec/values.js";

/** Where the job finds its folders. */
export const ML_ROOT = "/opt/ml";
/** The host name SageMaker gives the first (here: only) instance. */
export const CURRENT_HOST = "algo-1";
/** Where SageMaker's framework containers keep the job's code (the toolkit's `code_dir`, `SM_MODULE_DIR`). */
export const CODE_DIR = `${ML_ROOT}/code`;
/** The instance group SageMaker names a job's machines when it has one group. */
const GROUP = "homogeneousCluster";

/** Hyperparameters as SageMaker stores them in hyperparameters.json: every value a string (text as it is, anything else as JSON). */
export function hyperparameterStrings(hyperparameters: Readonly<Record<string, ConfigValue>>): Record<string, string> {
  return Object.fromEntries(Object.entries(hyperparameters).map(([key, value]) => [key, typeof value === "string" ? value : JSON.stringify(value)]));
}

/** What the config files describe. */
export interface ContractInputs {
  hyperparameters: Readonly<Record<string, ConfigValue>>;
  /** Input channel names. */
  channels: readonly string[];
  /** The instance type the job runs on (`local` on this machine, as SageMaker's local mode says). */
  instanceType?: string;
}

/** The files SageMaker writes under /opt/ml/input/config, by name, as it writes them for a one-instance File-mode job. */
export function contractConfigFiles(inputs: ContractInputs): Record<string, unknown> {
  const instanceType = inputs.instanceType ?? "local";
  return {
    "hyperparameters.json": hyperparameterStrings(inputs.hyperparameters),
    "resourceconfig.json": {
      current_host: CURRENT_HOST,
      current_instance_type: instanceType,
      current_group_name: GROUP,
      hosts: [CURRENT_HOST],
      instance_groups: [{ instance_group_name: GROUP, instance_type: instanceType, hosts: [CURRENT_HOST] }],
      network_interface_name: "eth0",
    },
    "inputdataconfig.json": Object.fromEntries(
      [...inputs.channels].sort().map((channel) => [channel, { TrainingInputMode: "File", S3DistributionType: "FullyReplicated", RecordWrapperType: "None" }]),
    ),
  };
}
