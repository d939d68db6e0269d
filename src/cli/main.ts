#!/usr/bin/env node
/**
 * The `alekseylearn` command. Thin: parse, build a Context from the process,
 * call the library, render. Only the command being run is loaded, so
 * `--help` starts fast.
 */
import { setFlagsFromString } from "node:v8";
import { parseArgs, formatHelp } from "./args.js";
import { commands, type Output } from "./commands.js";
import { defaultDirs, parseInsecureRegistries, type Context, type Reporter } from "../context.js";
import { UserError, EXIT_INTERRUPTED, EXIT_USAGE } from "../errors.js";
import { nearest } from "../spec/nearest.js";
import { namesSecret, redactText } from "../redact.js";
import { formatBytes } from "../text.js";

import { VERSION } from "../version.js";

// fetch's HTTP parser (undici's llhttp) is WebAssembly: V8 compiles it at once with Liftoff, then again with TurboFan
// on a background thread, and a process that exits waits for that second compile — 120–170 ms of every command that
// made a request (an unchanged `alekseylearn build`: ~400 → ~280 ms here; bench/PROFILE.md, "Unchanged resubmission").
// Liftoff's code is enough for parsing HTTP headers. Set before anything compiles WebAssembly.
setFlagsFromString("--liftoff-only");

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
function cliReporter(output: Output, spell: (text: string) => string = (text) => text): Reporter & { clear(): void } {
  const dim = (text: string): string => (output.tty ? `\x1b[2m${text}\x1b[0m` : text);
  let spinner: NodeJS.Timeout | undefined;
  let lastDraw = 0;
  // Off a terminal: the counted work last heard of, when its last plain line was printed, and whether its end was (it may be reported done more than once).
  let plain = { label: "", at: 0, finished: false };
  let step = "";
  let detail = "";
  let draw: (() => void) | undefined;
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
    info: (said) => {
      const message = spell(said);
      if (!output.tty || !message.endsWith("…")) return line(dim(`› ${message}`));
      clear();
      step = message;
      detail = "";
      stepStarted = Date.now();
      let frame = 0;
      draw = (): void => {
        const shown = detail ? `${message} ${dim(detail.slice(0, Math.max(0, (output.columns ?? 100) - message.length - 12)))}` : message;
        output.err(`\r\x1b[K${"⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"[frame++ % 10]} ${shown} ${dim(`${Math.floor((Date.now() - stepStarted) / 1000)}s`)}`);
      };
      draw();
      spinner = setInterval(draw, 100);
      spinner.unref();
    },
    // On a terminal the spinner's line shows what the step does now; elsewhere each is a plain line under its step.
    detail: (message) => {
      if (!spinner) return output.tty ? undefined : line(dim(`  ${message}`));
      detail = message;
      draw?.();
    },
    warn: (message) => line(`${output.tty ? "\x1b[33mwarning\x1b[0m" : "warning"}: ${spell(message)}`),
    jobLine: (text) => line(text),
    progress: (label, done, total, unit) => {
      const count = (n: number): string => (unit === "bytes" ? formatBytes(n) : String(n));
      if (!output.tty) {
        // Off a terminal, plain lines: one when the work is done (once), and one every 10 s before, so a long transfer in a log shows it moves.
        if (label !== plain.label) plain = { label, at: Date.now(), finished: false };
        if (done >= total) {
          if (!plain.finished) line(dim(`  ${label}: done, ${count(total)}${unit === "files" ? " files" : ""}`));
          plain.finished = true;
        } else if (Date.now() - plain.at >= 10_000) {
          plain = { label, at: Date.now(), finished: false };
          line(dim(`  ${label}: ${count(done)} of ${count(total)}`));
        }
        return;
      }
      // Redraw at most ten times a second, and always the last time.
      if (done < total && Date.now() - lastDraw < 100) return;
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

/**
 * How the user started this command, for the commands hints suggest: `npx alekseylearn` under npx (npm 7+ runs npx
 * as `npm exec`, and says so in npm_command; older npx sets npm_lifecycle_event=npx), else `alekseylearn`.
 */
export function invokedAs(env: NodeJS.ProcessEnv): string {
  return env.npm_command === "exec" || env.npm_lifecycle_event === "npx" ? "npx alekseylearn" : "alekseylearn";
}

/** `text` with every suggested `alekseylearn COMMAND` spelled as the user runs it (`npx alekseylearn COMMAND`). */
export function spellCommands(text: string, command: string): string {
  return command === "alekseylearn" ? text : text.replace(/(^|[\s`(])alekseylearn (?=[a-z-])/gm, `$1${command} `);
}

/** Run the CLI with `argv` (without node and the script); returns the exit code. */
/** The secret values typed on the command line: `--hyperparameter.KEY` and `--config.KEY` values whose key names a secret, and `--config.environment=KEY=VALUE` items whose KEY does. */
function typedSecrets(argv: readonly string[]): string[] {
  const found: string[] = [];
  argv.forEach((token, i) => {
    const match = /^--(config|hyperparameter)\.([^=]+)(?:=([\s\S]*))?$/.exec(token);
    if (!match) return;
    const value = match[3] ?? argv[i + 1] ?? "";
    if (namesSecret(match[2]!)) found.push(value);
    // A list setting's items may come comma-separated (WANDB_MODE=offline,WANDB_API_KEY=…).
    for (const item of match[1] === "config" ? [value, ...value.split(",")] : []) {
      const at = item.indexOf("=");
      if (at > 0 && namesSecret(item.slice(0, at))) found.push(item.slice(at + 1));
    }
  });
  return found.filter((value) => value.length >= 4);
}

async function main(argv: readonly string[], env: NodeJS.ProcessEnv, given: Output, signal?: AbortSignal): Promise<number> {
  // Everything printed follows the rule records do: secret values typed here, and URL credentials, never reach the screen.
  const secrets = typedSecrets(argv);
  const plain: Output = { ...given, out: (text) => given.out(redactText(text, secrets)), err: (text) => given.err(redactText(text, secrets)) };
  const debug = argv.includes("--debug");
  const command = invokedAs(env);
  // Messages, hints and help suggest commands as the user typed this one; a job's own lines (logs, jobLine) and JSON are left as they are.
  const spelled: Output = { ...plain, out: (text) => plain.out(spellCommands(text, command)), err: (text) => plain.err(spellCommands(text, command)) };
  const asJson = argv.includes("--json") || argv[0] === "logs";
  let printed = false;
  const output: Output = {
    ...spelled,
    out: (text) => {
      printed = true;
      (asJson ? plain.out : spelled.out)(text);
    },
  };
  const reporter = cliReporter(plain, (text) => spellCommands(text, command));
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
      output.out(formatHelp(command, (await command.helpSections?.(args)) ?? []));
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
    // With --json a script gets the error as JSON too, unless the command already printed its result (fit's failed job).
    if (argv.includes("--json") && !printed && err instanceof UserError)
      plain.out(
        JSON.stringify({ error: { message: err.message, ...(err.hint ? { hint: err.hint } : {}), details: err.details, exitCode: err.exitCode } }, null, 2) +
          "\n",
      );
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
  ...(process.stderr.columns ? { columns: process.stderr.columns } : {}),
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
