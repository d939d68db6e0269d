/**
 * The docker-archive the local container runner streams to `docker load`
 * (config.builder=oci), read back with GNU tar (not ours), and the blob cache
 * that keeps a base layer by its digest so it is read from its registry once.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { append, configBytes, sha256, type Image, type Layer } from "../../src/package/oci/image.js";
import { layerOf } from "../../src/package/oci/layer.js";
import { blobCachePath, cachedLayer, dockerArchive } from "../../src/package/oci/load.js";
import { fileTimeLimit } from "../helpers/limit.js";

fileTimeLimit(1, import.meta.url);

function smallImage(): Image {
  const base = layerOf([{ path: "etc/base", kind: "file", mode: 0o644, bytes: Buffer.from("base\n") }]);
  const code = layerOf([{ path: "opt/ml/code/train.py", kind: "file", mode: 0o644, bytes: Buffer.from("print(1)\n") }]);
  return append({ config: { os: "linux", architecture: "amd64" }, layers: [base] }, { layer: code, createdBy: "code" });
}

test("dockerArchive: docker save's layout (manifest.json, the config by its digest, each blob by its digest), readable by GNU tar", async () => {
  const image = smallImage();
  const chunks: Buffer[] = [];
  for await (const chunk of dockerArchive(image, "alekseylearn/iris:local")) chunks.push(chunk);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "archive-"));
  fs.writeFileSync(path.join(dir, "image.tar"), Buffer.concat(chunks));
  const config = configBytes(image.config);
  const names = execFileSync("tar", ["-tf", path.join(dir, "image.tar")], { encoding: "utf8" })
    .trim()
    .split("\n");
  assert.deepEqual(names, ["manifest.json", `${sha256(config).slice(7)}.json`, ...image.layers.map((layer) => `${layer.digest.slice(7)}.tar.gz`)]);
  execFileSync("tar", ["-xf", path.join(dir, "image.tar"), "-C", dir]);
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(dir, "manifest.json"), "utf8")), [
    {
      Config: `${sha256(config).slice(7)}.json`,
      RepoTags: ["alekseylearn/iris:local"],
      Layers: image.layers.map((layer) => `${layer.digest.slice(7)}.tar.gz`),
    },
  ]);
  assert.ok(fs.readFileSync(path.join(dir, `${sha256(config).slice(7)}.json`)).equals(config));
  for (const layer of image.layers) assert.equal(sha256(fs.readFileSync(path.join(dir, `${layer.digest.slice(7)}.tar.gz`))), layer.digest);
});

test("dockerArchive: a layer whose bytes are not the size its manifest says stops the archive", async () => {
  const image = smallImage();
  const short: Layer = { ...image.layers[0]!, open: () => Readable.from([Buffer.from("short")]) };
  await assert.rejects(async () => {
    for await (const _ of dockerArchive({ config: image.config, layers: [short] }, "t:local"));
  }, /has 5 bytes, not the/);
});

test("cachedLayer: a base blob is read from its registry once, then from the cache by digest; a wrong blob is never kept", async () => {
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), "blob-cache-"));
  const layer = smallImage().layers[0]!;
  const bytes = (layer as Layer & { bytes: Buffer }).bytes;
  let reads = 0;
  const remote: Layer = { ...layer, source: { host: "127.0.0.1:5000", repository: "library/python" }, open: () => (reads++, Readable.from([bytes])) };
  const read = async (from: Layer): Promise<Buffer> => {
    const chunks: Buffer[] = [];
    for await (const chunk of await from.open()) chunks.push(Buffer.from(chunk as Buffer));
    return Buffer.concat(chunks);
  };
  assert.ok((await read(cachedLayer(remote, cache))).equals(bytes));
  assert.ok((await read(cachedLayer(remote, cache))).equals(bytes));
  assert.equal(reads, 1);
  assert.ok(fs.readFileSync(blobCachePath(cache, layer.digest)).equals(bytes));
  const wrong: Layer = { ...remote, digest: sha256("other"), open: () => Readable.from([bytes]) };
  await assert.rejects(read(cachedLayer(wrong, cache)), /does not match its digest/);
  assert.equal(fs.existsSync(blobCachePath(cache, wrong.digest)), false);
});
