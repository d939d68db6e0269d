/**
 * The table of backends. Adding one is one folder and one line here. A backend's modules are loaded only when it is
 * asked for, so a command about one job loads that job's backend alone: a local run loads nothing of the clouds'.
 */
import { UserError } from "../errors.js";
import { nearest } from "../spec/nearest.js";
import { BACKEND_NAMES, type BackendName } from "../spec/types.js";
import type { Backend } from "./types.js";

/** Every backend that is built, by name: where its code is. */
const loaders: Partial<Record<BackendName, () => Promise<Backend>>> = {
  local: async () => (await import("./local/index.js")).localBackend,
  sagemaker: async () => (await import("./sagemaker/index.js")).sagemakerBackend,
  kaggle: async () => (await import("./kaggle/index.js")).kaggleBackend,
  vertex: async () => (await import("./vertex/index.js")).vertexBackend,
  slurm: async () => (await import("./slurm/index.js")).slurmBackend,
};

/** The names of the backends that are built, in the table's order. */
export const builtBackends = Object.keys(loaders) as BackendName[];

/** The backend called `name`; a UserError for an unknown or not-yet-built one. */
export async function getBackend(name: string): Promise<Backend> {
  const load = loaders[name as BackendName];
  if (load) return load();
  if ((BACKEND_NAMES as readonly string[]).includes(name)) {
    throw new UserError(`The ${name} backend is not available in this version of alekseylearn.`, `Built backends: ${builtBackends.join(", ")}.`);
  }
  const guess = nearest(name, BACKEND_NAMES);
  throw new UserError(
    `Unknown backend ${name}.`,
    guess ? `Did you mean ${guess}? Backends: ${BACKEND_NAMES.join(", ")}.` : `Backends: ${BACKEND_NAMES.join(", ")}.`,
  );
}

/** Every backend that is built, in the table's order (all their modules loaded: for help, completion, doctor and lookups by name). */
export async function allBackends(): Promise<Backend[]> {
  return Promise.all(builtBackends.map((name) => loaders[name]!()));
}
