/** Running the built CLI as a subprocess, the way a user runs it, with its own state folder. */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { listTree, notebookOutput } from "./tree.js";

const here = path.dirname(fileURLToPath(import.meta.url));
/** The repository root (tests run from dist/test/...). */
export const REPO = path.resolve(here, "..", "..", "..");
/** The built CLI entry point. */
export const CLI = path.join(REPO, "dist", "src", "cli", "main.js");
/** Environments are shared between tests (and runs) so each requirements file is installed once. */
export const TEST_CACHE = process.env.ALEKSEYLEARN_TEST_CACHE ?? path.join(REPO, ".cache", "test");

/** A fresh state folder (job records, run folders) and the environment the CLI runs with. */
export function cliEnv(extra: Record<string, string> = {}): { env: NodeJS.ProcessEnv; stateDir: string } {
  const state = fs.mkdtempSync(path.join(os.tmpdir(), "alekseylearn-state-"));
  const env: NodeJS.ProcessEnv = { ...process.env, XDG_STATE_HOME: state, XDG_CACHE_HOME: TEST_CACHE, ...extra };
  delete env.NODE_TEST_CONTEXT; // the CLI is not a test file
  return { env, stateDir: path.join(state, "alekseylearn") };
}

/** What a finished CLI run left. */
export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Start the CLI; `done` resolves when it exits. */
export function startCli(
  args: readonly string[],
  options: { cwd: string; env: NodeJS.ProcessEnv },
): { child: ChildProcess; done: Promise<CliResult>; output: () => string } {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: options.cwd, env: options.env, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (chunk) => (stdout += chunk));
  child.stderr!.on("data", (chunk) => (stderr += chunk));
  const done = new Promise<CliResult>((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
  return { child, done, output: () => stdout + stderr };
}

/** Run the CLI to its end. */
export function runCli(args: readonly string[], options: { cwd: string; env: NodeJS.ProcessEnv }): Promise<CliResult> {
  return startCli(args, options).done;
}

/** Wait until `predicate` holds, checking every 50 ms, failing after `timeoutMs`. */
export async function waitFor(predicate: () => boolean, what: string, timeoutMs = 120_000): Promise<void> {
  const start = Date.now();
  while (!predicate()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Copy an example folder into a fresh temporary folder, keeping its name (backends name kernels after it), and return the copy. */
export function copyExample(name: string): string {
  const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "alekseylearn-example-")), name);
  fs.cpSync(path.join(REPO, "examples", name), dir, { recursive: true });
  return dir;
}

/**
 * examples/notebook run to its end on a cloud backend (`flags` pick it), then
 * fetched by job name, checked as a user would: the cells' output streamed
 * while it ran, output.tar.gz beside the model, and the model and the
 * executed notebook (with its outputs) fetched.
 */
export async function notebookRoundTrip(flags: readonly string[], env: NodeJS.ProcessEnv, outputPath: string, where: string): Promise<void> {
  const dir = copyExample("notebook");
  const fit = await runCli(["fit", "train.ipynb", ...flags, "--json"], { cwd: dir, env });
  assert.equal(fit.code, 0, fit.stderr);
  const job = JSON.parse(fit.stdout) as { name: string; output?: string };
  assert.match(fit.stderr, /training on 112 samples/, `cell output is streamed from ${where}`);
  assert.equal(job.output, `${outputPath}/${job.name}/output/output.tar.gz`);
  const to = fs.mkdtempSync(path.join(os.tmpdir(), "fetched-"));
  const fetch = await runCli(["fetch", job.name, "--to", to], { cwd: dir, env });
  assert.equal(fetch.code, 0, fetch.stderr);
  assert.ok(listTree(to).includes("model.joblib"), listTree(to).join(", "));
  assert.match(notebookOutput(path.join(to, "output", "train.ipynb")), /training on 112 samples/, "the executed notebook holds its outputs");
}
