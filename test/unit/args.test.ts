import { test } from "node:test";
import assert from "node:assert/strict";
import { parseArgs, formatHelp } from "../../src/cli/args.js";
import { commands } from "../../src/cli/commands.js";
import { UserError } from "../../src/errors.js";
import { fileTimeLimit } from "../helpers/limit.js";

fileTimeLimit(3, import.meta.url);

const fit = commands.find((c) => c.name === "fit")!;

test("fit flags: dotted families, values with '=', --driver as --backend, switches", () => {
  const args = parseArgs(
    [
      "train.py",
      "--config.output_path=s3://b/sagemaker/runs",
      "--config.instance_count",
      "2",
      "--hyperparameter.query=a=b",
      "--input.train=./data",
      "--driver",
      "local",
      "--detach",
      "--json",
    ],
    fit,
  );
  assert.deepEqual(args.positionals, ["train.py"]);
  assert.deepEqual(args.families.config, { output_path: "s3://b/sagemaker/runs", instance_count: "2" });
  assert.deepEqual(args.families.hyperparameter, { query: "a=b" });
  assert.deepEqual(args.families.input, { train: "./data" });
  assert.equal(args.options.backend, "local");
  assert.equal(args.options.detach, true);
  assert.equal(args.options.json, true);
});

test("an unknown flag is a usage error naming the nearest one", () => {
  assert.throws(
    () => parseArgs(["train.py", "--envfil", "x"], fit),
    (err: unknown) => err instanceof UserError && err.exitCode === 2 && /Unknown option --envfil .*Did you mean --envfile\?/.test(err.message),
  );
  assert.throws(() => parseArgs(["train.py", "--configs.x=1"], fit), /Unknown option --configs\.x/);
});

test("missing and extra arguments, and a flag without its value, are usage errors", () => {
  assert.throws(() => parseArgs([], fit), /Missing ARTIFACT/);
  assert.throws(() => parseArgs(["a.py", "b.py"], fit), /Unexpected argument b\.py/);
  assert.throws(() => parseArgs(["a.py", "--envfile"], fit), /--envfile needs a value/);
  assert.throws(() => parseArgs(["a.py", "--detach=yes"], fit), /--detach takes no value/);
});

test("help shows usage, every option and the examples", () => {
  const help = formatHelp(fit);
  assert.match(help, /Usage: alekseylearn fit ARTIFACT/);
  for (const option of [
    "--entry FILE",
    "--envfile FILE",
    "--backend, --driver NAME",
    "--detach",
    "--config.KEY=VALUE",
    "--hyperparameter.KEY=VALUE",
    "--input.CHANNEL=LOCATION",
    "--json",
  ]) {
    assert.ok(help.includes(option), `help mentions ${option}`);
  }
  assert.match(help, /Examples:\n {2}alekseylearn fit examples\/iris\/train\.py/);
});
