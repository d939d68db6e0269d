/** packFolder and extractArchive: SageMaker-style archives, and extraction that refuses a malicious archive without writing anything. */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import * as tar from "tar";
import { extractArchive, packFolder } from "../../src/storage/archive.js";
import { UserError } from "../../src/errors.js";
import { rawTar, type RawEntry as Entry } from "../helpers/rawtar.js";
import { fileTimeLimit } from "../helpers/limit.js";

fileTimeLimit(3, import.meta.url);

/** A fresh temporary folder, removed when the test ends. */
function tempDir(t: TestContext): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "alekseylearn-archive-"));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Everything under `dir`, not following links: path → "dir", "link -> target" or the file's bytes as hex. */
function snapshot(dir: string): Record<string, string> {
  const result: Record<string, string> = {};
  const visit = (under: string): void => {
    for (const dirent of fs.readdirSync(path.join(dir, under), { withFileTypes: true })) {
      const name = under ? `${under}/${dirent.name}` : dirent.name;
      const full = path.join(dir, name);
      if (dirent.isSymbolicLink()) result[name] = `link -> ${fs.readlinkSync(full)}`;
      else if (dirent.isDirectory()) {
        result[name] = "dir";
        visit(name);
      } else result[name] = fs.readFileSync(full).toString("hex");
    }
  };
  if (fs.existsSync(dir)) visit("");
  return result;
}

/** A work folder holding `dest/keep.txt` ("mine") and `archive.tar.gz` made of `entries` (or the given bytes). */
function setup(t: TestContext, entries: readonly Entry[] | Buffer): { root: string; dest: string; archive: string } {
  const root = tempDir(t);
  const dest = path.join(root, "dest");
  fs.mkdirSync(dest);
  fs.writeFileSync(path.join(dest, "keep.txt"), "mine");
  const archive = path.join(root, "archive.tar.gz");
  fs.writeFileSync(archive, Buffer.isBuffer(entries) ? entries : rawTar(entries));
  return { root, dest, archive };
}

/** Extracting `archive` into `dest` fails with exit code 1 and a message matching every pattern; `root` is exactly as before. */
async function assertRefused(root: string, archive: string, dest: string, patterns: readonly (string | RegExp)[], overwrite = false): Promise<UserError> {
  const before = snapshot(root);
  let caught: unknown;
  await extractArchive(archive, dest, { overwrite }).catch((err: unknown) => (caught = err));
  assert.ok(caught instanceof UserError, `a UserError, got ${String(caught)}`);
  assert.equal(caught.exitCode, 1);
  for (const pattern of patterns) {
    if (typeof pattern === "string") assert.ok(caught.message.includes(pattern), `"${caught.message}" mentions ${pattern}`);
    else assert.match(caught.message, pattern);
  }
  assert.deepEqual(snapshot(root), before, "nothing changed, no staging folder left");
  return caught;
}

/** An archive made of `entries` is refused as malicious, naming `entry`, and nothing is written. */
async function refused(t: TestContext, entries: readonly Entry[], entry: string, why: RegExp): Promise<void> {
  const { root, dest, archive } = setup(t, entries);
  const err = await assertRefused(root, archive, dest, [`Refusing to extract ${archive}: entry "${entry}"`, why]);
  assert.match(err.hint ?? "", /malicious; nothing was extracted/);
  assert.equal(fs.readFileSync(path.join(dest, "keep.txt"), "utf8"), "mine");
}

