/** `fetch` through the CLI against hostile archives made by the test (issue 12, item 6): what a user sees, and what is left on disk. */
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import zlib from "node:zlib";
import { cliEnv, runCli } from "../helpers/cli.js";
import { rawTar } from "../helpers/rawtar.js";
import { fileTimeLimit } from "../helpers/limit.js";

fileTimeLimit(10, import.meta.url);

test("fetch of an archive bomb: exit 1, --max-size named, and no --to folder left behind; a bad --max-size is a usage error", async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "fetch-bomb-"));
  // 2 GiB of zeros in about 2 MB: the tar header's member, then the same 1 MiB-of-zeros gzip member 2048 times (RFC 1952 allows members in a row).
  const header = rawTar([{ name: "weights.bin", content: "" }], false).subarray(0, 512);
  header.write((2048 * 1024 * 1024).toString(8).padStart(11, "0") + "\0", 124);
  header.write(" ".repeat(8), 148);
  header.write(
    header
      .reduce((total, byte) => total + byte, 0)
      .toString(8)
      .padStart(6, "0") + "\0 ",
    148,
  );
  const zeros = zlib.gzipSync(Buffer.alloc(1024 * 1024), { level: 9 });
  fs.writeFileSync(
    path.join(root, "model.tar.gz"),
    Buffer.concat([zlib.gzipSync(header), ...Array.from({ length: 2048 }, () => zeros), zlib.gzipSync(Buffer.alloc(1024))]),
  );
  const { env } = cliEnv();
  const result = await runCli(["fetch", "model.tar.gz", "--to", "new/model"], { cwd: root, env });
  assert.equal(result.code, 1, result.stderr);
  assert.match(result.stderr, /Refusing to extract .*model\.tar\.gz: it expands to more than 2\.0 GiB/);
  assert.match(result.stderr, /--max-size/);
  assert.deepEqual(fs.readdirSync(root), ["model.tar.gz"], "not even the --to folder is left");
  const bad = await runCli(["fetch", "model.tar.gz", "--to", "new", "--max-size", "lots"], { cwd: root, env });
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /--max-size lots is not a size/);
});

test("fetch lists a file whose name holds escape sequences escaped: the archive cannot act on the terminal", async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "fetch-names-"));
  const name = "w\u001b]0;owned\u0007\u001b[2J.bin";
  fs.writeFileSync(path.join(root, "model.tar.gz"), rawTar([{ name, content: "w" }]));
  const { env } = cliEnv();
  const result = await runCli(["fetch", "model.tar.gz", "--to", "m"], { cwd: root, env });
  assert.equal(result.code, 0, result.stderr);
  // eslint-disable-next-line no-control-regex -- control characters are what this looks for
  assert.ok(!/\u001b|\u0007/.test(result.stdout + result.stderr), JSON.stringify(result.stdout));
  assert.match(result.stdout, /w\\x1b\]0;owned\\x07\\x1b\[2J\.bin/);
  assert.ok(fs.existsSync(path.join(root, "m", name)), "the file itself keeps its name");
});
