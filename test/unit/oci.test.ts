/**
 * The daemonless builder's pure parts (src/package/oci): deterministic layer
 * bytes and digests, manifests and indexes read and resolved to linux/amd64,
 * OCI layer types mapped to Docker's (zstd and uncompressed refused), the
 * auth challenge, http for loopback only, request time limits, pip's target
 * arguments, and the rules of config.builder=auto.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";
import { UserError } from "../../src/errors.js";
import { buildSpec } from "../../src/jobs/spec.js";
import {
  append,
  configBytes,
  dockerLayerType,
  dockerManifest,
  editConfig,
  isIndex,
  MEDIA,
  parseManifest,
  pickPlatform,
  sha256,
} from "../../src/package/oci/image.js";
import { folderEntries, layerOf, tarOf } from "../../src/package/oci/layer.js";
import { parseChallenge, parseReference, requestTimeout, schemeFor } from "../../src/package/oci/registry.js";
import { pipTargetArgs, pythonVersionFor } from "../../src/package/oci/build.js";
import { chooseBuilder } from "../../src/package/oci/choose.js";
import { dockerfileFor } from "../../src/package/image.js";
import { writeTree } from "../helpers/tree.js";
import { fileTimeLimit } from "../helpers/limit.js";

fileTimeLimit(2, import.meta.url);

test("layers: the same files in another folder, written at another time, give the same bytes and digests; tar reads them back", () => {
  const files = { "train.py": "print('hi')\n", "pkg/util.py": "x = 1\n", "run.sh": "#!/bin/sh\n" };
  const one = writeTree(files, "oci-layer-a-");
  const two = writeTree(files, "oci-layer-b-");
  fs.chmodSync(path.join(one, "run.sh"), 0o755);
  fs.chmodSync(path.join(two, "run.sh"), 0o755);
  fs.utimesSync(path.join(two, "train.py"), new Date(2001, 1, 1), new Date(2001, 1, 1));
  const a = layerOf(folderEntries(one, "opt/ml/code"));
  const b = layerOf(folderEntries(two, "opt/ml/code"));
  assert.equal(a.digest, b.digest);
  assert.equal(a.diffId, b.diffId);
  assert.equal(a.digest, sha256(a.bytes));
  assert.equal(a.diffId, sha256(zlib.gunzipSync(a.bytes)), "the diffID is the digest of the uncompressed tar");
  assert.equal(a.bytes.readUInt32LE(4), 0, "no time in the gzip header");
  const listing = execFileSync("tar", ["-tvzf", "-"], { input: a.bytes, encoding: "utf8" });
  assert.match(listing, /-rwxr-xr-x root\/root +\d+ 1970-01-01 00:00 opt\/ml\/code\/run\.sh/);
  assert.deepEqual(
    listing
      .split("\n")
      .filter(Boolean)
      .map((line) => line.split(/\s+/).at(-1)),
    ["opt/", "opt/ml/", "opt/ml/code/", "opt/ml/code/pkg/", "opt/ml/code/pkg/util.py", "opt/ml/code/run.sh", "opt/ml/code/train.py"],
    "sorted, each folder before what it holds",
  );
  // A name longer than ustar holds goes in a pax header, and reads back whole.
  const long = `opt/${"d".repeat(120)}/file.txt`;
  assert.ok(
    execFileSync("tar", ["-tf", "-"], { input: tarOf([{ path: long, kind: "file", mode: 0o644, bytes: Buffer.from("x") }]), encoding: "utf8" }).includes(long),
  );
});

test("image: appended layers and config edits are pure and fixed in time; the manifest is Docker v2 schema 2 with OCI gzip layers re-typed", () => {
  const base = {
    config: {
      architecture: "amd64",
      os: "linux",
      config: { Env: ["PATH=/usr/bin", "PYTHON_VERSION=3.11.9"], Cmd: ["python3"] },
      rootfs: { type: "layers", diff_ids: ["sha256:b"] },
    },
    layers: [{ digest: "sha256:a", diffId: "sha256:b", size: 10, mediaType: MEDIA.ociLayerGzip, open: () => Promise.reject(new Error("not read")) }],
  };
  const code = layerOf([{ path: "opt/ml/code/train.py", kind: "file", mode: 0o644, bytes: Buffer.from("print(1)\n") }]);
  const image = editConfig(append(base, { layer: code, createdBy: "code" }), {
    env: { PATH: "/x", A: "1" },
    entrypoint: ["python3", "e.py"],
    workingDir: "/opt/ml/code",
  });
  assert.deepEqual(base.config.config.Env, ["PATH=/usr/bin", "PYTHON_VERSION=3.11.9"], "the base is untouched");
  assert.deepEqual(image.config.config!.Env, ["PATH=/x", "PYTHON_VERSION=3.11.9", "A=1"]);
  assert.equal(image.config.config!.Cmd, null, "ENTRYPOINT resets the inherited CMD, as Docker's does");
  assert.deepEqual(image.config.rootfs!.diff_ids, ["sha256:b", code.diffId]);
  assert.equal(image.config.created, "1970-01-01T00:00:00Z");
  const config = configBytes(image.config);
  assert.equal(sha256(config), sha256(configBytes(structuredClone(image.config))), "the config serialises the same every time");
  const manifest = JSON.parse(dockerManifest(image, config, "base").toString()) as {
    mediaType: string;
    config: { digest: string };
    layers: { mediaType: string }[];
  };
  assert.equal(manifest.mediaType, MEDIA.dockerManifest);
  assert.equal(manifest.config.digest, sha256(config));
  assert.deepEqual(
    manifest.layers.map((layer) => layer.mediaType),
    [MEDIA.dockerLayer, MEDIA.dockerLayer],
  );
});

test("media types: OCI gzip → Docker gzip with the same blob, foreign kept, zstd and uncompressed refused with a clear error", () => {
  assert.equal(dockerLayerType(MEDIA.ociLayerGzip, "b"), MEDIA.dockerLayer);
  assert.equal(dockerLayerType(MEDIA.dockerLayer, "b"), MEDIA.dockerLayer);
  assert.equal(dockerLayerType(MEDIA.dockerForeignLayer, "b"), MEDIA.dockerForeignLayer);
  for (const type of [MEDIA.ociLayerZstd, MEDIA.ociLayer])
    assert.throws(
      () => dockerLayerType(type, "reg/base:1"),
      (err: Error) =>
        err instanceof UserError &&
        err.message.includes(type) &&
        err.message.includes("reg/base:1") &&
        /config\.builder=docker/.test((err as UserError).hint ?? ""),
    );
});

test("manifests and indexes: Docker and OCI read as one, an index resolved to linux/amd64, another platform only a clear error", () => {
  const index = parseManifest(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        manifests: [
          { mediaType: MEDIA.ociManifest, digest: "sha256:arm", size: 1, platform: { os: "linux", architecture: "arm64" } },
          { mediaType: MEDIA.ociManifest, digest: "sha256:amd", size: 1, platform: { os: "linux", architecture: "amd64" } },
        ],
      }),
    ),
    null,
  );
  assert.equal(index.mediaType, MEDIA.ociIndex, "an index without a mediaType is known by its manifests");
  assert.ok(isIndex(index));
  assert.equal(pickPlatform(index, "b").digest, "sha256:amd");
  const list = parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.dockerList, manifests: [] })), null);
  assert.ok(isIndex(list));
  const manifest = parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, config: {}, layers: [] })), `${MEDIA.ociManifest}; charset=utf-8`);
  assert.equal(manifest.mediaType, MEDIA.ociManifest, "the Content-Type names a manifest without a mediaType");
  assert.ok(!isIndex(manifest));
  assert.throws(
    () =>
      pickPlatform({ manifests: [{ mediaType: MEDIA.ociManifest, digest: "sha256:arm", size: 1, platform: { os: "linux", architecture: "arm64" } }] }, "b:1"),
    (err: Error) => err instanceof UserError && /no linux\/amd64 image \(it has linux\/arm64\)/.test(err.message),
  );
  assert.throws(() => parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 1 })), null), UserError);
  assert.throws(() => parseManifest(Buffer.from("<html>"), null), UserError);
});

test("references, schemes, challenges and time limits", () => {
  assert.deepEqual(parseReference("python:3.11-slim"), { host: "registry-1.docker.io", repository: "library/python", tag: "3.11-slim" });
  assert.deepEqual(parseReference("127.0.0.1:5000/a/b@sha256:" + "0".repeat(64)), {
    host: "127.0.0.1:5000",
    repository: "a/b",
    digest: "sha256:" + "0".repeat(64),
  });
  assert.deepEqual(parseReference("localhost/x"), { host: "localhost", repository: "x", tag: "latest" });
  assert.throws(() => parseReference("Bad Name"), UserError);
  assert.equal(schemeFor("127.0.0.1:5000"), "http");
  assert.equal(schemeFor("127.3.2.1"), "http");
  assert.equal(schemeFor("[::1]:5000"), "http");
  assert.equal(schemeFor("localhost:1"), "http");
  assert.equal(schemeFor("registry.example:5000"), "https");
  assert.equal(schemeFor("registry.example:5000", ["registry.example:5000"]), "http");
  assert.equal(schemeFor("128.0.0.1"), "https");
  // distribution's token spec (distribution.github.io/distribution/spec/auth/token/): the challenge's realm, service and scope.
  assert.deepEqual(parseChallenge('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"'), {
    scheme: "bearer",
    params: { realm: "https://auth.example/token", service: "registry.example", scope: "repository:a/b:pull,push" },
  });
  assert.deepEqual(parseChallenge('Basic realm="test"'), { scheme: "basic", params: { realm: "test" } });
  assert.equal(requestTimeout(60_000), 60_000);
  assert.equal(requestTimeout(60_000, 80 * 1024 * 1024 + 1), 60_000 + 81_000, "a second more per MiB moved");
});

test("pip's arguments: wheels only, for manylinux x86_64 and the image's Python; the version from config.python_version or the base's PYTHON_VERSION", () => {
  const args = pipTargetArgs("/r.txt", "/t", "3.11");
  assert.ok(args.includes("--only-binary=:all:"));
  assert.deepEqual(args.slice(args.indexOf("--python-version"), args.indexOf("--python-version") + 2), ["--python-version", "3.11"]);
  assert.ok(args.includes("manylinux2014_x86_64"));
  assert.equal(pythonVersionFor({ config: { Env: ["PYTHON_VERSION=3.12.4"] } }, undefined, "b"), "3.12");
  assert.equal(pythonVersionFor({ config: { Env: ["PYTHON_VERSION=3.12.4"] } }, "3.10", "b"), "3.10");
  assert.throws(
    () => pythonVersionFor({ config: { Env: [] } }, undefined, "reg/base:1"),
    (err: Error) => err instanceof UserError && /config\.python_version/.test(`${err.message} ${(err as UserError).hint ?? ""}`),
  );
  assert.throws(() => pythonVersionFor({}, "three", "b"), UserError);
});

test("config.builder=auto: oci unless the artifact needs Docker (environment.yml, apt.txt, its own Dockerfile unlike the generated one); oci refuses those clearly", async () => {
  const spec = (files: Record<string, string>) =>
    buildSpec({ artifact: "train.py", backend: "local" }, writeTree({ "train.py": "print(1)\n", ...files }, "oci-choose-"));
  const base = "python:3.11-slim";
  assert.deepEqual(chooseBuilder(await spec({ "requirements.txt": "numpy\n" }), "auto", base), { builder: "oci" });
  assert.equal(chooseBuilder(await spec({}), "docker", base).builder, "docker");
  assert.match(chooseBuilder(await spec({ "environment.yml": "name: x\ndependencies: [python=3.11]\n" }), "auto", base).reason ?? "", /conda/);
  assert.match(chooseBuilder(await spec({ "apt.txt": "libgomp1\n" }), "auto", base).reason ?? "", /apt\.txt/);
  assert.match(chooseBuilder(await spec({ Dockerfile: "FROM scratch\n" }), "auto", base).reason ?? "", /own Dockerfile/);
  // The generated Dockerfile, left beside the artifact, needs no Docker.
  const generated = await spec({});
  fs.writeFileSync(path.join(generated.artifact.dir, "Dockerfile"), dockerfileFor(generated, base, { apt: false }));
  assert.deepEqual(chooseBuilder(await buildSpec({ artifact: "train.py", backend: "local" }, generated.artifact.dir), "auto", base), { builder: "oci" });
  const needsApt = await spec({ "apt.txt": "libgomp1\n" });
  assert.throws(
    () => chooseBuilder(needsApt, "oci", base),
    (err: Error) => err instanceof UserError && /config\.builder=oci cannot build this artifact/.test(err.message),
  );
});
