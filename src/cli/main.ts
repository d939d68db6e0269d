#!/usr/bin/env node
/**
 * The `alekseylearn` command. Thin: parse, build a Context from the process,
 * call the library, render. Only the command being run is loaded, so
 * `--help` starts fast.
 */
import { parseArgs, formatHelp } from "./args.js";
import { commands, type Output } from "./commands.js";
import { defaultDirs, parseInsecureRegistries, type Context, type Reporter } from "../context.js";
import { UserError, EXIT_INTERRUPTED, EXIT_USAGE } from "../errors.js";
import { nearest } from "../spec/nearest.js";

import { VERSION } from "../version.js";

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

/**
 * Progress on stderr. On a terminal, a step that ends in "…" keeps a spinner
 * with its elapsed seconds until the next line, so a long pip install is
 * visibly alive; elsewhere every message is one plain line.
 */
function cliReporter(output: Output): Reporter & { clear(): void } {
  const dim = (text: string): string => (output.tty ? `\x1b[2m${text}\x1b[0m` : text);
  let spinner: NodeJS.Timeout | undefined;
  let lastDraw = 0;
  let step = "";
  let stepStarted = 0;
  // A finished step stays on screen as a plain line with the time it took.
  const clear = (): void => {
    if (!spinner) return;
    clearInterval(spinner);
    spinner = undefined;
    output.err(`\r\x1b[K${dim(`› ${step} ${((Date.now() - stepStarted) / 1000).toFixed(1)}s`)}\n`);
  };
  const line = (text: string): void => {
    clear();
    output.err(text + "\n");
  };
  return {
    info: (message) => {
      if (!output.tty || !message.endsWith("…")) return line(dim(`› ${message}`));
      clear();
      step = message;
      stepStarted = Date.now();
      let frame = 0;
      const draw = (): void => output.err(`\r\x1b[K${"⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"[frame++ % 10]} ${message} ${dim(`${Math.floor((Date.now() - stepStarted) / 1000)}s`)}`);
      draw();
      spinner = setInterval(draw, 100);
      spinner.unref();
    },
    warn: (message) => line(`${output.tty ? "\x1b[33mwarning\x1b[0m" : "warning"}: ${message}`),
    jobLine: (text) => line(text),
    progress: (label, done, total, unit) => {
      // Redraw at most ten times a second, and always the last time.
      if (!output.tty || (done < total && Date.now() - lastDraw < 100)) return;
      lastDraw = Date.now();
      clear();
      const width = 30;
      const filled = total ? Math.round((done / total) * width) : width;
      const amount = unit === "bytes" ? `${formatBytes(done)} / ${formatBytes(total)}` : `${done}/${total}`;
      output.err(`\r\x1b[K${label} [${"#".repeat(filled)}${".".repeat(width - filled)}] ${amount}${done >= total ? "\n" : ""}`);
    },
    clear,
  };
}

function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
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
  const reporter = cliReporter(output);
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
      const guess = nearest(
        name,
        commands.map((c) => c.name),
      );
      throw new UserError(
        `Unknown command ${name}.`,
        guess ? `Did you mean \`alekseylearn ${guess}\`? \`alekseylearn --help\` lists the commands.` : "`alekseylearn --help` lists the commands.",
      );
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
      insecureRegistries: parseInsecureRegistries(env.ALEKSEYLEARN_INSECURE_REGISTRIES),
      reporter,
      ...(signal ? { signal } : {}),
    };
    const { run } = await command.load();
    return await run(args, ctx, output);
  } catch (err) {
    reporter.clear();
    return printError(err, output, debug);
  } finally {
    reporter.clear();
  }
}

// The pinned AWS SDK runs on Node 20; its notice about future releases needing Node 22 is not the user's concern.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

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
// Google's auth library warns on the process when it finds no metadata server (it asks one when no credentials file exists); the
// command's own error already says what to do, so that warning is dropped and every other warning printed as Node prints it.
process.removeAllListeners("warning");
process.on("warning", (warning) => {
  if (warning.name !== "MetadataLookupWarning") process.stderr.write(`(node:${process.pid}) ${warning.name}: ${warning.message}\n`);
});
const code = await main(process.argv.slice(2), process.env, output, controller.signal);
// Let stdout drain before exiting, so piped JSON is never cut short.
process.stdout.write("", () => process.exit(code ?? EXIT_USAGE));
