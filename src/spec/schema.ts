/**
 * A small schema for backend settings (`--config.KEY=VALUE`). One table per
 * backend says which keys exist, their types, defaults and meaning; the same
 * table validates input, names the nearest key on a typo, and documents the
 * keys in `--help`.
 */
import { nearest } from "./nearest.js";
import { parseDuration, parseScalar, splitList, type ConfigValue } from "./values.js";

/** The type of one setting. Durations are stored as whole seconds. */
export type FieldType =
  | { kind: "string" }
  | { kind: "integer"; min?: number; max?: number }
  | { kind: "number"; min?: number }
  | { kind: "boolean" }
  | { kind: "enum"; values: readonly string[] }
  | { kind: "list" }
  | { kind: "duration" };

/** One setting: its type, default (undefined: unset unless given), one-line meaning, and older names. */
export interface Field {
  type: FieldType;
  default?: ConfigValue;
  doc: string;
  aliases?: readonly string[];
}

/** A backend's settings, by key. */
export type Schema = Readonly<Record<string, Field>>;

/** Settings after validation: every key of the schema that has a value. */
export type Settings = Record<string, ConfigValue>;

/** The value a field of type `T` holds once validated (durations as whole seconds, lists as text items). */
export type ValueOf<T extends FieldType> = T extends { kind: "string" }
  ? string
  : T extends { kind: "integer" | "number" | "duration" }
    ? number
    : T extends { kind: "boolean" }
      ? boolean
      : T extends { kind: "enum"; values: readonly (infer V)[] }
        ? V
        : T extends { kind: "list" }
          ? string[]
          : never;

/** A backend's validated settings, typed from its schema: a key with a default is always there, the others may be missing. */
export type SettingsOf<S extends Schema> = string extends keyof S
  ? Settings // a schema known only as a Schema: any key
  : {
      -readonly [K in keyof S as S[K] extends { default: ConfigValue } ? K : never]: ValueOf<S[K]["type"]>;
    } & {
      -readonly [K in keyof S as S[K] extends { default: ConfigValue } ? never : K]?: ValueOf<S[K]["type"]>;
    };

/** Text for a type, as shown in help and errors. */
export function describeType(type: FieldType): string {
  switch (type.kind) {
    case "integer":
      return "a whole number" + (type.min !== undefined ? ` ≥ ${type.min}` : "");
    case "number":
      return "a number";
    case "boolean":
      return "true or false";
    case "enum":
      return "one of " + type.values.join(", ");
    case "list":
      return "a list (a,b or [a,b])";
    case "duration":
      return "a duration (90s, 30m, 2h, 1d)";
    case "string":
      return "text";
  }
}

function coerce(type: FieldType, value: unknown): ConfigValue | undefined {
  const scalar = typeof value === "string" ? parseScalar(value) : value;
  switch (type.kind) {
    case "string":
      return typeof value === "string" || typeof value === "number" ? String(value) : undefined;
    case "integer": {
      if (typeof scalar !== "number" || !Number.isInteger(scalar)) return undefined;
      if (type.min !== undefined && scalar < type.min) return undefined;
      if (type.max !== undefined && scalar > type.max) return undefined;
      return scalar;
    }
    case "number":
      return typeof scalar === "number" && (type.min === undefined || scalar >= type.min) ? scalar : undefined;
    case "boolean":
      return typeof scalar === "boolean" ? scalar : undefined;
    case "enum":
      return typeof value === "string" && type.values.includes(value) ? value : undefined;
    case "list":
      if (Array.isArray(value)) return value.map((item) => String(item));
      if (typeof value === "string") return splitList(value) ?? (value.trim() === "" ? [] : [value.trim()]);
      return undefined;
    case "duration":
      if (typeof value === "number" && Number.isInteger(value) && value >= 0) return value;
      return typeof value === "string" ? parseDuration(value) : undefined;
  }
}

/** Result of checking input against a schema: the settings, and every problem found (all at once). */
export interface Validated<S extends Schema = Schema> {
  settings: SettingsOf<S>;
  /** The same settings, as a plain record (for code that reads a key every schema may have). */
  values: Settings;
  problems: string[];
}

/**
 * Check `input` (raw strings from flags, or typed values from a config file)
 * against `schema`, apply defaults and aliases, and list every problem.
 * `owner` names the schema in messages ("the local backend").
 */
export function validateSettings<S extends Schema>(schema: S, input: Readonly<Record<string, unknown>>, owner: string): Validated<S> {
  const settings: Settings = {};
  const problems: string[] = [];
  const byAlias = new Map<string, string>();
  for (const [key, field] of Object.entries(schema)) for (const alias of field.aliases ?? []) byAlias.set(alias, key);

  for (const [given, value] of Object.entries(input)) {
    const key = schema[given] ? given : byAlias.get(given);
    if (!key) {
      const guess = nearest(given, [...Object.keys(schema), ...byAlias.keys()]);
      problems.push(`config.${given} is not a setting of ${owner}` + (guess ? `; did you mean config.${byAlias.get(guess) ?? guess}?` : ""));
      continue;
    }
    const field = schema[key]!;
    const typed = coerce(field.type, value);
    if (typed === undefined) {
      problems.push(`config.${given} must be ${describeType(field.type)}, got ${JSON.stringify(value)}`);
      continue;
    }
    settings[key] = typed;
  }
  for (const [key, field] of Object.entries(schema)) {
    if (!(key in settings) && field.default !== undefined) settings[key] = field.default;
  }
  // Every key was coerced to its field's type above, and every default filled in: this is what SettingsOf<S> describes.
  return { settings: settings as SettingsOf<S>, values: settings, problems };
}
