/**
 * What TypeScript must know of the contract every backend honours (SageMaker's
 * `/opt/ml` layout, with Vertex AI's and Kaggle's beside it): where its root
 * is, and hyperparameters as SageMaker stores them. Everything else — the
 * config files, the SM_* variables, a script's arguments, the other platforms'
 * variables and folders — is the job runtime's (`runtime/`), computed where
 * the job runs.
 */
import type { ConfigValue } from "../spec/values.js";

/** Where the job finds its folders. */
export const ML_ROOT = "/opt/ml";

/** Hyperparameters as SageMaker stores them in hyperparameters.json: every value a string (text as it is, anything else as JSON). */
export function hyperparameterStrings(hyperparameters: Readonly<Record<string, ConfigValue>>): Record<string, string> {
  return Object.fromEntries(Object.entries(hyperparameters).map(([key, value]) => [key, typeof value === "string" ? value : JSON.stringify(value)]));
}
