/**
 * `doctor`: whether this machine and its accounts are ready to run jobs, one
 * check a line, each failure with its fix. The machine's own checks (Python,
 * bubblewrap, the pip index, the image builder) are here; each backend adds its
 * own through its optional `doctor` (src/backends/types.ts), so a new backend
 * brings its checks with it.
 */
import fs from "node:fs";
import { fileURLToPath } from "node:url";
import type { Context } from "../context.js";
import { allBackends, getBackend } from "../backends/registry.js";
import type { Backend, DoctorCheck } from "../backends/types.js";
import { UserError } from "../errors.js";
import { daemonlessBuilderCheck, imageBuilderCheck, probe } from "../package/builder-check.js";
import { which } from "../package/which.js";
import { redactUrls } from "../redact.js";
import { backendForOutputPath } from "../spec/build.js";
import { loadProjectConfig } from "../spec/config-file.js";
import { validateSettings } from "../spec/schema.js";
import { normalizeLocation } from "../storage/location.js";
import type { BackendName, JobSpec } from "../spec/types.js";

export type { DoctorCheck } from "../backends/types.js";

/** A check with the backend it belongs to (`local` for the machine's own). */
export interface DoctorLine extends DoctorCheck {
  backend: string;
}

/** What `doctor` found. */
export interface DoctorReport {
  /** The backend whose failures decide `failed`: the one asked for, else the default (local). */
  backend: string;
  checks: DoctorLine[];
  /** True when a check of `backend` failed. */
  failed: boolean;
}

/** Options of `doctor`. */
export interface DoctorOptions {
  /** Check this backend (and fail on its failures) instead of every backend set up here. */
  backend?: string;
  /** Settings as `--config.KEY=VALUE` gives them; the project config file in the context's folder adds its own. */
  config?: Readonly<Record<string, unknown>>;
}

/** The oldest Python the job runtime supports. */
const MIN_PYTHON: [number, number] = [3, 8];

async function pythonCheck(python: string, ctx: Context): Promise<DoctorCheck> {
  const found = which(python, ctx.env.PATH);
  if (!found)
    return {
      check: "Python",
      status: "fail",
      detail: `${python} is not on PATH`,
      fix: "Install Python 3.8 or newer, or name one with --config.python=/path/to/python3.",
    };
  const { code, output } = await probe(found, ["-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"], ctx);
  const version = output.split("\n").pop() ?? "";
  const [major, minor] = version.split(".").map(Number);
  if (code !== 0 || major === undefined || minor === undefined)
    return {
      check: "Python",
      status: "fail",
      detail: `${found} does not run: ${output}`,
      fix: "Name a working interpreter with --config.python=/path/to/python3.",
    };
  if (major < MIN_PYTHON[0] || (major === MIN_PYTHON[0] && minor < MIN_PYTHON[1]))
    return {
      check: "Python",
      status: "fail",
      detail: `${found} is Python ${version}`,
      fix: `Install Python ${MIN_PYTHON.join(".")} or newer, and name it with --config.python=PATH.`,
    };
  return { check: "Python", status: "ok", detail: `${found} (Python ${version})` };
}

async function bubblewrapCheck(ctx: Context): Promise<DoctorCheck> {
  const bwrap = which("bwrap", ctx.env.PATH);
  const install = "Install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap); without it local jobs run unsandboxed.";
  if (!bwrap) return { check: "bubblewrap", status: "fail", detail: "bwrap is not on PATH", fix: install };
  // A sandbox really made, as a local job makes one: bwrap on PATH may still be refused user namespaces.
  const { code, output } = await probe(bwrap, ["--dev-bind", "/", "/", "--tmpfs", "/opt", "true"], ctx);
  if (code !== 0)
    return {
      check: "bubblewrap",
      status: "fail",
      detail: `${bwrap} cannot make a sandbox: ${output.split("\n")[0]}`,
      fix: "Allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, or the AppArmor profile for bwrap on Ubuntu 24.04).",
    };
  return { check: "bubblewrap", status: "ok", detail: bwrap };
}

/** The first index pip asks: PIP_INDEX_URL, else pip's configuration, else PyPI. */
async function pipIndex(python: string, ctx: Context): Promise<{ url: string; from: string }> {
  if (ctx.env.PIP_INDEX_URL) return { url: ctx.env.PIP_INDEX_URL, from: "PIP_INDEX_URL" };
  const { code, output } = await probe(python, ["-m", "pip", "config", "list"], ctx);
  const configured = code === 0 ? /^(?::env:|global|install)\.index-url='([^']*)'/m.exec(output)?.[1] : undefined;
  return configured ? { url: configured, from: "pip config" } : { url: "https://pypi.org/simple", from: "pip's default" };
}

