/** The one small interface every backend implements. */
import type { Context } from "../context.js";
import type { JobRecord, ProviderRecord } from "../jobs/job.js";
import type { Schema, Settings, SettingsOf } from "../spec/schema.js";
import type { BackendName, JobSpec } from "../spec/types.js";

/** A job's changes, which the lifecycle saves (only jobs/ writes records; backends say what changed). */
export type JobChanges<P extends object = ProviderRecord> = Partial<Omit<JobRecord<Settings, P>, "name" | "backend" | "spec" | "createdAt">>;

/** Options of a submission that are not part of the job itself. */
export interface SubmitOptions<P extends object = ProviderRecord> {
  /** Return once the job is running, leaving it to run on its own. */
  detach: boolean;
  /** Save what changed while the job goes on after `submit` has returned (a local run); returns the record as saved. */
  record: (changes: JobChanges<P>) => JobRecord;
  /** With `detach`, for a job that runs on this machine (local): start jobs/' detached supervisor, which runs it with `runDetached` and `setup` (passed as JSON) and saves its record; returns the supervisor's pid. */
  supervise: (setup: unknown) => number;
}

/** How to read a job's log. */
export interface LogOptions<S extends object = Settings, P extends object = ProviderRecord> {
  /** Keep reading until the job ends. */
  follow: boolean;
  /** Stop following early. */
  signal?: AbortSignal;
  /** The job's record as it is now: as saved, refreshed from its provider (and saved again). Without it, `describe` alone. */
  refresh?: () => Promise<JobRecord<S, P>>;
}

/** One provider request exactly as a submission would send it. */
export interface ProviderRequest {
  /** The provider's API (`sagemaker`, `ecr`, `kaggle`; `local` for this machine's own run). */
  api: string;
  /** The operation, as the provider names it (`CreateTrainingJob`, `SaveKernel`, `projects.locations.customJobs.create`). */
  operation: string;
  /** The resource the request is made under, for APIs that name one apart from the body (Google's `parent`). */
  parent?: string;
  /** Its body; values known only after building (an image digest) are placeholders of the right form. */
  request: unknown;
}

/** Everything a submission would do, found without creating anything: what `fit --dry-run` prints. */
export interface SubmissionPlan {
  backend: BackendName;
  /** The job's name. */
  job: string;
  /** Paths, relative to the artifact's folder, of the files the job would ship (or, on this machine, see). */
  files: string[];
  /** The training image, for backends that build one: its base, its platform, and the Dockerfile steps that make its layers. */
  image?: { base: string; platform: string; layers: string[] };
  /** Each request the submission would send, in order. */
  requests: ProviderRequest[];
  /** Read-only checks made (`done`), and those not made, with why (`skipped`). */
  checks: { done: string[]; skipped: string[] };
  /** What in `requests` stands for a value known only at submission. */
  placeholders: string[];
}

/** One line of `alekseylearn doctor`: what was checked, how it went, what was found, and the fix when it failed. */
export interface DoctorCheck {
  /** What is checked, short ("credentials", "output bucket"). */
  check: string;
  /** `skip`: not checked, and `detail` says why (a setting that is not given, a check that needs an earlier one). */
  status: "ok" | "fail" | "skip";
  /** What was found (a version, a source, an account); never a secret. */
  detail: string;
  /** With `fail`: what to do. */
  fix?: string;
}

/** A place jobs run. Backends talk to their provider; the core owns the lifecycle (progress, Ctrl-C, following). */
export interface Backend<Sch extends Schema = Schema, P extends object = ProviderRecord, S extends object = SettingsOf<Sch>> {
  readonly name: BackendName;
  /** One line for help: what this backend is. */
  readonly summary: string;
  /** Its settings (`--config.KEY=VALUE`), with types, defaults and docs; they type the job's `spec.settings`. */
  readonly schema: Sch;
  /** What Ctrl-C does while following a job: stop it (local), or leave it running (clouds). */
  readonly onInterrupt: "stop" | "detach";
  /** True when `settings` (this backend's, validated or as given on the command line) ask for NVIDIA GPUs, whose default base image has CUDA. */
  wantsGpu(settings: Readonly<Record<string, unknown>>): boolean;
  /** Every reason this backend cannot run `spec`, all at once; empty when it can. Runs before anything is uploaded. */
  check(spec: JobSpec<S>): string[];
  /** What `submit` would do for `job` (not saved), found by pure functions of its spec and read-only checks; creates nothing. */
  plan(job: JobRecord<S, P>, ctx: Context): Promise<SubmissionPlan>;
  /** Start the job described by `job` (saved, state "preparing"); returns what changed once the job is submitted (its state, the provider's identifiers). */
  submit(job: JobRecord<S, P>, ctx: Context, options: SubmitOptions<P>): Promise<JobChanges<P>>;
  /** What the provider says has changed of `job` (as last saved); empty when nothing has. */
  describe(job: JobRecord<S, P>, ctx: Context): Promise<JobChanges<P>>;
  /** The job's log lines; with `follow`, keeps yielding until the job ends or `signal` aborts. */
  logs(job: JobRecord<S, P>, ctx: Context, options: LogOptions<S, P>): AsyncIterable<string>;
  /** Ask the job to stop; returns once the request is made, with what changed when the backend knows it already. */
  stop(job: JobRecord<S, P>, ctx: Context): Promise<JobChanges<P> | void>;
  /** For a backend whose jobs run on this machine (local): run `job` to its end inside the detached supervisor that `supervise(setup)` started, saving what changes through `record`; aborting `signal` stops the job. */
  runDetached?(job: JobRecord<S, P>, setup: unknown, ctx: Context, signal: AbortSignal, record: (changes: JobChanges<P>) => JobRecord): Promise<unknown>;
  /** For `init --create-role`: make (or bring up to date) the identity this backend's jobs run as; its name and whether it was made now. */
  createRole?(spec: JobSpec<S>, ctx: Context): Promise<{ arn: string; created: boolean }>;
  /** A job this machine has no record of, found by name at the provider (jobs started elsewhere; the lifecycle saves it); undefined when there is none. */
  lookup?(name: string, ctx: Context): Promise<JobRecord<S, P> | undefined>;
  /**
   * For `alekseylearn doctor` (and `fit`'s checks before anything is built): this backend's own checks
   * (credentials, account, identity, output location) for `spec`, whose artifact is a placeholder. When
   * `asked` is false and nothing on this machine sets this backend up (no credentials, no settings), none.
   */
  doctor?(spec: JobSpec<S>, ctx: Context, options: { asked: boolean }): Promise<DoctorCheck[]>;
  /** The URL scheme of the outputs this backend keeps itself (kaggle), fetched with `fetchOutputs`. */
  readonly outputScheme?: string;
  /**
   * For a backend that keeps outputs itself (Kaggle): download the outputs at
   * `location` (its own URL scheme) into `to`, model files at the top and the
   * rest under `output/`, as every backend lays them out. Returns the files written.
   */
  fetchOutputs?(location: string, to: string, options: { overwrite: boolean }, ctx: Context): Promise<string[]>;
}
