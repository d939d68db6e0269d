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
import { redactPair, redactUrls } from "../redact.js";
import { nearest } from "../spec/nearest.js";
import type { JobSpec } from "../spec/types.js";
import type { JobRecord } from "./job.js";

export { isFinal, type JobRecord, type JobState } from "./job.js";

/** Settings that are free-form `KEY=VALUE` lists: a value is redacted when its key names a secret. */
const PAIR_SETTINGS = new Set(["environment", "tags"]);

/** A copy of `value` with the credentials of every URL in its strings redacted. */
function redactStrings(value: unknown): unknown {
  if (typeof value === "string") return redactUrls(value);
  if (Array.isArray(value)) return value.map(redactStrings);
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, redactStrings(inner)]));
  return value;
}

/**
 * A copy of `record` fit to write down or print: credentials inside URLs are
 * redacted everywhere (the environment file's text, settings, locations, the
 * reason), and so are the values of `config.environment` and `config.tags`
 * items whose key names a secret (`WANDB_API_KEY`, `HF_TOKEN`; not `MAX_TOKENS`).
 * Hyperparameters stay exactly as typed; a job gets its values from the spec it
 * was submitted with, never from its record.
 */
export function redactRecord(record: JobRecord): JobRecord {
  const { hyperparameters, settings, ...rest } = record.spec;
  const redactedSettings = Object.fromEntries(
    Object.entries(settings).map(([key, value]) => [
      key,
      PAIR_SETTINGS.has(key) && Array.isArray(value) ? value.map((item) => (typeof item === "string" ? redactPair(item) : item)) : redactStrings(value),
    ]),
  );
  const { spec: _spec, ...top } = record;
  return {
    ...(redactStrings(top) as Omit<JobRecord, "spec">),
    spec: { ...(redactStrings(rest) as Omit<JobSpec, "hyperparameters" | "settings">), settings: redactedSettings as JobSpec["settings"], hyperparameters },
  };
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

  /** Every record, newest first. */
  list(): JobRecord[] {
    return this.names()
      .map((name) => this.find(name))
      .filter((record): record is JobRecord => record !== undefined)
      .sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.name.localeCompare(a.name));
  }
}
