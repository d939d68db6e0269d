#!/usr/bin/env node
/**
 * The `alekseylearn` command. Thin: parse, build a Context from the process,
 * call the library, render. Only the command being run is loaded, so
 * `--help` starts fast.
 */
import { parseArgs, formatHelp } from "./args.js";
import { commands, type Output } from "./commands.js";
import { defaultDirs, type Context, type Reporter } from "../context.js";
import { UserError, EXIT_INTERRUPTED, EXIT_USAGE } from "../errors.js";
import { nearest } from "../spec/nearest.js";

const VERSION = "0.1.0";

function overview(): string {
  const width = Math.max(...commands.map((c) => c.name.length)) + 2;
  return [
    "alekseylearn: run a training job (a Python script or a Jupyter notebook) on this machine or on compute you",
    "do not own, follow it live, and fetch the model it leaves in /opt/ml/model.",
    "",
    "Usage: alekseylearn COMMAND [options]",
    "",
    "Commands:",
    ...commands.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    "",
    "Start here:",
    "  alekseylearn fit examples/iris/train.py     run a job here; the model lands in ./alekseylearn-output",
    "  alekseylearn fetch JOB --to model/          unpack its model",
    "",
    "`alekseylearn COMMAND --help` tells more. --json prints results for scripts; --debug shows stack traces.",
    "",
  ].join("\n");
}

function cliReporter(output: Output, quiet: boolean): Reporter {
  const dim = (text: string): string => (output.tty ? `\x1b[2m${text}\x1b[0m` : text);
  return {
    info: (message) => !quiet && output.err(dim(`› ${message}`) + "\n"),
    warn: (message) => output.err(`${output.tty ? "\x1b[33mwarning\x1b[0m" : "warning"}: ${message}\n`),
    jobLine: (line) => output.err(line + "\n"),
  };
}

function printError(err: unknown, output: Output, debug: boolean): number {
  if (err instanceof UserError) {
    output.err(`${output.tty ? "\x1b[31merror\x1b[0m" : "error"}: ${err.message}\n`);
    for (const line of err.details) output.err(`  ${line}\n`);
    if (err.hint) output.err(`hint: ${err.hint}\n`);
    if (debug) output.err(`${err.stack}\n`);
    return err.exitCode;
  }
  output.err(`alekseylearn hit a bug; please report it with this output:\n${err instanceof Error ? err.stack : String(err)}\n`);
  return 70;
}

/** Run the CLI with `argv` (without node and the script); returns the exit code. */
async function main(argv: readonly string[], env: NodeJS.ProcessEnv, output: Output, signal?: AbortSignal): Promise<number> {
  const debug = argv.includes("--debug");
  try {
    const [name, ...rest] = argv;
    if (name === undefined || name === "--help" || name === "-h" || name === "help") {
      const topic = commands.find((c) => c.name === rest[0]);
      output.out(topic ? formatHelp(topic, (await topic.helpSections?.()) ?? []) : overview());
      return 0;
    }
    if (name === "--version" || name === "-V") {
      output.out(`${VERSION}\n`);
      return 0;
    }
    const command = commands.find((c) => c.name === name);
    if (!command) {
      const guess = nearest(name, commands.map((c) => c.name));
      throw new UserError(`Unknown command ${name}.`, guess ? `Did you mean \`alekseylearn ${guess}\`? \`alekseylearn --help\` lists the commands.` : "`alekseylearn --help` lists the commands.");
    }
    const args = parseArgs(rest, command);
    if (args.options.help) {
      output.out(formatHelp(command, (await command.helpSections?.()) ?? []));
      return 0;
    }
    const ctx: Context = {
      cwd: process.cwd(),
      env,
      ...defaultDirs(env),
      reporter: cliReporter(output, false),
      ...(signal ? { signal } : {}),
    };
    const { run } = await command.load();
    return await run(args, ctx, output);
  } catch (err) {
    return printError(err, output, debug);
  }
}

const output: Output = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  tty: Boolean(process.stderr.isTTY),
};
const controller = new AbortController();
let interrupts = 0;
const onSignal = (): void => {
  interrupts++;
  if (interrupts > 1) process.exit(EXIT_INTERRUPTED);
  controller.abort();
};
process.on("SIGINT", onSignal);
process.on("SIGTERM", onSignal);
const code = await main(process.argv.slice(2), process.env, output, controller.signal);
// Let stdout drain before exiting, so piped JSON is never cut short.
process.stdout.write("", () => process.exit(code ?? EXIT_USAGE));
