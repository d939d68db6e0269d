/** From what the user asked for to a validated JobSpec, with the backends' own rules (the spec layer itself knows no backend). */
import { getBackend } from "../backends/registry.js";
import { buildSpec as buildSpecWith, type FitRequest } from "../spec/build.js";
import type { Schema, SettingsOf } from "../spec/schema.js";
import type { JobSpec, SpecRules } from "../spec/types.js";

export { backendForOutputPath, type FitRequest } from "../spec/build.js";

/** Validate `request` (paths relative to `cwd`) into a JobSpec for its backend, or throw one UserError naming every problem. */
export function buildSpec(request: FitRequest, cwd: string): JobSpec {
  return buildSpecWith(request, cwd, getBackend);
}

/** Validate `request` for `backend` itself, into a spec typed by that backend's schema (tests and backend-specific callers). */
export function buildSpecFor<Sch extends Schema>(backend: SpecRules<Sch>, request: FitRequest, cwd: string): JobSpec<SettingsOf<Sch>> {
  return buildSpecWith({ ...request, backend: backend.name }, cwd, () => backend);
}
