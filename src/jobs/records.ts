/**
 * Job records on disk: one JSON file per job under the state folder, written
 * atomically, so `status`, `logs`, `jobs` and `fetch` find a job by name.
 * A record holds no credential (see `redactRecord`), and only its owner can
 * read it: the state folder is 0700 and each record 0600.
 */
import fs from "node:fs";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { UserError } from "../errors.js";
import { processIdentity } from "../exec.js";
import { redactForPrint, secretValues } from "../redact.js";
import { nearest } from "../spec/nearest.js";
import type { JobRecord } from "./job.js";
import { isValidJobName } from "./names.js";
import { byCodePoint } from "../order.js";

export { isFinal, type JobRecord, type JobState } from "./job.js";

/**
 * A copy of `record` fit to write down or print, by the rule everything alekseylearn prints follows (`redactForPrint`):
 * credentials inside URLs everywhere (the environment file's text, settings, locations, the reason); the values of
 * `config.environment`, `config.tags` and `config.labels` items, settings and hyperparameters whose key names a secret
 * (`WANDB_API_KEY`, `HF_TOKEN`, `api_key`; not `MAX_TOKENS`), wherever those values appear. A job gets its values from
 * the spec it was submitted with (the detached supervisor is handed its hyperparameters), never from its record.
 */
export function redactRecord(record: JobRecord): JobRecord {
  const secrets = secretValues(record.spec?.settings ?? {}, record.spec?.hyperparameters ?? {});
  return redactForPrint(record, secrets) as JobRecord;
}

const STATES = new Set(["preparing", "queued", "running", "completed", "failed", "stopped"]);

/** What is wrong with `value` as the record of job `name` (a file cut short, edited, or of another shape), or undefined when nothing is. */
function recordProblem(value: unknown, name: string): string | undefined {
  if (!value || typeof value !== "object" || Array.isArray(value)) return "it is not a JSON object";
  const record = value as Record<string, unknown>;
  if (record.name !== name) return `it names the job ${JSON.stringify(record.name)}, not ${name}`;
  for (const key of ["backend", "state", "createdAt", "jobOutput"]) if (typeof record[key] !== "string") return `its ${key} is not text`;
  if (!STATES.has(record.state as string)) return `its state ${JSON.stringify(record.state)} is not one a job has`;
  const spec = record.spec as Record<string, unknown> | undefined;
  if (!spec || typeof spec !== "object" || typeof spec.artifact !== "object" || typeof spec.settings !== "object" || typeof spec.hyperparameters !== "object")
    return "its spec is missing or not of a job's shape";
  if (record.pid !== undefined && (!Number.isInteger(record.pid) || (record.pid as number) <= 0)) return "its pid is not a process id";
  for (const key of ["reason", "logFile", "model", "output", "startedAt", "endedAt"])
    if (record[key] !== undefined && typeof record[key] !== "string") return `its ${key} is not text`;
  return undefined;
}

/** A record file that could not be read as one: its path, and why. */
export interface UnreadableRecord {
  file: string;
  why: string;
}

/** Make `dir` (and missing parents) readable by its owner only, and tighten it when it exists with a wider mode. */
function ownerOnlyFolder(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  if ((fs.statSync(dir).mode & 0o077) !== 0) fs.chmodSync(dir, 0o700);
}

/** The job records kept in one state folder. */
export class JobStore {
  readonly dir: string;
  private readonly stateDir: string;

  constructor(stateDir: string) {
    this.stateDir = stateDir;
    this.dir = path.join(stateDir, "jobs");
  }

  private file(name: string): string {
    return path.join(this.dir, `${name}.json`);
  }

  /** Write a record atomically (a reader never sees half a file), redacted, readable by its owner only; returns `record` as given. */
  save(record: JobRecord): JobRecord {
    ownerOnlyFolder(this.stateDir);
    ownerOnlyFolder(this.dir);
    const tmp = `${this.file(record.name)}.${randomBytes(4).toString("hex")}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(redactRecord(record), null, 2) + "\n", { mode: 0o600 });
    fs.renameSync(tmp, this.file(record.name));
    return record;
  }

  /** Apply `changes` to the saved record and save it again; a new pid is kept with who that process is (its start time and command line), so `stop` can tell it from a later process given the same pid. */
  update(name: string, changes: Partial<JobRecord>): JobRecord {
    const identity = changes.pid !== undefined && changes.pidStart === undefined ? processIdentity(changes.pid) : undefined;
    return this.save({ ...this.get(name), ...changes, ...identity });
  }

  /** Read the record file of `name`: the record, nothing (no such file), or why it cannot be used. */
  private read(name: string): JobRecord | UnreadableRecord | undefined {
    const file = this.file(name);
    let text: string;
    try {
      text = fs.readFileSync(file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      return { file, why: `it cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})` };
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      return { file, why: text.trim() ? `it is not valid JSON (${(err as Error).message}); it may have been cut short` : "it is empty" };
    }
    const problem = recordProblem(value, name);
    return problem ? { file, why: problem } : (value as JobRecord);
  }

  /** The record of `name`, or undefined when there is none; a UserError naming the file when it exists but cannot be used as one. */
  find(name: string): JobRecord | undefined {
    // A name that is not a job name has no record (and never makes a path outside the state folder).
    if (!isValidJobName(name)) return undefined;
    const found = this.read(name);
    if (found && "why" in found) throw unreadableError(name, found);
    return found;
  }

  /** Remove the record of `name` (whether or not it can be read); false when there was none. */
  remove(name: string): boolean {
    if (!isValidJobName(name)) return false;
    try {
      fs.unlinkSync(this.file(name));
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
      throw err;
    }
  }

  /** The record of `name`; a UserError naming the closest job when there is none. */
  get(name: string): JobRecord {
    const record = this.find(name);
    if (record) return record;
    const guess = nearest(name, this.names());
    throw new UserError(
      `No job named ${name}.`,
      guess ? `Did you mean ${guess}? \`alekseylearn jobs\` lists them all.` : "`alekseylearn jobs` lists the jobs this machine knows.",
    );
  }

  private names(): string[] {
    try {
      return fs
        .readdirSync(this.dir)
        .filter((file) => file.endsWith(".json"))
        .map((file) => file.slice(0, -5));
    } catch {
      return [];
    }
  }

  /** Every record, newest first; `skipped` is told of each file that is not one (cut short, empty, edited out of shape), which the list leaves out. */
  list(skipped: (bad: UnreadableRecord) => void = () => {}): JobRecord[] {
    const records: JobRecord[] = [];
    for (const name of this.names()) {
      const found = isValidJobName(name) ? this.read(name) : { file: this.file(name), why: `${name} is not a job name` };
      if (found && "why" in found) skipped(found);
      else if (found) records.push(found);
    }
    // ISO times and job names are ASCII: by code point is their order.
    return records.sort((a, b) => byCodePoint(b.createdAt, a.createdAt) || byCodePoint(b.name, a.name));
  }
}

/** The error for a record file of `name` that exists but cannot be used. */
function unreadableError(name: string, bad: UnreadableRecord): UserError {
  return new UserError(
    `The record of job ${name} (${bad.file}) cannot be used: ${bad.why}.`,
    `Look at the file, or remove it with \`alekseylearn jobs --rm ${name}\` (the job itself, if it runs, is not touched).`,
  );
}

/** The warning for a record file that `list` left out. */
export function skippedRecordWarning(bad: UnreadableRecord): string {
  return `Skipped ${bad.file}: ${bad.why}.`;
}
