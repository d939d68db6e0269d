/**
 * Job records on disk: one JSON file per job under the state folder, written
 * atomically, so `status`, `logs`, `jobs` and `fetch` find a job by name.
 */
import fs from "node:fs";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { UserError } from "../errors.js";
import { nearest } from "../spec/nearest.js";
import type { BackendName, JobSpec } from "../spec/types.js";

/** Where a job is in its life; the last three are final. */
export type JobState = "preparing" | "queued" | "running" | "completed" | "failed" | "stopped";

/** True for the states a job never leaves. */
export function isFinal(state: JobState): boolean {
  return state === "completed" || state === "failed" || state === "stopped";
}

/** What is known about one job. Times are ISO-8601 strings in UTC. */
export interface JobRecord {
  name: string;
  backend: BackendName;
  state: JobState;
  spec: JobSpec;
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
  /** Backend-specific identifiers (ARNs, kernel slugs). */
  provider?: Record<string, string>;
}

/** The job records kept in one state folder. */
export class JobStore {
  readonly dir: string;

  constructor(stateDir: string) {
    this.dir = path.join(stateDir, "jobs");
  }

  private file(name: string): string {
    return path.join(this.dir, `${name}.json`);
  }

  /** Write a record atomically (a reader never sees half a file). */
  save(record: JobRecord): JobRecord {
    fs.mkdirSync(this.dir, { recursive: true });
    const tmp = `${this.file(record.name)}.${randomBytes(4).toString("hex")}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(record, null, 2) + "\n");
    fs.renameSync(tmp, this.file(record.name));
    return record;
  }

  /** Apply `changes` to the saved record and save it again. */
  update(name: string, changes: Partial<JobRecord>): JobRecord {
    return this.save({ ...this.get(name), ...changes });
  }

  /** The record of `name`, or undefined when there is none. */
  find(name: string): JobRecord | undefined {
    try {
      return JSON.parse(fs.readFileSync(this.file(name), "utf8")) as JobRecord;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
  }

  /** The record of `name`; a UserError naming the closest job when there is none. */
  get(name: string): JobRecord {
    const record = this.find(name);
    if (record) return record;
    const guess = nearest(name, this.names());
    throw new UserError(`No job named ${name}.`, guess ? `Did you mean ${guess}? \`alekseylearn jobs\` lists them all.` : "`alekseylearn jobs` lists the jobs this machine knows.");
  }

  private names(): string[] {
    try {
      return fs.readdirSync(this.dir).filter((file) => file.endsWith(".json")).map((file) => file.slice(0, -5));
    } catch {
      return [];
    }
  }

  /** Every record, newest first. */
  list(): JobRecord[] {
    return this.names()
      .map((name) => this.find(name))
      .filter((record): record is JobRecord => record !== undefined)
      .sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.name.localeCompare(a.name));
  }
}
