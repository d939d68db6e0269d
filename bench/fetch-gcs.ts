/**
 * `fetch gs://…` from the Cloud Storage test server (test/servers/gcs-fake.ts, in a process of its
 * own), compared in one run with a single-stream `curl` of the same object's media from that server,
 * and with the floor (the slower of that curl and `gzip -dc` of the archive): `gcloud storage cp`
 * cannot run here (no Google endpoint). Targets: download only ≥ 1 × curl's throughput (the server
 * is in JavaScript and serves each range from one file, so curl's one stream is what it gives);
 * download + extract ≤ 1.3 × the floor. BENCH_SIZE_MIB sets the size (default 1024); BENCH_ROUNDS
 * the alternating rounds (default 2). Run with `npm run bench`; it asserts nothing.
 */
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { bestOf, freshFolder, measure as measureRun, row, type Run } from "./measure.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "..", "..");
const cli = path.join(repo, "dist", "src", "cli", "main.js");
const sizeMiB = Number(process.env.BENCH_SIZE_MIB ?? 1024);
const rounds = Number(process.env.BENCH_ROUNDS ?? 2);
const cache = process.env.ALEKSEYLEARN_TEST_CACHE ?? path.join(repo, ".cache", "test");
const work = fs.mkdtempSync(path.join(os.tmpdir(), "alekseylearn-bench-gcs-"));

// The test server in its own process, so that it is not slowed by this one waiting, and prints its URL.
const serverScript = path.join(work, "server.mjs");
fs.writeFileSync(
  serverScript,
  `import { startGcsFake } from ${JSON.stringify(path.join(repo, "dist", "test", "servers", "gcs-fake.js"))};
import { loadDocument } from ${JSON.stringify(path.join(repo, "dist", "test", "servers", "google-discovery.js"))};
const fake = await startGcsFake(loadDocument(${JSON.stringify(cache)}, "storage.v1"), ["bench"], { root: ${JSON.stringify(path.join(work, "root"))} });
console.log(fake.url);
`,
);
const server = spawn(process.execPath, [serverScript], { stdio: ["ignore", "pipe", "inherit"] });
const url = await new Promise<string>((resolve) => server.stdout!.once("data", (chunk: Buffer) => resolve(chunk.toString().trim())));
const env = { ...process.env, STORAGE_EMULATOR_HOST: url, GOOGLE_CLOUD_PROJECT: "bench", XDG_STATE_HOME: path.join(work, "state") };

const measure = (command: string, args: string[], cwd: string): Promise<Run> => measureRun(command, args, cwd, env);
const fresh = (name: string): string => freshFolder(work, name);

try {
  // The object is a file under the server's root (objects are files there); its metadata is computed on first look.
  const dir = path.join(work, "model");
  fs.mkdirSync(dir);
  execFileSync("sh", ["-c", `head -c ${sizeMiB}M /dev/urandom > ${dir}/weights.bin`]);
  const archive = path.join(work, "root", "bench", "runs", "model.tar.gz");
  fs.mkdirSync(path.dirname(archive), { recursive: true });
  execFileSync("tar", ["-C", dir, "-c", "--use-compress-program=gzip -1", "-f", archive, "weights.bin"]);
  fs.rmSync(dir, { recursive: true });
  const bytes = fs.statSync(archive).size;
  const location = "gs://bench/runs/model.tar.gz";
  const media = `${url}/storage/v1/b/bench/o/${encodeURIComponent("runs/model.tar.gz")}?alt=media`;
  await measure(process.execPath, [cli, "fetch", location, "--no-extract"], fresh("warm")); // the server hashes the object once

  const runs = {
    curl: () => measure("curl", ["-sS", "-f", "-o", "model.tar.gz", media], fresh("curl")),
    gunzip: () => measure("sh", ["-c", `gzip -dc ${archive} > /dev/null`], fresh("gunzip")),
    download: () => measure(process.execPath, [cli, "fetch", location, "--no-extract"], fresh("download")),
    extracted: () => measure(process.execPath, [cli, "fetch", location], fresh("extract")),
  };
  const { curl, gunzip, download, extracted } = await bestOf(runs, rounds);
  const floor = Math.max(curl.seconds, gunzip.seconds);
  console.log(
    `fetch from the Cloud Storage test server (loopback), ${(bytes / 1024 / 1024).toFixed(0)} MiB model.tar.gz, ${os.cpus().length} cores, best of ${rounds} alternating rounds`,
  );
  console.log("");
  console.log("what                                         time      throughput   peak memory");
  console.log(row("curl, one stream", curl, bytes));
  console.log(row("gzip -dc of the archive (local file)", gunzip, bytes));
  console.log(row("alekseylearn fetch --no-extract", download, bytes));
  console.log(row("alekseylearn fetch (download + extract)", extracted, bytes));
  console.log("");
  const throughput = curl.seconds / download.seconds;
  const vsFloor = extracted.seconds / floor;
  console.log(`download only, throughput vs curl:               ${throughput.toFixed(2)} ×   target ≥ 1 ×    ${throughput >= 1 ? "met" : "NOT met"}`);
  console.log(`download + extract, time vs the floor:           ${vsFloor.toFixed(2)} ×   target ≤ 1.3 ×  ${vsFloor <= 1.3 ? "met" : "NOT met"}`);
} finally {
  server.kill();
  fs.rmSync(work, { recursive: true, force: true });
}
