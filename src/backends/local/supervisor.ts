/**
 * Entry point of the detached process behind `fit --detach` on the local
 * backend: it runs the job to its end and records the outcome, so the job
 * survives the command that started it. SIGTERM (from `alekseylearn stop`)
 * stops the job cleanly. Like the CLI, it is a process entry point, so it is
 * where the environment is read.
 */
import { silentReporter } from "../../context.js";
import { JobStore } from "../../jobs/records.js";
import { validateSettings } from "../../spec/schema.js";
import { runLocalJob, type RunSetup } from "./run.js";
import { localSchema } from "./schema.js";

const { stateDir, cacheDir, name, setup } = JSON.parse(process.argv[2] ?? "{}") as { stateDir: string; cacheDir: string; name: string; setup: RunSetup };
const controller = new AbortController();
for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"] as const) process.on(signal, () => controller.abort());
// A process entry point, like the CLI: it owns this job's record while it runs.
const store = new JobStore(stateDir);
const saved = store.update(name, { pid: process.pid });
// The record's settings, typed again by the local schema (they were validated by it when the job was made).
const job = { ...saved, spec: { ...saved.spec, settings: validateSettings(localSchema, saved.spec.settings, "the local backend").settings } };
await runLocalJob(job, setup, { cwd: process.cwd(), env: process.env, stateDir, cacheDir, reporter: silentReporter }, controller.signal, (changes) =>
  store.update(name, changes),
);
