/** Safe extraction: a bad entry refuses the whole archive, and the target folder is exactly as it was. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import * as tar from "tar";
import { extractArchive, packFolder } from "../../src/storage/archive.js";
import { UserError } from "../../src/errors.js";
import { rawTar, type RawEntry } from "../helpers/rawtar.js";
import { listTree, writeTree } from "../helpers/tree.js";

/** A work folder with `dest/keep.txt` in it, and an archive made of `entries`. */
function setup(entries: readonly RawEntry[] | Buffer): { root: string; dest: string; archive: string } {
  const root = writeTree({ "dest/keep.txt": "mine" });
  const archive = path.join(root, "model.tar.gz");
  fs.writeFileSync(archive, Buffer.isBuffer(entries) ? entries : rawTar(entries));
  return { root, dest: path.join(root, "dest"), archive };
}

async function refused(entries: readonly RawEntry[] | Buffer, expected: RegExp): Promise<void> {
  const { root, dest, archive } = setup(entries);
  await assert.rejects(extractArchive(archive, dest), (err: unknown) => {
    assert.ok(err instanceof UserError, String(err));
    assert.equal(err.exitCode, 1);
    assert.match(err.message, expected);
    return true;
  });
  assert.deepEqual(listTree(dest), ["keep.txt"], "the target folder is as it was");
  assert.equal(fs.readFileSync(path.join(dest, "keep.txt"), "utf8"), "mine");
  assert.deepEqual(fs.readdirSync(dest), ["keep.txt"], "no staging folder is left behind");
  assert.deepEqual(listTree(root), ["dest/keep.txt", "model.tar.gz"], "nothing landed beside it");
}

test("pack then extract: the same bytes, entries named without ./, an empty folder packs nothing", async () => {
  const src = writeTree({ "model.joblib": "weights", "sub/weights.bin": Buffer.from([0, 1, 2, 255]) });
  const out = writeTree({});
  const archive = path.join(out, "model.tar.gz");
  assert.equal(await packFolder(src, archive), 2);
  const names: string[] = [];
  await tar.t({ file: archive, onReadEntry: (entry) => void names.push(entry.path) });
  assert.deepEqual(names.sort(), ["model.joblib", "sub/", "sub/weights.bin"]);
  assert.deepEqual(await extractArchive(archive, path.join(out, "x")), ["model.joblib", "sub/weights.bin"]);
  assert.deepEqual(fs.readFileSync(path.join(out, "x", "sub", "weights.bin")), Buffer.from([0, 1, 2, 255]));
  assert.equal(await packFolder(writeTree({}), path.join(out, "empty.tar.gz")), 0);
  assert.ok(!fs.existsSync(path.join(out, "empty.tar.gz")));
});

test("refused: an entry climbing out with ..", () => refused([{ name: "../escape.txt", content: "x" }], /entry "\.\.\/escape\.txt" would land outside the target folder/));
test("refused: an absolute path", () => refused([{ name: "/tmp/alekseylearn-abs.txt", content: "x" }], /has an absolute path/));
test("refused: a good file followed by a bad one leaves neither", () => refused([{ name: "good.txt", content: "ok" }, { name: "a/../../bad.txt", content: "x" }], /bad\.txt/));
test("refused: a symlink to an absolute path", () => refused([{ name: "etc", type: "2", linkname: "/etc" }], /link pointing outside the target folder \(\/etc\)/));
test("refused: a symlink climbing out", () => refused([{ name: "a/link", type: "2", linkname: "../../x" }], /link pointing outside/));
test("refused: a file written through an earlier symlink", () => refused([{ name: "evil", type: "2", linkname: "sub" }, { name: "evil/pwned.txt", content: "x" }], /goes through the link evil/));
test("refused: a hard link to a file outside", () => refused([{ name: "passwd", type: "1", linkname: "/etc/passwd" }], /hard link to \/etc\/passwd/));
test("refused: a character device", () => refused([{ name: "dev", type: "3" }], /CharacterDevice/));
test("refused: a FIFO", () => refused([{ name: "pipe", type: "6" }], /FIFO/));
test("refused: random bytes", () => refused(Buffer.from("this is not an archive at all, not even close".repeat(20)), /is not a readable \.tar\.gz archive/));
test("refused: a truncated archive", () => refused(rawTar([{ name: "big.bin", content: randomBytes(200_000) }]).subarray(0, 100_000), /is not a readable \.tar\.gz archive/));

test("a symlink inside the folder is fine", async () => {
  const { dest, archive } = setup([{ name: "sub/file", content: "data" }, { name: "link", type: "2", linkname: "sub/file" }]);
  assert.deepEqual(await extractArchive(archive, dest), ["sub/file"], "the files it wrote");
  assert.equal(fs.readlinkSync(path.join(dest, "link")), "sub/file");
});

test("a differing file is not replaced without overwrite; identical content is no conflict", async () => {
  const { dest, archive } = setup([{ name: "keep.txt", content: "theirs" }]);
  await assert.rejects(extractArchive(archive, dest), /would replace a file .* that differs: keep\.txt/);
  assert.equal(fs.readFileSync(path.join(dest, "keep.txt"), "utf8"), "mine");
  await extractArchive(archive, dest, { overwrite: true });
  assert.equal(fs.readFileSync(path.join(dest, "keep.txt"), "utf8"), "theirs");
  await extractArchive(archive, dest);
  assert.deepEqual(fs.readdirSync(dest), ["keep.txt"]);
});

test("an archive's file where the target has a folder is a conflict", async () => {
  const { dest, archive } = setup([{ name: "keep.txt/inner", content: "x" }]);
  await assert.rejects(extractArchive(archive, dest), /keep\.txt/);
  assert.equal(fs.readFileSync(path.join(dest, "keep.txt"), "utf8"), "mine");
});
