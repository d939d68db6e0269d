/** Settings of the Slurm backend. */
import type { Schema, SettingsOf } from "../../spec/schema.js";
import type { JobRecord } from "../../jobs/job.js";
import type { JobSpec } from "../../spec/types.js";
import { commonSchema } from "../common.js";

/** `--config.KEY` for `--backend slurm`. A setting left unset adds no sbatch option: the cluster's defaults apply. */
export const slurmSchema = {
  ...commonSchema,
  output_path: {
    ...commonSchema.output_path,
    doc: "Where model.tar.gz and output.tar.gz go, under OUTPUT_PATH/JOB/output/: an absolute path on the cluster's shared filesystem, or s3:// or gs:// (copied there from this machine, with its credentials, once the job ends).",
  },
  host: {
    type: { kind: "string" },
    default: "localhost",
    doc: "The login node, reached as `ssh HOST` with your own SSH setup (~/.ssh/config: user, key, jump host); localhost: this machine is the login node.",
  },
  ssh_config: { type: { kind: "string" }, doc: "An ssh_config file to use instead of ~/.ssh/config (ssh -F FILE)." },
  work_dir: {
    type: { kind: "string" },
    default: "~/alekseylearn",
    doc: "A folder on the cluster's shared filesystem (seen by the login node and every compute node): shipped code by digest, cached environments, job folders.",
  },
  python: {
    type: { kind: "string" },
    default: "python3",
    doc: "The cluster's interpreter the job's virtual environment is created from (after config.modules are loaded).",
  },
  modules: { type: { kind: "list" }, default: [], doc: "Environment modules to `module load` before anything runs (e.g. python/3.11,cuda/12.4)." },
  partition: { type: { kind: "string" }, doc: "sbatch --partition." },
  account: { type: { kind: "string" }, doc: "sbatch --account." },
  qos: { type: { kind: "string" }, doc: "sbatch --qos." },
  max_runtime: { type: { kind: "duration" }, doc: "sbatch --time: Slurm ends the job after this long." },
  gpus_per_node: { type: { kind: "integer", min: 0 }, doc: "sbatch --gpus-per-node." },
  cpus_per_task: { type: { kind: "integer", min: 1 }, doc: "sbatch --cpus-per-task (one task per node)." },
  mem: { type: { kind: "string" }, doc: "sbatch --mem: memory per node (e.g. 16G)." },
  constraint: { type: { kind: "string" }, doc: "sbatch --constraint: node features required (e.g. a100)." },
  extra_sbatch: {
    type: { kind: "list" },
    default: [],
    doc: "Further sbatch options, each as written on sbatch's command line (e.g. --exclusive,--mail-type=END).",
  },
  stop_timeout: {
    type: { kind: "duration" },
    default: 30,
    doc: "After `stop`, how long the job has after SIGTERM (scancel --signal=TERM --full) before it is cancelled (scancel); what it saved in /opt/ml/model is packed.",
  },
  poll_interval: { type: { kind: "number", min: 0.05 }, default: 2, doc: "Seconds between squeue checks while following a job." },
} satisfies Schema;

/** The Slurm backend's settings, typed from its schema. */
export type SlurmSettings = SettingsOf<typeof slurmSchema>;

/** What a job's record keeps of its Slurm job. */
export type SlurmProvider = {
  /** Slurm's job id. */
  jobId?: string;
  /** The work folder as an absolute path on the cluster. */
  workDir?: string;
  /** Slurm's own state (PENDING, RUNNING, …) and, while it waits, why (Resources, Priority); shown by `status`. */
  secondary?: string;
  message?: string;
  /** While the job waits in the queue, why (Slurm's reason: Resources, Priority, JobHeldUser); shown by `jobs`. */
  queueReason?: string;
  /** The job's nodes, in Slurm's hostlist syntax (node[1-2]). */
  nodes?: string;
  /** Bytes the submission copied to the cluster (0 when the code, runtime and environment file were there already). */
  copied?: string;
};

/** A job spec for Slurm. */
export type SlurmSpec = JobSpec<SlurmSettings>;
/** A job record of Slurm. */
export type SlurmJob = JobRecord<SlurmSettings, SlurmProvider>;
