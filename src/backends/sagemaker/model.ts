/**
 * botocore's service-model shapes, and a checker of a request against them:
 * required and unknown members, types, enums, unions, list/map/string lengths,
 * numeric ranges and string patterns (SageMaker's whole-value Java matching,
 * the Java-only pieces of a few patterns rewritten for JavaScript). `fit`
 * checks its CreateTrainingJob request with it before anything is built, and
 * the test SageMaker checks every request it receives with it.
 */

/** A reference to a shape, as botocore writes it. */
export interface Ref {
  shape: string;
}

/** One shape of botocore's model (the parts that constrain a value). */
export interface Shape {
  type: string;
  members?: Record<string, Ref>;
  required?: string[];
  union?: boolean;
  member?: Ref;
  key?: Ref;
  value?: Ref;
  enum?: string[];
  min?: number;
  max?: number;
  pattern?: string;
}

/** botocore's service model: shapes and operations. */
export interface Model {
  metadata: { apiVersion: string; targetPrefix: string; jsonVersion: string };
  shapes: Record<string, Shape>;
  operations: Record<string, { input?: Ref; output?: Ref }>;
}

/** Java's POSIX classes (`\p{Alnum}`), which JavaScript does not know, as class contents. */
const POSIX_CLASSES: Record<string, string> = {
  Alnum: "A-Za-z0-9",
  Alpha: "A-Za-z",
  Digit: "0-9",
  Lower: "a-z",
  Upper: "A-Z",
  XDigit: "0-9A-Fa-f",
  Space: " \\t\\n\\x0B\\f\\r",
  Punct: "!-\\/:-@\\[-`{-~",
};
/** Characters that keep their backslash in a JavaScript `u` pattern. */
const KEEPS_ESCAPE = /[A-Za-z0-9^$\\.*+?()[\]{}|/]/;

/**
 * A botocore pattern (SageMaker's server-side Java regular expression) in
 * JavaScript's `u` dialect: `\p{Alnum}`-style POSIX classes spelled out,
 * needless escapes (`\_`, `\ `, `\-` outside a class) dropped, and a
 * quantifier on `$` (`...${1,128}`, which Java accepts and ignores) removed.
 */
export function javaPatternToJs(pattern: string): string {
  let out = "";
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === "\\") {
      const next = pattern[i + 1] ?? "";
      const posix = /^p\{(\w+)\}/.exec(pattern.slice(i + 1));
      const set = posix ? POSIX_CLASSES[posix[1]!] : undefined;
      if (posix && set) {
        out += inClass ? set : `[${set}]`;
        i += posix[0].length;
      } else {
        out += KEEPS_ESCAPE.test(next) || (inClass && next === "-") ? c + next : next;
        i++;
      }
      continue;
    }
    if (c === "[" && !inClass) inClass = true;
    else if (c === "]" && inClass) inClass = false;
    out += c;
    if (c === "$" && !inClass) {
      const quantifier = /^\{\d+(,\d*)?\}/.exec(pattern.slice(i + 1));
      if (quantifier) i += quantifier[0].length;
    }
  }
  return out;
}

const compiled = new Map<string, RegExp | null>();

/** A botocore pattern as a whole-value RegExp (SageMaker matches the whole value, as Java's `matches` does), or null when JavaScript cannot read it even rewritten. */
export function patternOf(pattern: string): RegExp | null {
  if (!compiled.has(pattern)) {
    let regexp: RegExp | null;
    try {
      regexp = new RegExp(`^(?:${javaPatternToJs(pattern)})$`, "u");
    } catch {
      regexp = null;
    }
    compiled.set(pattern, regexp);
  }
  return compiled.get(pattern)!;
}

type Json = unknown;

function shown(value: Json): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

