/**
 * Typed values from command-line text. `--config.KEY=VALUE` and
 * `--hyperparameter.KEY=VALUE` arrive as strings; these turn them into the
 * numbers, booleans and lists a user meant.
 */

/** A value a config key or hyperparameter can hold. */
export type ConfigValue = string | number | boolean | ConfigValue[];

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** Infer a scalar's type: `2` is a number, `true` a boolean, anything else stays text. */
export function parseScalar(raw: string): string | number | boolean {
  const text = raw.trim();
  if (text === "true") return true;
  if (text === "false") return false;
  if (NUMBER.test(text)) return Number(text);
  return text;
}

/** Split list text: `[a,b]` or `a,b` are lists (an empty `[]` too); anything else is not. */
export function splitList(raw: string): string[] | undefined {
  const text = raw.trim();
  if (text.startsWith("[") && text.endsWith("]")) {
    const inner = text.slice(1, -1).trim();
    return inner === "" ? [] : inner.split(",").map((item) => item.trim());
  }
  if (text.includes(",")) return text.split(",").map((item) => item.trim());
  return undefined;
}

/** Infer the type of a value with no schema behind it (hyperparameters): lists, numbers, booleans, text. */
export function parseValue(raw: string): ConfigValue {
  const items = splitList(raw);
  return items ? items.map(parseScalar) : parseScalar(raw);
}

/** Parse a duration like `90`, `90s`, `30m`, `2h`, `1d` or `1h30m` into whole seconds. */
export function parseDuration(raw: string): number | undefined {
  const text = raw.trim().toLowerCase();
  if (/^\d+$/.test(text)) return Number(text);
  const match = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(text);
  if (!match || text === "") return undefined;
  const [, d = "0", h = "0", m = "0", s = "0"] = match;
  return Number(d) * 86400 + Number(h) * 3600 + Number(m) * 60 + Number(s);
}
