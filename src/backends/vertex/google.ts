/**
 * Where the Vertex backend finds its Google Cloud project, credentials and
 * endpoints, in the order Google's own tools use, read from variables and
 * files only: gcloud is never spawned (it may be missing, slow to start, or
 * prompt). Nothing here reads or prints a token; the credentials' source is
 * named by where it is, never by what it holds.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { failure, UserError } from "../../errors.js";

type Env = Readonly<Record<string, string | undefined>>;

/** The project a job runs in, and where it was found (for `--dry-run`'s checks and errors). */
export interface ProjectChoice {
  project: string;
  from: string;
}

/** gcloud's configuration folder: CLOUDSDK_CONFIG, else %APPDATA%\gcloud on Windows, else ~/.config/gcloud (as gcloud and google-auth-library look for it). */
export function gcloudConfigDir(env: Env): string {
  if (env.CLOUDSDK_CONFIG) return env.CLOUDSDK_CONFIG;
  if (process.platform === "win32" && env.APPDATA) return path.join(env.APPDATA, "gcloud");
  return path.join(env.HOME || os.homedir(), ".config", "gcloud");
}

/** The value of `key` in `section` of an INI file's text (gcloud's configurations/config_NAME), if set. */
export function iniValue(text: string, section: string, key: string): string | undefined {
  let inSection = false;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith("#") || line.startsWith(";")) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      inSection = header[1]!.trim() === section;
      continue;
    }
    const at = line.search(/[=:]/);
    if (inSection && at > 0 && line.slice(0, at).trim() === key) return line.slice(at + 1).trim() || undefined;
  }
  return undefined;
}

function readText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
}

/** A property of gcloud's active configuration, read from its files (CLOUDSDK_ACTIVE_CONFIG_NAME or the active_config file names the configuration), and where. */
function gcloudProperty(env: Env, section: string, key: string): { value: string; from: string } | undefined {
  const dir = gcloudConfigDir(env);
  const name = env.CLOUDSDK_ACTIVE_CONFIG_NAME || readText(path.join(dir, "active_config"))?.trim() || "default";
  const file = path.join(dir, "configurations", `config_${name}`);
  const text = readText(file);
  const value = text === undefined ? undefined : iniValue(text, section, key);
  return value ? { value, from: `gcloud's configuration ${name} (${file})` } : undefined;
}

/** gcloud's active configuration's `[core] project`. */
export function gcloudProject(env: Env): ProjectChoice | undefined {
  const found = gcloudProperty(env, "core", "project");
  return found ? { project: found.value, from: found.from } : undefined;
}

/** The region Vertex commands use when none is given, as gcloud ai does: CLOUDSDK_AI_REGION, gcloud's `[ai] region`, else `fallback`. */
export function defaultRegion(env: Env, fallback: string): string {
  return env.CLOUDSDK_AI_REGION || gcloudProperty(env, "ai", "region")?.value || fallback;
}

/** Where Application Default Credentials would come from: a key or ADC file, or (with neither) the metadata server of a Google Cloud machine. */
export type CredentialSource = { kind: "file"; file: string; from: string } | { kind: "metadata"; from: string };

/**
 * Application Default Credentials' source, in google-auth-library's order:
 * GOOGLE_APPLICATION_CREDENTIALS, gcloud's application_default_credentials.json,
 * then the metadata server (only on Google Cloud; `metadata` names it without
 * asking it, which the library does when a token is first needed).
 * A GOOGLE_APPLICATION_CREDENTIALS naming a missing file is an error, as in the library.
 */
export function credentialSource(env: Env): CredentialSource {
  if (env.GOOGLE_APPLICATION_CREDENTIALS) {
    const file = env.GOOGLE_APPLICATION_CREDENTIALS;
    if (!fs.existsSync(file))
      throw failure(
        `GOOGLE_APPLICATION_CREDENTIALS names ${file}, which does not exist.`,
        "Point it at a service account's key file, or unset it and run `gcloud auth application-default login`.",
      );
    return { kind: "file", file, from: `GOOGLE_APPLICATION_CREDENTIALS (${file})` };
  }
  const adc = path.join(gcloudConfigDir(env), "application_default_credentials.json");
  if (fs.existsSync(adc)) return { kind: "file", file: adc, from: `gcloud's application default credentials (${adc})` };
  return { kind: "metadata", from: "the metadata server (on a Google Cloud machine)" };
}

