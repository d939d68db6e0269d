/**
 * Command-line parsing, declared per command: flags with values, boolean
 * flags, and dotted families (`--config.KEY=VALUE`). The same declarations
 * produce `--help`. Unknown flags are usage errors that name the nearest one.
 */
import { UserError } from "../errors.js";
import { nearest } from "../spec/nearest.js";

/** One flag. `value` names its argument in help; without it the flag is a switch. */
export interface OptionSpec {
  name: string;
  aliases?: readonly string[];
  value?: string;
  doc: string;
}

/** A family of flags `--PREFIX.KEY=VALUE`, collected into a record. */
export interface FamilySpec {
  prefix: string;
  /** How it reads in help, e.g. `--config.KEY=VALUE`. */
  usage: string;
  doc: string;
}

/** What a command accepts. */
export interface CommandSpec {
  name: string;
  summary: string;
  usage: string;
  /** Paragraphs shown after the usage line. */
  description?: readonly string[];
  positionals: ReadonlyArray<{ name: string; required: boolean }>;
  options: readonly OptionSpec[];
  families?: readonly FamilySpec[];
  examples?: readonly string[];
}

/** A parsed command line. */
export interface ParsedArgs {
  positionals: string[];
  /** By option name: its text, or true for a switch given. */
  options: Record<string, string | true>;
  /** By family prefix: KEY → text. */
  families: Record<string, Record<string, string>>;
}

/** Flags every command takes. */
export const GLOBAL_OPTIONS: readonly OptionSpec[] = [
  { name: "json", doc: "Print the result as JSON on stdout (progress still goes to stderr)." },
  { name: "debug", doc: "Show stack traces and internal detail on errors." },
  { name: "help", aliases: ["h"], doc: "Show this help." },
];

function usageError(message: string, command: CommandSpec): UserError {
  return new UserError(message, `See \`alekseylearn ${command.name} --help\`.`);
}

/** Parse `argv` (after the command name) against `command`. */
export function parseArgs(argv: readonly string[], command: CommandSpec): ParsedArgs {
  const options = [...command.options, ...GLOBAL_OPTIONS];
  const byName = new Map<string, OptionSpec>();
  for (const option of options) for (const name of [option.name, ...(option.aliases ?? [])]) byName.set(name, option);
  const families = command.families ?? [];
  const parsed: ParsedArgs = { positionals: [], options: {}, families: Object.fromEntries(families.map((family) => [family.prefix, {}])) };

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") {
      parsed.positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      parsed.positionals.push(arg);
      continue;
    }
    const body = arg.replace(/^--?/, "");
    const eq = body.indexOf("=");
    const name = eq === -1 ? body : body.slice(0, eq);
    const inline = eq === -1 ? undefined : body.slice(eq + 1);
    const takeValue = (label: string): string => {
      if (inline !== undefined) return inline;
      const next = argv[i + 1];
      if (next === undefined || (next.startsWith("--") && next.length > 2)) throw usageError(`${label} needs a value.`, command);
      i++;
      return next;
    };

    const dot = name.indexOf(".");
    const family = dot > 0 ? families.find((f) => f.prefix === name.slice(0, dot)) : undefined;
    if (family) {
      const key = name.slice(dot + 1);
      if (!key) throw usageError(`--${family.prefix}. needs a key: ${family.usage}.`, command);
      parsed.families[family.prefix]![key] = takeValue(`--${name}`);
      continue;
    }
    const option = byName.get(name);
    if (!option) {
      const guess = nearest(name, [...byName.keys(), ...families.map((f) => `${f.prefix}.KEY`)]);
      throw usageError(`Unknown option ${arg.split("=")[0]} for \`${command.name}\`.` + (guess ? ` Did you mean --${guess}?` : ""), command);
    }
    if (option.value) parsed.options[option.name] = takeValue(`--${option.name}`);
    else if (inline !== undefined) throw usageError(`--${option.name} takes no value.`, command);
    else parsed.options[option.name] = true;
  }

  if (parsed.options.help) return parsed;
  const required = command.positionals.filter((p) => p.required).length;
  if (parsed.positionals.length < required) {
    throw usageError(`Missing ${command.positionals[parsed.positionals.length]!.name}. Usage: ${command.usage}`, command);
  }
  if (parsed.positionals.length > command.positionals.length) {
    throw usageError(`Unexpected argument ${parsed.positionals[command.positionals.length]}. Usage: ${command.usage}`, command);
  }
  return parsed;
}

function wrap(text: string, indent: number, width = 80): string {
  const words = text.split(/\s+/);
  const lines: string[] = [];
  let line = "";
  for (const word of words) {
    if (line && line.length + word.length + 1 > width - indent) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines.join("\n" + " ".repeat(indent));
}

/** Help text for `command`; `extra` sections (such as backend settings) go before the examples. */
export function formatHelp(command: CommandSpec, extra: readonly string[] = []): string {
  const rows: Array<[string, string]> = [
    ...(command.families ?? []).map((family): [string, string] => [family.usage, family.doc]),
    ...[...command.options, ...GLOBAL_OPTIONS].map((option): [string, string] => {
      const names = [option.name, ...(option.aliases ?? [])].map((n) => (n.length === 1 ? `-${n}` : `--${n}`)).join(", ");
      return [option.value ? `${names} ${option.value}` : names, option.doc];
    }),
  ];
  const width = Math.min(30, Math.max(...rows.map(([left]) => left.length)) + 2);
  const lines = [`${command.summary}`, "", `Usage: ${command.usage}`, ""];
  for (const paragraph of command.description ?? []) lines.push(wrap(paragraph, 0), "");
  lines.push("Options:");
  for (const [left, doc] of rows) {
    lines.push(left.length + 2 > width ? `  ${left}\n  ${" ".repeat(width)}${wrap(doc, width + 2)}` : `  ${left.padEnd(width)}${wrap(doc, width + 2)}`);
  }
  for (const section of extra) lines.push("", section);
  if (command.examples?.length) lines.push("", "Examples:", ...command.examples.map((example) => `  ${example}`));
  return lines.join("\n") + "\n";
}
