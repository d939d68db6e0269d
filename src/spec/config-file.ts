/**
 * The project config file beside the artifact: `alekseylearn.yml` (or .yaml),
 * or `[tool.alekseylearn]` in `pyproject.toml`. It supplies defaults that
 * command-line flags override.
 */
import fs from "node:fs";
import path from "node:path";
import { parse as parseYaml } from "yaml";
import { parse as parseToml } from "smol-toml";
import { UserError } from "../errors.js";
import { nearest } from "./nearest.js";

/** What a project config file may say; paths in it are resolved against the file's folder. */
export interface ProjectConfig {
  /** The file it came from. */
  file: string;
  backend?: string;
  envfile?: string;
  entry?: string;
  config: Record<string, unknown>;
  hyperparameters: Record<string, unknown>;
  inputs: Record<string, string>;
}

const TOP_KEYS = ["backend", "envfile", "entry", "config", "hyperparameters", "inputs"];
/** Settings whose values are local paths when they are not URLs. */
const PATH_SETTINGS = ["output_path"];

function isUrl(value: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(value);
}

function mapping(file: string, key: string, value: unknown): Record<string, unknown> {
  if (value === undefined || value === null) return {};
  if (typeof value !== "object" || Array.isArray(value)) throw new UserError(`${file}: \`${key}\` must be a mapping of names to values.`);
  return value as Record<string, unknown>;
}

function text(file: string, key: string, value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") throw new UserError(`${file}: \`${key}\` must be text, got ${JSON.stringify(value)}.`);
  return value;
}

/** Check and normalise a parsed config document (the YAML file, or the pyproject section). */
export function interpretProjectConfig(file: string, doc: unknown): ProjectConfig {
  const top = mapping(file, "the file", doc);
  const problems = Object.keys(top)
    .filter((key) => !TOP_KEYS.includes(key))
    .map((key) => {
      const guess = nearest(key, TOP_KEYS);
      return `unknown key \`${key}\`` + (guess ? `; did you mean \`${guess}\`?` : "");
    });
  if (problems.length) throw new UserError(`${file}: ${problems.join("; ")}.`, `Valid keys: ${TOP_KEYS.join(", ")}.`);

  const dir = path.dirname(file);
  const local = (value: string): string => (isUrl(value) ? value : path.resolve(dir, value));
  const config = { ...mapping(file, "config", top.config) };
  for (const key of PATH_SETTINGS) if (typeof config[key] === "string") config[key] = local(config[key] as string);
  const inputs: Record<string, string> = {};
  for (const [channel, location] of Object.entries(mapping(file, "inputs", top.inputs))) {
    inputs[channel] = local(text(file, `inputs.${channel}`, location) ?? "");
  }
  const envfile = text(file, "envfile", top.envfile);
  return {
    file,
    backend: text(file, "backend", top.backend),
    envfile: envfile === undefined ? undefined : local(envfile),
    entry: text(file, "entry", top.entry),
    config,
    hyperparameters: mapping(file, "hyperparameters", top.hyperparameters),
    inputs,
  };
}

/** Load the project config from `dir`, if it has one. */
export function loadProjectConfig(dir: string): ProjectConfig | undefined {
  for (const name of ["alekseylearn.yml", "alekseylearn.yaml"]) {
    const file = path.join(dir, name);
    if (!fs.existsSync(file)) continue;
    let doc: unknown;
    try {
      doc = parseYaml(fs.readFileSync(file, "utf8"));
    } catch (err) {
      throw new UserError(`${file} is not valid YAML: ${(err as Error).message.split("\n")[0]!.replace(/:\s*$/, "")}`);
    }
    return interpretProjectConfig(file, doc ?? {});
  }
  const pyproject = path.join(dir, "pyproject.toml");
  if (fs.existsSync(pyproject)) {
    let doc: { tool?: { alekseylearn?: unknown } };
    try {
      doc = parseToml(fs.readFileSync(pyproject, "utf8")) as typeof doc;
    } catch (err) {
      throw new UserError(`${pyproject} is not valid TOML: ${(err as Error).message.split("\n")[0]}`);
    }
    const section = doc.tool?.alekseylearn;
    if (section !== undefined) return interpretProjectConfig(pyproject, section);
  }
  return undefined;
}
