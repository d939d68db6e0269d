/**
 * The project config file beside the artifact: `alekseylearn.yml` (or .yaml),
 * or `[tool.alekseylearn]` in `pyproject.toml`. It supplies defaults that
 * command-line flags override.
 */
import fs from "node:fs";
import path from "node:path";
import type { Document } from "yaml";
import { createRequire } from "node:module";
import { UserError } from "../errors.js";
import { nearest } from "./nearest.js";
import { yaml } from "../yaml.js";

/** The TOML parser, loaded on first use as the YAML one is (../yaml.ts): a project without pyproject.toml (most local runs) skips its nine modules. */
let toml: typeof import("smol-toml") | undefined;
function parseToml(...args: Parameters<typeof import("smol-toml").parse>): ReturnType<typeof import("smol-toml").parse> {
  toml ??= createRequire(import.meta.url)("smol-toml") as typeof import("smol-toml");
  return toml.parse(...args);
}

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

/**
 * Hyperparameters as the text the file holds (`lr: 0.10` gives "0.10", as SageMaker keeps what it is
 * given), from a YAML document: a plain scalar's own text, a quoted one's string, a list or mapping's
 * source text. Keys whose value is not there (null) are left out, for the caller's check to name.
 */
function yamlHyperparameterText(doc: Document.Parsed, source: string): Record<string, string> {
  const { isMap, isScalar, Scalar } = yaml();
  const node = doc.get("hyperparameters", true);
  const texts: Record<string, string> = {};
  if (!isMap(node)) return texts;
  for (const pair of node.items) {
    const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
    const value = pair.value;
    if (isScalar(value)) {
      if (value.value === null) continue;
      texts[key] = value.type === Scalar.PLAIN && typeof value.source === "string" ? value.source : String(value.value);
    } else if (value && (value as { range?: number[] }).range) {
      const [start, end] = (value as { range: number[] }).range;
      texts[key] = source.slice(start, end).trim();
    }
  }
  return texts;
}

/**
 * The source text of `[tool.alekseylearn.hyperparameters]` values in a pyproject.toml (`lr = 0.10`
 * gives "0.10"), for numbers and booleans, whose parsed form would lose it; other values keep their parsed form.
 */
function tomlHyperparameterText(source: string, parsed: Record<string, unknown>): Record<string, string> {
  const texts: Record<string, string> = {};
  const lines = source.split(/\r?\n/);
  const start = lines.findIndex((line) => /^\s*\[\s*tool\.alekseylearn\.hyperparameters\s*\]\s*(#.*)?$/.test(line));
  const inline = /^\s*hyperparameters\s*=\s*\{(.*)\}\s*(#.*)?$/;
  const next = lines.findIndex((line, i) => i > start && /^\s*\[/.test(line));
  const section = start >= 0 ? lines.slice(start + 1, next === -1 ? undefined : next) : [];
  const inlineLine = lines.find((line) => inline.test(line));
  const entries = [...section, ...(inlineLine ? inline.exec(inlineLine)![1]!.split(",") : [])];
  for (const [key, value] of Object.entries(parsed)) {
    if (typeof value !== "number" && typeof value !== "bigint" && typeof value !== "boolean") continue;
    const escaped = key.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    const match = entries.map((entry) => new RegExp(`^\\s*("?)${escaped}\\1\\s*=\\s*([^#,}\\s]+)`).exec(entry)).find(Boolean);
    if (match) texts[key] = match[2]!;
  }
  return texts;
}

/** Check and normalise a parsed config document (the YAML file, or the pyproject section); `hyperparameterText` holds values' source text where the parsed form would lose it. */
export function interpretProjectConfig(file: string, doc: unknown, hyperparameterText: Record<string, string> = {}): ProjectConfig {
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
    hyperparameters: { ...mapping(file, "hyperparameters", top.hyperparameters), ...hyperparameterText },
    inputs,
  };
}

/** Load the project config from `dir`, if it has one. */
export function loadProjectConfig(dir: string): ProjectConfig | undefined {
  for (const name of ["alekseylearn.yml", "alekseylearn.yaml"]) {
    const file = path.join(dir, name);
    if (!fs.existsSync(file)) continue;
    const source = fs.readFileSync(file, "utf8");
    const document = yaml().parseDocument(source);
    const error = document.errors[0];
    if (error) throw new UserError(`${file} is not valid YAML: ${error.message.split("\n")[0]!.replace(/:\s*$/, "")}`);
    return interpretProjectConfig(file, document.toJS() ?? {}, yamlHyperparameterText(document, source));
  }
  const pyproject = path.join(dir, "pyproject.toml");
  if (fs.existsSync(pyproject)) {
    const source = fs.readFileSync(pyproject, "utf8");
    let doc: { tool?: { alekseylearn?: { hyperparameters?: unknown } } };
    try {
      // Integers too large for a JavaScript number stay exact (their text is what the job gets).
      doc = parseToml(source, { integersAsBigInt: "asNeeded" }) as typeof doc;
    } catch (err) {
      throw new UserError(`${pyproject} is not valid TOML: ${(err as Error).message.split("\n")[0]}`);
    }
    const section = doc.tool?.alekseylearn;
    const hyperparameters = section?.hyperparameters;
    const texts = hyperparameters && typeof hyperparameters === "object" ? tomlHyperparameterText(source, hyperparameters as Record<string, unknown>) : {};
    if (section !== undefined) return interpretProjectConfig(pyproject, section, texts);
  }
  return undefined;
}