async function pipIndexCheck(python: string, ctx: Context): Promise<DoctorCheck> {
  const found = which(python, ctx.env.PATH);
  if (!found) return { check: "pip index", status: "skip", detail: "needs Python" };
  const { url, from } = await pipIndex(found, ctx);
  const shown = `${redactUrls(url)} (${from})`;
  const fix = "Set PIP_INDEX_URL=URL to an index this machine reaches, or run `python3 -m pip config set global.index-url URL`.";
  if (url.startsWith("file:")) {
    const exists = fs.existsSync(fileURLToPath(url));
    return exists ? { check: "pip index", status: "ok", detail: shown } : { check: "pip index", status: "fail", detail: `${shown} does not exist`, fix };
  }
  try {
    // A project page every index has; a 404 still proves the index answers.
    const response = await fetch(`${url.replace(/\/+$/, "")}/pip/`, { signal: AbortSignal.timeout(5_000), redirect: "follow" });
    if (response.status >= 500) return { check: "pip index", status: "fail", detail: `${shown} answers ${response.status}`, fix };
    return { check: "pip index", status: "ok", detail: `${shown} answers` };
  } catch (err) {
    const { cause } = err as Error & { cause?: { code?: string; message?: string } };
    const why = cause?.code ?? cause?.message ?? (err as Error).message;
    return { check: "pip index", status: "fail", detail: `${shown} cannot be reached (${why})`, fix };
  }
}

/** The machine's own checks: what the local backend (the default) needs, and the image builder, which only some uses need. */
async function machineChecks(settings: Readonly<Record<string, unknown>>, ctx: Context): Promise<DoctorCheck[]> {
  const python = typeof settings.python === "string" ? settings.python : "python3";
  const checks: DoctorCheck[] = await Promise.all([pythonCheck(python, ctx), bubblewrapCheck(ctx), pipIndexCheck(python, ctx), imageBuilderCheck(ctx)]);
  // The daemonless builder (the image backends' default) beside Docker's; the local backend never needs it, so it fails nothing here.
  const daemonless = await daemonlessBuilderCheck(ctx);
  // Local jobs need Docker only with runner=docker; image backends check it as theirs.
  const builder = checks[3]!;
  if (builder.status === "fail" && settings.runner !== "docker")
    checks[3] = {
      check: builder.check,
      status: "skip",
      detail: `${builder.detail}; needed only for --config.runner=docker and by image backends (sagemaker, vertex)`,
    };
  checks.push(
    daemonless.status === "ok"
      ? daemonless
      : { check: daemonless.check, status: "skip", detail: `${daemonless.detail}; needed only by image backends (sagemaker, vertex)` },
  );
  return checks;
}

/** A spec for `backend`'s checks: its settings from the project config file and `config`, and a placeholder artifact. */
function doctorSpec(backend: Backend, config: Readonly<Record<string, unknown>>, ctx: Context): JobSpec {
  const { settings, values, problems } = validateSettings(backend.schema, config, `the ${backend.name} backend`);
  const unknown = problems.filter((problem) => !/is required/.test(problem));
  if (unknown.length) throw new UserError(unknown[0]! + ".", `\`alekseylearn settings ${backend.name}\` lists its settings.`);
  let outputPath = "";
  if (typeof values.output_path === "string") outputPath = normalizeLocation(values.output_path, ctx.cwd, "output path");
  return {
    artifact: { kind: "script", dir: ctx.cwd, entry: "train.py", isFolder: false },
    backend: backend.name,
    settings,
    hyperparameters: {},
    inputs: {},
    outputPath,
  };
}

/** Check this machine and every backend set up on it (or only `options.backend`). */
export async function doctor(ctx: Context, options: DoctorOptions = {}): Promise<DoctorReport> {
  const project = loadProjectConfig(ctx.cwd);
  const config: Record<string, unknown> = { ...project?.config, ...options.config };
  const asked = options.backend ?? project?.backend;
  const chosen = options.backend ? (await getBackend(options.backend)).name : undefined;
  const checks: DoctorLine[] = [];
  const add = (backend: string, found: DoctorCheck[]): void => void checks.push(...found.map((check) => ({ backend, ...check })));

  // Settings given apply to the backend they belong to: the one asked for, or the one the output path picks.
  const owner: BackendName = (asked as BackendName | undefined) ?? backendForOutputPath(config.output_path);
  const settingsFor = (backend: Backend): Record<string, unknown> => (backend.name === owner ? config : {});

  const backends = chosen ? [await getBackend(chosen)] : await allBackends();
  if (!chosen || chosen === "local") add("local", await machineChecks(settingsFor(await getBackend("local")), ctx));
  for (const backend of backends) {
    if (!backend.doctor || (chosen && backend.name !== chosen)) continue;
    add(backend.name, await backend.doctor(doctorSpec(backend, settingsFor(backend), ctx), ctx, { asked: backend.name === chosen || backend.name === owner }));
  }
  const decisive = chosen ?? "local";
  return { backend: decisive, checks, failed: checks.some((check) => check.backend === decisive && check.status === "fail") };
}
