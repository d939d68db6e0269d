/**
 * `fetch` from a local S3 server (s3rver, in its own process), compared in one run with what a
 * user would otherwise do with the same object:
 *   - `aws s3 cp` (the AWS CLI), download only — target: alekseylearn's throughput ≥ 1.2 ×;
 *   - `aws s3 cp` then `tar xzf`, by hand — target: fetch (download + extract) ≤ 0.7 × its time;
 *   - the floor: the slower of a single-stream `curl` of the object and `gzip -dc` of it (what
 *     neither the network nor decompression can beat) — target: fetch ≤ 1.3 × it;
 * and the peak memory of `fetch` for two object sizes, which must not grow with the size.
 * BENCH_SIZE_MIB sets the large size (default 1024). Run with `npm run bench`; it asserts nothing.
 * Each tool's best of BENCH_ROUNDS (default 2) alternating rounds counts: on a shared machine the
 * ratios of one run are what to read, and a second run tells how much they move.
 */
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { bestOf, freshFolder, measure as measureRun, row, type Run } from "./measure.js";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const cli = path.join(repo, "dist", "src", "cli", "main.js");
const sizeMiB = Number(process.env.BENCH_SIZE_MIB ?? 1024);
const work = fs.mkdtempSync(path.join(os.tmpdir(), "alekseylearn-bench-s3-"));

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

const port = await freePort();
const endpoint = `http://127.0.0.1:${port}`;
const server = spawn(
  path.join(repo, "node_modules", ".bin", "s3rver"),
  ["-d", path.join(work, "data"), "-a", "127.0.0.1", "-p", String(port), "-s", "--configure-bucket", "bench"],
  { stdio: "ignore" },
);
fs.mkdirSync(path.join(work, "data"));
const env = {
  ...process.env,
  AWS_ACCESS_KEY_ID: "S3RVER",
  AWS_SECRET_ACCESS_KEY: "S3RVER",
  AWS_REGION: "us-east-1",
  AWS_ENDPOINT_URL: endpoint,
  AWS_EC2_METADATA_DISABLED: "true",
  XDG_STATE_HOME: path.join(work, "state"),
};
for (let i = 0; i < 100; i++) {
  try {
    await fetch(endpoint);
    break;
  } catch {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A model.tar.gz of `mib` MiB of incompressible weights, uploaded with the AWS CLI as `key`. */
function makeModel(mib: number, key: string): number {
  const dir = path.join(work, `model-${mib}`);
  fs.mkdirSync(dir);
  execFileSync("sh", ["-c", `head -c ${mib}M /dev/urandom > ${dir}/weights.bin`]);
  const archive = path.join(work, `${key}.tar.gz`);
  execFileSync("tar", ["-C", dir, "-c", "--use-compress-program=gzip -1", "-f", archive, "weights.bin"]);
  fs.rmSync(dir, { recursive: true });
  execFileSync("aws", ["--endpoint-url", endpoint, "s3", "cp", archive, `s3://bench/${key}/model.tar.gz`, "--only-show-errors"], { env });
  const size = fs.statSync(archive).size;
  fs.rmSync(archive);
  return size;
}

const measure = (command: string, args: string[], cwd: string): Promise<Run> => measureRun(command, args, cwd, env);
const fresh = (name: string): string => freshFolder(work, name);

try {
  const bytes = makeModel(sizeMiB, "large");
  const small = makeModel(Math.max(16, sizeMiB / 8), "small");
  const url = `s3://bench/large/model.tar.gz`;

  const presigned = execFileSync("aws", ["--endpoint-url", endpoint, "s3", "presign", url], { env, encoding: "utf8" }).trim();
  // The archive on disk, for gzip -dc (decompression alone, from the page cache).
  const local = path.join(work, "local.tar.gz");
  execFileSync("curl", ["-sS", "-f", "-o", local, presigned]);
  const runs = {
    awsCli: () => measure("aws", ["--endpoint-url", endpoint, "s3", "cp", url, "model.tar.gz", "--only-show-errors"], fresh("aws")),
    byHand: () =>
      measure("sh", ["-c", `aws --endpoint-url ${endpoint} s3 cp ${url} model.tar.gz --only-show-errors && tar xzf model.tar.gz`], fresh("by-hand")),
    curl: () => measure("curl", ["-sS", "-f", "-o", "model.tar.gz", presigned], fresh("curl")),
    gunzip: () => measure("sh", ["-c", `gzip -dc ${local} > /dev/null`], fresh("gunzip")),
    download: () => measure(process.execPath, [cli, "fetch", url, "--no-extract"], fresh("download")),
    extracted: () => measure(process.execPath, [cli, "fetch", url], fresh("extract")),
    smallFetch: () => measure(process.execPath, [cli, "fetch", "s3://bench/small/model.tar.gz"], fresh("small")),
  };
  const rounds = Number(process.env.BENCH_ROUNDS ?? 2);
  const { awsCli, byHand, curl, gunzip, download, extracted, smallFetch } = await bestOf(runs, rounds);
  const floor = Math.max(curl.seconds, gunzip.seconds);

  const verdict = (ok: boolean): string => (ok ? "met" : "NOT met");
  console.log(
    `fetch from s3rver (loopback), ${(bytes / 1024 / 1024).toFixed(0)} MiB model.tar.gz, ${os.cpus().length} cores, best of ${rounds} alternating rounds`,
  );
  console.log("");
  console.log("what                                         time      throughput   peak memory");
  console.log(row("aws s3 cp", awsCli, bytes));
  console.log(row("aws s3 cp, then tar xzf (by hand)", byHand));
  console.log(row("curl, one stream", curl, bytes));
  console.log(row("gzip -dc of the archive (local file)", gunzip));
  console.log(row("alekseylearn fetch --no-extract", download, bytes));
  console.log(row("alekseylearn fetch (download + extract)", extracted, bytes));
  console.log(row(`alekseylearn fetch, ${(small / 1024 / 1024).toFixed(0)} MiB object`, smallFetch));
  console.log("");
  const throughput = awsCli.seconds / download.seconds;
  const vsHand = extracted.seconds / byHand.seconds;
  const vsFloor = extracted.seconds / floor;
  const memory = extracted.peakMiB / smallFetch.peakMiB;
  console.log(`download only, throughput vs aws s3 cp:          ${throughput.toFixed(2)} ×   target ≥ 1.2 ×  ${verdict(throughput >= 1.2)}`);
  console.log(`download + extract, time vs aws s3 cp + tar xzf: ${vsHand.toFixed(2)} ×   target ≤ 0.7 ×  ${verdict(vsHand <= 0.7)}`);
  console.log(
    `download + extract, time vs the floor (${(curl.seconds >= gunzip.seconds ? "curl" : "gzip -dc").padEnd(8)}): ${vsFloor.toFixed(2)} ×   target ≤ 1.3 ×  ${verdict(vsFloor <= 1.3)}`,
  );
  console.log(
    `peak memory, large vs small object:              ${memory.toFixed(2)} ×   target: flat (≈ 1 ×)  ${extracted.peakMiB.toFixed(0)} vs ${smallFetch.peakMiB.toFixed(0)} MiB`,
  );
} finally {
  server.kill();
  fs.rmSync(work, { recursive: true, force: true });
}
