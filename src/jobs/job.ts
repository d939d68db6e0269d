/**
 * The nouns of a job's record, and nothing that reads or writes one: backends
 * use these to say what changed; only `records.ts` (and the lifecycle that
 * owns it) writes records.
 */
import type { Settings } from "../spec/schema.js";
import type { BackendName, JobSpec } from "../spec/types.js";

/** What a backend keeps of a job at its provider (ARNs, kernel slugs), as text; each backend types its own. */
export type ProviderRecord = Record<string, string | undefined>;

/** Where a job is in its life; the last three are final. */
export type JobState = "preparing" | "queued" | "running" | "completed" | "failed" | "stopped";

/** True for the states a job never leaves. */
export function isFinal(state: JobState): boolean {
  return state === "completed" || state === "failed" || state === "stopped";
}

/** What is known about one job. Times are ISO-8601 strings in UTC. */
export interface JobRecord<S extends object = Settings, P extends object = ProviderRecord> {
  name: string;
  backend: BackendName;
  state: JobState;
  spec: JobSpec<S>;
  createdAt: string;
  startedAt?: string;
  endedAt?: string;
  /** This job's own output folder or prefix: OUTPUT_PATH/JOB. */
  jobOutput: string;
  /** Location of model.tar.gz once the job has written one. */
  model?: string;
  /** Location of output.tar.gz (the contents of /opt/ml/output/data) once written. */
  output?: string;
  /** Why the job failed or stopped, in the provider's or the runner's words. */
  reason?: string;
  /** Exit status of the training process, where the backend knows it. */
  exitCode?: number;
  /** Local backend: the log file, and the process that supervises the run. */
  logFile?: string;
  pid?: number;
  /** Who `pid` was when recorded (see `processIdentity`): its start time and a digest of its command line, so `stop` signals only the job's own process. */
  pidStart?: string;
  pidCommand?: string;
  /** Backend-specific identifiers (ARNs, kernel slugs), typed by each backend. */
  provider?: P;
}
