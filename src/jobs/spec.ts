/** From what the user asked for to a validated JobSpec, with the backends' own rules (the spec layer itself knows no backend). */
import { allBackends, builtBackends, getBackend } from "../backends/registry.js";
import type { Backend } from "../backends/types.js";
import { buildSpec as buildSpecWith, type FitRequest } from "../spec/build.js";
import type { Schema, SettingsOf } from "../spec/schema.js";
import type { JobSpec, SpecRules } from "../spec/types.js";

export { backendForOutputPath, type FitRequest } from "../spec/build.js";

/** Thrown by the rules of a backend whose modules are not loaded yet: loaded, and the spec built again. */
class NotLoaded extends Error {
  constructor(readonly backend: string) {
    super(`the ${backend} backend is not loaded`);
  }
}

/**
 * Validate `request` (paths relative to `cwd`) into a JobSpec for its backend, or throw one UserError naming every problem.
 * Only the backend the request chooses is loaded; a request that fails is checked again with every backend loaded, so
 * that a setting of another backend's is named as that backend's.
 */
export async function buildSpec(request: FitRequest, cwd: string): Promise<JobSpec> {
  const loaded = new Map<string, Backend>();
  const rulesOf = (name: string): Backend => {
    const backend = loaded.get(name);
    if (!backend) throw new NotLoaded(name);
    return backend;
  };
  for (;;) {
    try {
      return buildSpecWith(request, cwd, rulesOf);
    } catch (err) {
      if (err instanceof NotLoaded) loaded.set(err.backend, await getBackend(err.backend));
      else if (loaded.size < builtBackends.length) for (const backend of await allBackends()) loaded.set(backend.name, backend);
      else throw err;
    }
  }
}

/** Validate `request` for `backend` itself, into a spec typed by that backend's schema (tests and backend-specific callers). */
export function buildSpecFor<Sch extends Schema>(backend: SpecRules<Sch>, request: FitRequest, cwd: string): JobSpec<SettingsOf<Sch>> {
  return buildSpecWith({ ...request, backend: backend.name }, cwd, () => backend);
}
