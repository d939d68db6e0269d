/** The table of backends. Adding one is one folder and one line here. */
import { UserError } from "../errors.js";
import { nearest } from "../spec/nearest.js";
import { BACKEND_NAMES, type BackendName } from "../spec/types.js";
import type { Backend } from "./types.js";
import { localBackend } from "./local/index.js";
import { kaggleBackend } from "./kaggle/index.js";
import { sagemakerBackend } from "./sagemaker/index.js";
import { vertexBackend } from "./vertex/index.js";
import { slurmBackend } from "./slurm/index.js";

/** Every backend that is built, by name. */
export const backends: Partial<Record<BackendName, Backend>> = {
  local: localBackend,
  sagemaker: sagemakerBackend,
  kaggle: kaggleBackend,
  vertex: vertexBackend,
  slurm: slurmBackend,
};

/** The backend called `name`; a UserError for an unknown or not-yet-built one. */
export function getBackend(name: string): Backend {
  const backend = backends[name as BackendName];
  if (backend) return backend;
  if ((BACKEND_NAMES as readonly string[]).includes(name)) {
    throw new UserError(`The ${name} backend is not available in this version of alekseylearn.`, `Built backends: ${Object.keys(backends).join(", ")}.`);
  }
  const guess = nearest(name, BACKEND_NAMES);
  throw new UserError(
    `Unknown backend ${name}.`,
    guess ? `Did you mean ${guess}? Backends: ${BACKEND_NAMES.join(", ")}.` : `Backends: ${BACKEND_NAMES.join(", ")}.`,
  );
}