/** The project a credentials file names: a service account key's project_id, else an ADC file's quota_project_id. Never anything else of the file. */
export function credentialsProject(file: string): string | undefined {
  const text = readText(file);
  if (text === undefined) return undefined;
  try {
    const parsed = JSON.parse(text) as { project_id?: unknown; quota_project_id?: unknown };
    const project =
      typeof parsed.project_id === "string" ? parsed.project_id : typeof parsed.quota_project_id === "string" ? parsed.quota_project_id : undefined;
    return project || undefined;
  } catch {
    return undefined;
  }
}

/**
 * The job's project: config.project, GOOGLE_CLOUD_PROJECT, CLOUDSDK_CORE_PROJECT
 * (gcloud's own override), gcloud's active configuration, then the project
 * the credentials file names; undefined when none says.
 */
export function resolveProject(configured: string | undefined, env: Env): ProjectChoice | undefined {
  if (configured) return { project: configured, from: "config.project" };
  if (env.GOOGLE_CLOUD_PROJECT) return { project: env.GOOGLE_CLOUD_PROJECT, from: "GOOGLE_CLOUD_PROJECT" };
  if (env.CLOUDSDK_CORE_PROJECT) return { project: env.CLOUDSDK_CORE_PROJECT, from: "CLOUDSDK_CORE_PROJECT" };
  const gcloud = gcloudProject(env);
  if (gcloud) return gcloud;
  const adcFile = env.GOOGLE_APPLICATION_CREDENTIALS || path.join(gcloudConfigDir(env), "application_default_credentials.json");
  const fromFile = credentialsProject(adcFile);
  return fromFile ? { project: fromFile, from: `the credentials file ${adcFile}` } : undefined;
}

/** The error for a job with no project, naming every place one is looked for. */
export function noProjectError(): UserError {
  return failure(
    "No Google Cloud project is set for the Vertex AI job.",
    "Pass --config.project=PROJECT_ID, set GOOGLE_CLOUD_PROJECT, or run `gcloud config set project PROJECT_ID` (and `gcloud auth application-default login` for credentials).",
  );
}

/** The error for no credentials at all, naming the command that makes them. */
export function noCredentialsError(cause?: string): UserError {
  return failure(
    `No Google Cloud credentials were found${cause ? ` (${cause})` : ""}.`,
    "Run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS to a service account's key file.",
  );
}

/** The APIs the backend calls, each with its override variable (gcloud's own api_endpoint_overrides names) and Google's endpoint. */
export const ENDPOINT_VARIABLES = {
  aiplatform: "CLOUDSDK_API_ENDPOINT_OVERRIDES_AIPLATFORM",
  logging: "CLOUDSDK_API_ENDPOINT_OVERRIDES_LOGGING",
  artifactregistry: "CLOUDSDK_API_ENDPOINT_OVERRIDES_ARTIFACTREGISTRY",
} as const;

/** The root URL of `api` (no trailing slash): its override when set, else Google's endpoint (Vertex's is regional). */
export function endpointOf(api: keyof typeof ENDPOINT_VARIABLES, region: string, env: Env): string {
  const override = env[ENDPOINT_VARIABLES[api]];
  if (override) return override.replace(/\/+$/, "");
  if (api === "aiplatform") return `https://${region}-aiplatform.googleapis.com`;
  return `https://${api}.googleapis.com`;
}

/** The Cloud Storage endpoint: STORAGE_EMULATOR_HOST (as Google's storage library reads it) or Google's. */
export function storageEndpoint(env: Env): string {
  const host = env.STORAGE_EMULATOR_HOST;
  if (!host) return "https://storage.googleapis.com";
  return (/^https?:\/\//.test(host) ? host : `http://${host}`).replace(/\/+$/, "");
}