// Packed in one synchronous pass up to 4 MiB of files, streamed above: the same archive either way.
for (const [how, size] of [
  ["at once", 70_000],
  ["streamed", 5 * 1024 * 1024],
] as const)
  test(`packFolder (${how}) then extractArchive gives the same bytes; entries are named as in SageMaker's model.tar.gz`, async (t) => {
    const src = tempDir(t);
    const out = path.join(tempDir(t), "not-yet"); // the archive's folder is made
    const model = randomBytes(3000);
    const weights = randomBytes(size);
    fs.writeFileSync(path.join(src, "model.joblib"), model);
    fs.mkdirSync(path.join(src, "sub"));
    fs.writeFileSync(path.join(src, "sub", "weights.bin"), weights);
    const archive = path.join(out, "model.tar.gz");

    assert.equal(await packFolder(src, archive), 2);
    assert.deepEqual(fs.readdirSync(out), ["model.tar.gz"], "no partial file left beside it");
    const names: string[] = [];
    await tar.t({ file: archive, onReadEntry: (entry) => void names.push(entry.path) });
    assert.deepEqual(names.sort(), ["model.joblib", "sub/", "sub/weights.bin"]);

    const to = path.join(out, "extracted");
    assert.deepEqual(await extractArchive(archive, to), ["model.joblib", "sub/weights.bin"]);
    assert.deepEqual(fs.readFileSync(path.join(to, "model.joblib")), model);
    assert.deepEqual(fs.readFileSync(path.join(to, "sub", "weights.bin")), weights);
    assert.deepEqual(Object.keys(snapshot(to)).sort(), ["model.joblib", "sub", "sub/weights.bin"], "no staging folder left");
  });

test("packFolder counts regular files only and keeps a symlink a symlink", async (t) => {
  const src = tempDir(t);
  const out = tempDir(t);
  fs.writeFileSync(path.join(src, "model.joblib"), "weights");
  fs.symlinkSync("model.joblib", path.join(src, "latest"));
  assert.equal(await packFolder(src, path.join(out, "model.tar.gz")), 1);
  assert.deepEqual(await extractArchive(path.join(out, "model.tar.gz"), path.join(out, "x")), ["model.joblib"]);
  assert.equal(fs.readlinkSync(path.join(out, "x", "latest")), "model.joblib");
});

test("packFolder of an empty folder returns 0 and writes no archive", async (t) => {
  const src = tempDir(t);
  const out = tempDir(t);
  assert.equal(await packFolder(src, path.join(out, "model.tar.gz")), 0);
  assert.deepEqual(fs.readdirSync(out), []);
});

test("a model that is mostly zeros extracts (node-tar's default decompression cap would refuse it)", async (t) => {
  const src = tempDir(t);
  const out = tempDir(t);
  fs.writeFileSync(path.join(src, "zeros.bin"), Buffer.alloc(32 * 1024 * 1024));
  await packFolder(src, path.join(out, "model.tar.gz"));
  assert.deepEqual(await extractArchive(path.join(out, "model.tar.gz"), path.join(out, "x")), ["zeros.bin"]);
  assert.equal(fs.statSync(path.join(out, "x", "zeros.bin")).size, 32 * 1024 * 1024);
});

test("refused: an entry climbing out with ..; nothing lands beside the target either", async (t) => {
  await refused(t, [{ name: "../escape.txt", content: "x" }], "../escape.txt", /would land outside/);
});

test("refused: an absolute path", async (t) => {
  const target = path.join(os.tmpdir(), `abs-${randomBytes(4).toString("hex")}.txt`);
  await refused(t, [{ name: target, content: "x" }], target, /has an absolute path/);
  assert.ok(!fs.existsSync(target));
});

test("refused: a good file followed by a bad one leaves neither", async (t) => {
  await refused(
    t,
    [
      { name: "good.txt", content: "ok" },
      { name: "a/../../bad.txt", content: "x" },
    ],
    "a/../../bad.txt",
    /would land outside/,
  );
});

test("refused: a symlink to an absolute path", async (t) => {
  await refused(t, [{ name: "etc", type: "2", linkname: "/etc" }], "etc", /link pointing outside the target folder \(\/etc\)/);
});

test("refused: a symlink climbing out", async (t) => {
  await refused(t, [{ name: "a", type: "2", linkname: "../../x" }], "a", /link pointing outside the target folder \(\.\.\/\.\.\/x\)/);
  await refused(t, [{ name: "sub/a", type: "2", linkname: "../../x" }], "sub/a", /link pointing outside/);
});

