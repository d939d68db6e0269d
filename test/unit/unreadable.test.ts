/**
 * Files and folders the user cannot read inside the artifact folder (issue 20, item 2): `fit --dry-run` names every one
 * in one error (exit 1, not "hit a bug"), or skips a folder the ignore rules keep out with a warning. As root, which
 * reads everything, the CLI runs without the capabilities that let it (setpriv), as an ordinary user would.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import { CLI, cliEnv } from "../helpers/cli.js";
import { fileTimeLimit } from "../helpers/limit.js";
import { writeTree } from "../helpers/tree.js";

fileTimeLimit(2, import.meta.url);

/** Run the CLI as a user who cannot read what its mode forbids. */
function runAsUser(args: string[], cwd: string): { code: number | null; stdout: string; stderr: string } {
  const { env } = cliEnv();
  const asRoot = process.getuid?.() === 0;
  const command = asRoot ? "setpriv" : process.execPath;
  const prefix = asRoot ? ["--bounding-set=-dac_override,-dac_read_search", process.execPath] : [];
  const result = spawnSync(command, [...prefix, CLI, ...args], { cwd, env, encoding: "utf8" });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

test("unreadable files and folders in the artifact: one error naming each in the dry run; a folder the ignore rules keep out is skipped with a warning", () => {
  const dir = writeTree({ "train.py": "print(1)\n", "requirements.txt": "", "data/locked.bin": "x", "notes.txt": "n", "cache/inside.txt": "c" });
  fs.chmodSync(`${dir}/notes.txt`, 0o000);
  fs.chmodSync(`${dir}/data`, 0o000);
  fs.chmodSync(`${dir}/cache`, 0o000);
  try {
    const refused = runAsUser(
      ["fit", ".", "--entry", "train.py", "--backend", "sagemaker", "--config.output_path=s3://bucket/sagemaker/runs", "--dry-run"],
      dir,
    );
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(
      refused.stderr,
      /3 files or folders in .* would ship but cannot be read:\n {2}- cache\/ \(EACCES\)\n {2}- data\/ \(EACCES\)\n {2}- notes\.txt \(EACCES\)/,
    );
    assert.match(refused.stderr, /hint: Make them readable .* or keep them out with a line in \.alekseylearnignore/);
    assert.doesNotMatch(refused.stderr, /hit a bug/);
    fs.writeFileSync(`${dir}/.alekseylearnignore`, "cache/\nnotes.txt\ndata/\n");
    const skipped = runAsUser(
      ["fit", ".", "--entry", "train.py", "--backend", "sagemaker", "--config.output_path=s3://bucket/sagemaker/runs", "--dry-run"],
      dir,
    );
    assert.equal(skipped.code, 0, skipped.stderr);
    assert.match(skipped.stderr, /warning: Skipped cache\/: it cannot be read \(EACCES\), and the ignore rules keep it out\./);
    assert.match(skipped.stdout, /train\.py/);
    const local = runAsUser(["fit", ".", "--entry", "train.py", "--dry-run"], dir);
    assert.equal(local.code, 0, local.stderr);
  } finally {
    for (const name of ["notes.txt", "data", "cache"]) fs.chmodSync(`${dir}/${name}`, 0o755);
  }
});