function isObject(value: Json): value is Record<string, Json> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Every way `value` breaks shape `name` of `model`, each as "PATH: why" (PATH like `ResourceConfig.InstanceType`, `InputDataConfig[0].ChannelName`). */
export function validate(model: Pick<Model, "shapes">, name: string, value: Json, where = ""): string[] {
  const problems: string[] = [];
  const walk = (shapeName: string, item: Json, at: string): void => {
    const shape = model.shapes[shapeName];
    const label = at || "(body)";
    const child = (key: string): string => (at ? `${at}.${key}` : key);
    if (!shape) return void problems.push(`${label}: shape ${shapeName} is not in the model`);
    const range = (size: number, unit: string): void => {
      if (shape.min !== undefined && size < shape.min) problems.push(`${label}: at least ${shape.min}${unit}`);
      if (shape.max !== undefined && size > shape.max) problems.push(`${label}: at most ${shape.max}${unit}`);
    };
    switch (shape.type) {
      case "structure": {
        if (!isObject(item)) return void problems.push(`${label}: expected an object, got ${shown(item)}`);
        for (const required of shape.required ?? []) if (!(required in item)) problems.push(`${child(required)}: required`);
        for (const [key, member] of Object.entries(item)) {
          const ref = shape.members?.[key];
          if (!ref) problems.push(`${child(key)}: not a member of ${shapeName}`);
          else walk(ref.shape, member, child(key));
        }
        if (shape.union && Object.keys(item).length !== 1)
          problems.push(`${label}: exactly one member of ${shapeName} must be set, not ${Object.keys(item).length}`);
        return;
      }
      case "list":
        if (!Array.isArray(item)) return void problems.push(`${label}: expected a list, got ${shown(item)}`);
        range(item.length, " items");
        item.forEach((element, index) => walk(shape.member!.shape, element, `${label}[${index}]`));
        return;
      case "map":
        if (!isObject(item)) return void problems.push(`${label}: expected a map, got ${shown(item)}`);
        range(Object.keys(item).length, " entries");
        for (const [key, element] of Object.entries(item)) {
          walk(shape.key!.shape, key, `${label}{key ${shown(key)}}`);
          walk(shape.value!.shape, element, `${label}.${key}`);
        }
        return;
      case "string": {
        if (typeof item !== "string") return void problems.push(`${label}: expected text, got ${shown(item)}`);
        if (shape.enum) {
          if (!shape.enum.includes(item)) problems.push(`${label}: ${shown(item)} is not one of [${shape.enum.join(", ")}]`);
          return;
        }
        range(item.length, " characters");
        const regexp = shape.pattern === undefined ? null : patternOf(shape.pattern);
        if (regexp && !regexp.test(item)) problems.push(`${label}: ${shown(item)} does not match ${shape.pattern}`);
        return;
      }
      case "integer":
      case "long":
        if (typeof item !== "number" || !Number.isInteger(item)) return void problems.push(`${label}: expected a whole number, got ${shown(item)}`);
        if (shape.min !== undefined && item < shape.min) problems.push(`${label}: ${item} is less than ${shape.min}`);
        if (shape.max !== undefined && item > shape.max) problems.push(`${label}: ${item} is more than ${shape.max}`);
        return;
      case "float":
      case "double":
        if (typeof item !== "number" || !Number.isFinite(item)) return void problems.push(`${label}: expected a number, got ${shown(item)}`);
        if (shape.min !== undefined && item < shape.min) problems.push(`${label}: ${item} is less than ${shape.min}`);
        if (shape.max !== undefined && item > shape.max) problems.push(`${label}: ${item} is more than ${shape.max}`);
        return;
      case "boolean":
        if (typeof item !== "boolean") problems.push(`${label}: expected true or false, got ${shown(item)}`);
        return;
      case "timestamp":
        // The JSON protocol sends a timestamp as epoch seconds, a number.
        if (typeof item !== "number" || !Number.isFinite(item)) problems.push(`${label}: expected a timestamp (epoch seconds), got ${shown(item)}`);
        return;
      case "blob":
        if (typeof item !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(item)) problems.push(`${label}: expected base64 text, got ${shown(item)}`);
        return;
      default:
        return void problems.push(`${label}: shape ${shapeName} has type ${shape.type}, which the fake cannot check`);
    }
  };
  walk(name, value, where);
  return problems;
}