test("refused: a symlink that climbs out through another link (s -> ., t -> s/..)", async (t) => {
  await refused(
    t,
    [
      { name: "s", type: "2", linkname: "." },
      { name: "t", type: "2", linkname: "s/.." },
    ],
    "t",
    /climbs out of a folder \(s\/\.\.\)/,
  );
});

test("refused: a file written through an earlier symlink", async (t) => {
  const { root, dest, archive } = setup(t, []);
  // The link points at the work folder itself, so a file written through it would show in the snapshot.
  fs.writeFileSync(
    archive,
    rawTar([
      { name: "evil", type: "2", linkname: root },
      { name: "evil/pwned.txt", content: "x" },
    ]),
  );
  await assertRefused(root, archive, dest, [`entry "evil"`, /link pointing outside/]);
  fs.writeFileSync(
    archive,
    rawTar([
      { name: "evil", type: "2", linkname: "sub" },
      { name: "evil/pwned.txt", content: "x" },
    ]),
  );
  await assertRefused(root, archive, dest, [`entry "evil/pwned.txt" goes through the link evil`]);
});

test("refused: a hard link to a file outside", async (t) => {
  await refused(t, [{ name: "passwd", type: "1", linkname: "/etc/passwd" }], "passwd", /hard link to \/etc\/passwd/);
  await refused(t, [{ name: "up", type: "1", linkname: "../archive.tar.gz" }], "up", /hard link to \.\.\/archive\.tar\.gz/);
});

test("refused: devices, FIFOs and vendor entry types", async (t) => {
  await refused(t, [{ name: "tty", type: "3" }], "tty", /CharacterDevice/);
  await refused(t, [{ name: "disk", type: "4" }], "disk", /BlockDevice/);
  await refused(t, [{ name: "pipe", type: "6" }], "pipe", /FIFO/);
  // node-tar skips these without asking the filter; they must not pass unnoticed.
  await refused(
    t,
    [
      { name: "good.txt", content: "ok" },
      { name: "acl", type: "A", content: "x" },
    ],
    "acl",
    /unknown type/,
  );
});

test("refused: random bytes and a truncated archive, with a clear message and the target unchanged or not created", async (t) => {
  const { root, dest, archive } = setup(t, randomBytes(4096));
  await assertRefused(root, archive, dest, [`${archive} is not a readable .tar.gz archive: `]);
  const fresh = path.join(root, "new", "deeper");
  await assertRefused(root, archive, fresh, [`${archive} is not a readable .tar.gz archive: `]);
  assert.ok(!fs.existsSync(path.join(root, "new")), "the folders it made are gone again");

  fs.writeFileSync(
    archive,
    rawTar([
      { name: "good.txt", content: "ok" },
      { name: "big.bin", content: randomBytes(200_000) },
    ]).subarray(0, 100_000),
  );
  await assertRefused(root, archive, dest, [`${archive} is not a readable .tar.gz archive: `, /unexpected end of file/]);
  await assertRefused(root, archive, fresh, [`${archive} is not a readable .tar.gz archive: `]);
  assert.ok(!fs.existsSync(path.join(root, "new")));
});

test("a symlink inside the folder is extracted as a symlink, from a plain .tar too, and extracting twice is fine", async (t) => {
  const { dest, archive } = setup(
    t,
    rawTar(
      [
        { name: "sub/file", content: "data" },
        { name: "link", type: "2", linkname: "sub/file" },
        { name: "sub/up", type: "2", linkname: "../keep.txt" },
      ],
      false,
    ),
  );
  assert.deepEqual(await extractArchive(archive, dest), ["sub/file"]);
  assert.equal(fs.readlinkSync(path.join(dest, "link")), "sub/file");
  assert.equal(fs.readFileSync(path.join(dest, "link"), "utf8"), "data");
  assert.equal(fs.readFileSync(path.join(dest, "sub", "up"), "utf8"), "mine");
  assert.deepEqual(await extractArchive(archive, dest), ["sub/file"]);
});

