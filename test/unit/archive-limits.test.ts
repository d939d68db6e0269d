/**
 * Archives (issue 12, item 6): a gzip bomb, an archive larger than the disk,
 * --max-size, names with escape sequences. Each archive is made here.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import zlib from "node:zlib";
import { extractArchive } from "../../src/storage/archive.js";
import { formatBytes, parseSize, printable } from "../../src/text.js";
import { UserError } from "../../src/errors.js";
import { REPO } from "../helpers/cli.js";
import { listTree } from "../helpers/tree.js";
import { rawTar } from "../helpers/rawtar.js";
import { fileTimeLimit } from "../helpers/limit.js";

fileTimeLimit(3, import.meta.url);

const MiB = 1024 * 1024;

/**
 * A real gzip bomb: one tar entry of `mebibytes` MiB of zeros. gzip allows
 * members one after the other (RFC 1952, 2.2), so the archive is the header's
 * member, the same 1 MiB-of-zeros member `mebibytes` times (about 1 KB each),
 * and the end blocks: 3 GiB of content in about 3 MB, made without inflating it.
 */
function gzipBomb(mebibytes: number): Buffer {
  const entries = rawTar([{ name: "zeros.bin", content: "" }], false);
  const header = entries.subarray(0, 512);
  header.write((mebibytes * MiB).toString(8).padStart(11, "0") + "\0", 124);
  header.write(" ".repeat(8), 148);
  header.write(
    header
      .reduce((total, byte) => total + byte, 0)
      .toString(8)
      .padStart(6, "0") + "\0 ",
    148,
  );
  const zeros = zlib.gzipSync(Buffer.alloc(MiB), { level: 9 });
  return Buffer.concat([zlib.gzipSync(header), ...Array.from({ length: mebibytes }, () => zeros), zlib.gzipSync(Buffer.alloc(1024))]);
}

function temp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "limits-"));
}

test("a 3 MB archive that expands to 3 GiB of zeros is refused before it is inflated, naming --max-size; nothing is left, not even the target it made", async () => {
  const root = temp();
  const archive = path.join(root, "model.tar.gz");
  fs.writeFileSync(archive, gzipBomb(3072));
  assert.ok(fs.statSync(archive).size < 4 * MiB, "the bomb is small");
  const to = path.join(root, "out", "model");
  await assert.rejects(
    extractArchive(archive, to),
    (err: unknown) =>
      err instanceof UserError &&
      err.exitCode === 1 &&
      /expands to more than 3\.0 GiB from 3\.\d MiB, over 100 times its size/.test(err.message) &&
      /--max-size SIZE/.test(err.hint ?? ""),
  );
  assert.deepEqual(fs.readdirSync(root), ["model.tar.gz"], "the target folder it made is gone");
});

test("--max-size replaces the growth rule: an archive past it is refused, one within it extracts", async () => {
  const root = temp();
  const archive = path.join(root, "model.tar.gz");
  fs.writeFileSync(archive, rawTar([{ name: "weights.bin", content: Buffer.alloc(2 * MiB) }]));
  await assert.rejects(
    extractArchive(archive, path.join(root, "a"), { maxSize: MiB }),
    (err: unknown) => err instanceof UserError && /past --max-size 1\.0 MiB/.test(err.message),
  );
  assert.ok(!fs.existsSync(path.join(root, "a")));
  assert.deepEqual(await extractArchive(archive, path.join(root, "b"), { maxSize: 3 * MiB }), ["weights.bin"]);
  assert.equal(parseSize("20G"), 20 * 1024 ** 3);
  assert.equal(parseSize("500MiB"), 500 * MiB);
  assert.equal(parseSize("1.5k"), 1536);
  assert.equal(parseSize("12345"), 12345);
  assert.equal(parseSize("lots"), undefined);
  assert.equal(formatBytes(1536), "1.5 KiB");
});

test("an archive larger than the free space of the target's disk is refused, and the disk is left as it was (a 4 MiB tmpfs in a private mount namespace)", () => {
  const root = temp();
  const archive = path.join(root, "model.tar.gz");
  fs.writeFileSync(archive, rawTar([{ name: "weights.bin", content: Buffer.alloc(8 * MiB) }]));
  const small = path.join(root, "small");
  fs.mkdirSync(small);
  const script = `
    import { extractArchive } from ${JSON.stringify(path.join(REPO, "dist", "src", "storage", "archive.js"))};
    try { await extractArchive(${JSON.stringify(archive)}, ${JSON.stringify(path.join(small, "to"))}); console.log("extracted"); }
    catch (err) { console.log(err.message); console.log(err.hint); }
    console.log(JSON.stringify((await import("node:fs")).readdirSync(${JSON.stringify(small)})));
  `;
  const run = spawnSync(
    "bwrap",
    ["--dev-bind", "/", "/", "--size", String(4 * MiB), "--tmpfs", small, "--", process.execPath, "--input-type=module", "-e", script],
    { encoding: "utf8" },
  );
  assert.equal(run.status, 0, run.stderr);
  const [message, hint, left] = run.stdout.trim().split("\n");
  assert.match(message!, /expands to more than 8\.0 MiB, and the disk of .*\/small\/to has [0-9.]+ (KiB|MiB) free/);
  assert.match(hint!, /another disk/);
  assert.equal(left, "[]", "nothing was left on the small disk");
});

test("names with control characters are shown escaped: a refusal cannot recolour or retitle the terminal", async () => {
  assert.equal(printable("a\u001b[31mred\u0007\u009b\u202eb.txt"), "a\\x1b[31mred\\x07\\x9b\\u202eb.txt");
  assert.equal(printable("model-ü.bin"), "model-ü.bin", "printable characters stay as they are");
  const root = temp();
  const archive = path.join(root, "model.tar.gz");
  fs.writeFileSync(archive, rawTar([{ name: "../\u001b]0;pwned\u0007x", content: "x" }]));
  await assert.rejects(extractArchive(archive, path.join(root, "to")), (err: unknown) => {
    assert.ok(err instanceof UserError);
    // eslint-disable-next-line no-control-regex -- control characters are what this looks for
    assert.ok(!/[\u0000-\u001f]/.test(err.message), JSON.stringify(err.message));
    assert.match(err.message, /entry "\.\.\/\\x1b\]0;pwned\\x07x" would land outside/);
    return true;
  });
  assert.deepEqual(listTree(root), ["model.tar.gz"]);
});
