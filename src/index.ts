/**
 * alekseylearn as a library: run a training job somewhere, follow it, fetch its
 * model. Every function takes a Context (folder, environment, state and cache
 * folders, reporter); nothing here reads argv, the environment or the console.
 */
export { fit, planFit, follow, status, jobs, logs, stop, findJob, JobEndedError, type FitOptions, type FollowResult } from "./jobs/lifecycle.js";
export { fetch, type FetchOptions, type FetchResult } from "./fetch.js";
export { init, type InitResult } from "./jobs/init.js";
export { buildSpec, type FitRequest } from "./jobs/spec.js";
export { makeContext, defaultDirs, silentReporter, type Context, type Reporter } from "./context.js";
export { UserError, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED } from "./errors.js";
export { allBackends, builtBackends, getBackend } from "./backends/registry.js";
export type { Backend, SubmissionPlan, ProviderRequest } from "./backends/types.js";
export type { JobRecord, JobState } from "./jobs/records.js";
export type { JobSpec, BackendName, TrainingArtifact, EnvironmentFile } from "./spec/types.js";
export type { ConfigValue } from "./spec/values.js";