test("a symlink to a folder does not confuse placing the files", async (t) => {
  const { dest, archive } = setup(t, [
    { name: "link", type: "2", linkname: "sub" },
    { name: "sub/file", content: "data" },
  ]);
  assert.deepEqual(await extractArchive(archive, dest), ["sub/file"]);
  assert.deepEqual(snapshot(dest), {
    "keep.txt": Buffer.from("mine").toString("hex"),
    link: "link -> sub",
    sub: "dir",
    "sub/file": Buffer.from("data").toString("hex"),
  });
});

test("setuid bits are dropped and the user can read what is extracted", async (t) => {
  const { dest, archive } = setup(t, [
    { name: "run.sh", content: "#!/bin/sh\n", mode: 0o4755 },
    { name: "locked", content: "x", mode: 0 },
  ]);
  await extractArchive(archive, dest);
  assert.equal(fs.statSync(path.join(dest, "run.sh")).mode & 0o7777, 0o755 & ~process.umask());
  assert.equal(fs.readFileSync(path.join(dest, "locked"), "utf8"), "x");
});

test("a differing file is not replaced without overwrite; with it, it is; identical content is no conflict", async (t) => {
  const { root, dest, archive } = setup(t, [
    { name: "new.txt", content: "new" },
    { name: "model.joblib", content: "theirs" },
  ]);
  fs.writeFileSync(path.join(dest, "model.joblib"), "mine");
  const err = await assertRefused(root, archive, dest, [/would replace a file in .* that differs: model\.joblib\.$/]);
  assert.equal(err.hint, "Pass --overwrite to replace them, or --to another folder.");
  assert.equal(fs.readFileSync(path.join(dest, "model.joblib"), "utf8"), "mine");

  assert.deepEqual(await extractArchive(archive, dest, { overwrite: true }), ["model.joblib", "new.txt"]);
  assert.equal(fs.readFileSync(path.join(dest, "model.joblib"), "utf8"), "theirs");
  assert.deepEqual(await extractArchive(archive, dest), ["model.joblib", "new.txt"], "identical files are no conflict");
  assert.deepEqual(fs.readdirSync(dest).sort(), ["keep.txt", "model.joblib", "new.txt"]);
});

test("the files placed are listed sorted, whatever the archive's order", async (t) => {
  // "m.bin" sorts before "m/y.bin" although a walk of the folders would give m/y.bin first.
  const { dest, archive } = setup(t, [
    { name: "z.bin", content: "z" },
    { name: "m/y.bin", content: "y" },
    { name: "m.bin", content: "m" },
    { name: "a.bin", content: "a" },
  ]);
  assert.deepEqual(await extractArchive(archive, dest), ["a.bin", "m.bin", "m/y.bin", "z.bin"]);
});

test("a conflict message names five files and counts the rest", async (t) => {
  const names = ["a", "b", "c", "d", "e", "f", "g"];
  const { root, dest, archive } = setup(
    t,
    names.map((name) => ({ name, content: "theirs" })),
  );
  for (const name of names) fs.writeFileSync(path.join(dest, name), "mine");
  await assertRefused(root, archive, dest, [/differ: a, b, c, d, e and 2 more\.$/]);
});

test("a file where the target has a folder, or a folder where it has a file, is a conflict even with overwrite", async (t) => {
  const { root, dest, archive } = setup(t, [{ name: "model.joblib", content: "x" }]);
  fs.mkdirSync(path.join(dest, "model.joblib"));
  fs.writeFileSync(path.join(dest, "model.joblib", "inner"), "mine");
  await assertRefused(root, archive, dest, [/differs: model\.joblib\./]);
  await assertRefused(root, archive, dest, [/differs: model\.joblib\./], true);

  fs.writeFileSync(archive, rawTar([{ name: "keep.txt/inner", content: "x" }]));
  await assertRefused(root, archive, dest, [/differs: keep\.txt\./], true);
  assert.equal(fs.readFileSync(path.join(dest, "keep.txt"), "utf8"), "mine");
});
