/**
 * Entry point of the detached process behind `fit --detach` on a backend whose
 * jobs run on this machine (local): it has the backend run the job to its end
 * (`runDetached`) and saves what changes in the job's record, so the job
 * survives the command that started it. SIGTERM (from `alekseylearn stop`)
 * stops the job cleanly. Like the CLI, it is a process entry point, so it is
 * where the environment is read. Started by the lifecycle's `supervise`.
 */
import { silentReporter } from "../context.js";
import { validateSettings } from "../spec/schema.js";
import { JobStore } from "./records.js";

const { stateDir, cacheDir, name, setup } = JSON.parse(process.argv[2] ?? "{}") as { stateDir: string; cacheDir: string; name: string; setup: unknown };
const controller = new AbortController();
// Listening before the backends load, so a `stop` sent meanwhile stops the job rather than this process.
for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"] as const) process.on(signal, () => controller.abort());
const store = new JobStore(stateDir);
const saved = store.update(name, { pid: process.pid });
const { getBackend } = await import("../backends/registry.js");
const backend = await getBackend(saved.backend);
if (!backend.runDetached) throw new Error(`the ${backend.name} backend runs no job on this machine`);
// The record's settings, typed again by the backend's schema (they were validated by it when the job was made).
// The hyperparameters as given, from the process that started this one: the record holds secret-named ones redacted.
const hyperparameters = JSON.parse(process.env.ALEKSEYLEARN_SUPERVISOR_HYPERPARAMETERS ?? "null") ?? saved.spec.hyperparameters;
delete process.env.ALEKSEYLEARN_SUPERVISOR_HYPERPARAMETERS; // not passed on to the job's own environment
const job = {
  ...saved,
  spec: { ...saved.spec, hyperparameters, settings: validateSettings(backend.schema, saved.spec.settings, `the ${backend.name} backend`).settings },
};
await backend.runDetached(job, setup, { cwd: process.cwd(), env: process.env, stateDir, cacheDir, reporter: silentReporter }, controller.signal, (changes) =>
  store.update(name, changes),
);
