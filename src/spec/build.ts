/**
 * From what the user said (flags, and the project config file) to a validated
 * JobSpec. Everything that can be wrong with the input is found here, before
 * anything is created, uploaded or run.
 */
import fs from "node:fs";
import path from "node:path";
import { UserError } from "../errors.js";
import { findEnvironmentFile, resolveArtifact } from "../package/artifact.js";
import { hyperparameterStrings } from "../package/contract.js";
import { normalizeLocation, outputLocationProblems, schemeOf } from "../storage/location.js";
import { loadProjectConfig } from "./config-file.js";
import { validateSettings, type Schema, type SettingsOf } from "./schema.js";
import { BACKEND_NAMES, type BackendName, type JobSpec, type SpecRules } from "./types.js";
import type { ConfigValue } from "./values.js";

/** What the user asked for, as the CLI or a library caller gives it. Relative paths are relative to the context's folder. */
export interface FitRequest {
  /** The training artifact: a .py file, an .ipynb file, or a folder (with `entry`). */
  artifact: string;
  /** The file to run inside a folder artifact. */
  entry?: string;
  /** The environment file, when not the requirements.txt or environment.yml beside the artifact. */
  envfile?: string;
  /** The backend; by default chosen from `config.output_path` (s3:// → sagemaker, gs:// → vertex, else local). */
  backend?: string;
  /** Backend settings: text as typed on the command line, or typed values. */
  config?: Readonly<Record<string, unknown>>;
  /** Hyperparameters: text is passed exactly as given (as the CLI gives it); other values as JSON. */
  hyperparameters?: Readonly<Record<string, ConfigValue>>;
  /** Input channels: name → location. */
  inputs?: Readonly<Record<string, string>>;
}

const CHANNEL = /^[A-Za-z0-9._-]+$/;

/** The backend implied by an output path's scheme. */
export function backendForOutputPath(outputPath: unknown): BackendName {
  const scheme = typeof outputPath === "string" ? schemeOf(outputPath) : undefined;
  return scheme === "s3" ? "sagemaker" : scheme === "gs" ? "vertex" : "local";
}

function problemsError(problems: string[], owner: string): UserError {
  const name = owner.replace(/^the (\S+) backend$/, "$1");
  if (problems.length === 1) return new UserError(problems[0]! + ".", `\`alekseylearn settings ${name}\` lists the settings of ${owner}.`);
  return new UserError(
    `${problems.length} problems with the job's settings:`,
    `\`alekseylearn settings ${name}\` lists the settings of ${owner}.`,
    2,
    problems.map((p) => `- ${p}`),
  );
}

/**
 * Validate a request into a JobSpec, or throw one UserError that names every problem. `rulesOf` gives
 * a backend's settings schema and its check by name (the backends' table, passed in from above, so
 * the spec layer knows no backend); it throws a UserError for a name that is no backend.
 */
export function buildSpec<Sch extends Schema>(request: FitRequest, cwd: string, rulesOf: (name: string) => SpecRules<Sch>): JobSpec<SettingsOf<Sch>> {
  const artifactDir = path.resolve(cwd, request.artifact);
  const provisional = resolveArtifactFolder(artifactDir);
  const project = loadProjectConfig(provisional);
  const artifact = resolveArtifact(cwd, request.artifact, request.entry ?? project?.entry);

  const config: Record<string, unknown> = { ...project?.config, ...request.config };
  const backendName = request.backend ?? project?.backend ?? backendForOutputPath(config.output_path);
  const backend = rulesOf(backendName);
  const owner = `the ${backend.name} backend`;
  const { settings, values, problems } = validateSettings(backend.schema, config, owner);
  explainOtherBackends(problems, backend.name, rulesOf);

  // A backend that keeps outputs itself (Kaggle) has no output_path; the job's outputs are named at submission.
  let outputPath = "";
  if ("output_path" in backend.schema) {
    try {
      outputPath = normalizeLocation(typeof values.output_path === "string" ? values.output_path : "", cwd, "output path");
      if (values.output_path === undefined) problems.push(`config.output_path is required by ${owner}`);
      else problems.push(...outputLocationProblems(outputPath));
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      problems.push(err.message.replace(/\.$/, "") + (err.hint ? ` (${err.hint.replace(/\.$/, "")})` : ""));
    }
  }

  const inputs: Record<string, string> = {};
  for (const [channel, location] of Object.entries({ ...project?.inputs, ...request.inputs })) {
    if (!CHANNEL.test(channel)) {
      problems.push(`input channel name ${JSON.stringify(channel)} may hold only letters, digits, '.', '_' and '-'`);
      continue;
    }
    try {
      inputs[channel] = normalizeLocation(location, cwd, `input ${channel}`);
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      problems.push(err.message.replace(/\.$/, ""));
    }
  }
  for (const [key, value] of Object.entries(project?.hyperparameters ?? {})) {
    if (!isConfigValue(value)) problems.push(`hyperparameter ${key} in ${project!.file} must be text, a number, a boolean or a list`);
  }
  if (problems.length) throw problemsError(problems, owner);

  const envfile = request.envfile !== undefined ? path.resolve(cwd, request.envfile) : project?.envfile;
  const environment = findEnvironmentFile(artifact, envfile);
  const spec: JobSpec<SettingsOf<Sch>> = {
    artifact,
    backend: backend.name,
    settings,
    hyperparameters: hyperparameterStrings({ ...(project?.hyperparameters as Record<string, ConfigValue> | undefined), ...request.hyperparameters }),
    inputs,
    outputPath,
  };
  if (environment) spec.environment = environment;
  if (project) spec.configFile = project.file;
  const unsupported = backend.check(spec);
  if (unsupported.length) throw problemsError(unsupported, owner);
  return spec;
}

/** How each backend is chosen, for a setting given to another one. */
const CHOSEN_BY: Record<BackendName, string> = {
  local: "--backend local, or a local config.output_path",
  sagemaker: "--backend sagemaker, or an s3:// config.output_path",
  vertex: "--backend vertex, or a gs:// config.output_path",
  kaggle: "--backend kaggle",
  slurm: "--backend slurm",
};

/** A setting unknown to this backend but known to others says whose it is and how that backend is chosen (in place, in `problems`). */
function explainOtherBackends(problems: string[], current: BackendName, rulesOf: (name: string) => { schema: Schema }): void {
  for (const [i, problem] of problems.entries()) {
    const key = /^config\.(\S+) is not a setting of /.exec(problem)?.[1];
    if (!key) continue;
    const owners = BACKEND_NAMES.filter((name) => {
      if (name === current) return false;
      try {
        return key in rulesOf(name).schema;
      } catch {
        return false; // a backend not built in this version
      }
    });
    if (owners.length)
      problems[i] =
        `config.${key} is not a setting of the ${current} backend, which this job runs on; it is one of the ${owners.join(", ")} ${owners.length > 1 ? "backends'" : "backend's"}` +
        ` (${owners.map((name) => `${name} is chosen with ${CHOSEN_BY[name]}`).join("; ")})`;
  }
}

/** The folder a project config would sit in: the folder itself, or a file's folder. */
function resolveArtifactFolder(full: string): string {
  return fs.statSync(full, { throwIfNoEntry: false })?.isDirectory() ? full : path.dirname(full);
}

function isConfigValue(value: unknown): value is ConfigValue {
  return ["string", "number", "boolean"].includes(typeof value) || (Array.isArray(value) && value.every(isConfigValue));
}
