/**
 * `fetch` from a local S3 server (s3rver, in its own process), compared in one run with what a
 * user would otherwise use on the same object:
 *   - `aws s3 cp` (the AWS CLI) — target: alekseylearn's throughput ≥ 1.5 ×;
 *   - a single-stream `curl` of the object — target: fetch (extracted) ≤ 1.2 × its time;
 * and the peak memory of `fetch` for two object sizes, which must not grow with the size.
 * BENCH_SIZE_MIB sets the large size (default 1024). Run with `npm run bench`; it asserts nothing.
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

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

/** Wall seconds and peak resident memory (MiB) of a command, measured by GNU time. Dirty pages of earlier runs are flushed first, so no run pays for another's writes. */
function measure(command: string, args: string[], cwd: string): { seconds: number; peakMiB: number } {
  execFileSync("sync");
  const start = process.hrtime.bigint();
  const result = spawnSync("/usr/bin/time", ["-f", "%M", command, ...args], { cwd, env, encoding: "utf8" });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (result.status !== 0) throw new Error(`${command} ${args.join(" ")} failed: ${result.stderr}`);
  const peakKiB = Number(result.stderr.trim().split("\n").pop());
  return { seconds, peakMiB: peakKiB / 1024 };
}

function fresh(name: string): string {
  const dir = path.join(work, name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir);
  return dir;
}

try {
  const bytes = makeModel(sizeMiB, "large");
  const small = makeModel(Math.max(16, sizeMiB / 8), "small");
  const url = `s3://bench/large/model.tar.gz`;

  const presigned = execFileSync("aws", ["--endpoint-url", endpoint, "s3", "presign", url], { env, encoding: "utf8" }).trim();
  const runs = {
    awsCli: () => measure("aws", ["--endpoint-url", endpoint, "s3", "cp", url, "model.tar.gz", "--only-show-errors"], fresh("aws")),
    curl: () => measure("curl", ["-sS", "-f", "-o", "model.tar.gz", presigned], fresh("curl")),
    download: () => measure(process.execPath, [cli, "fetch", url, "--no-extract"], fresh("download")),
    extracted: () => measure(process.execPath, [cli, "fetch", url], fresh("extract")),
    smallFetch: () => measure(process.execPath, [cli, "fetch", "s3://bench/small/model.tar.gz"], fresh("small")),
  };
  // Two rounds, the tools taking turns; each tool's faster run counts.
  const best: Partial<Record<keyof typeof runs, { seconds: number; peakMiB: number }>> = {};
  for (let round = 0; round < 2; round++) {
    for (const [name, run] of Object.entries(runs) as Array<[keyof typeof runs, () => { seconds: number; peakMiB: number }]>) {
      const result = run();
      if (!best[name] || result.seconds < best[name]!.seconds) best[name] = result;
    }
  }
  const { awsCli, curl, download, extracted, smallFetch } = best as Required<typeof best>;

  const mibps = (seconds: number): string => `${(bytes / 1024 / 1024 / seconds).toFixed(0)} MiB/s`;
  console.log(`fetch from s3rver (loopback), ${(bytes / 1024 / 1024).toFixed(0)} MiB model.tar.gz, ${os.cpus().length} cores, best of 2 alternating rounds`);
  console.log("");
  console.log("what                                       time      throughput   peak memory");
  console.log(
    `aws s3 cp                                  ${awsCli.seconds.toFixed(2).padStart(6)} s  ${mibps(awsCli.seconds).padStart(11)}  ${awsCli.peakMiB.toFixed(0)} MiB`,
  );
  console.log(
    `curl, one stream                           ${curl.seconds.toFixed(2).padStart(6)} s  ${mibps(curl.seconds).padStart(11)}  ${curl.peakMiB.toFixed(0)} MiB`,
  );
  console.log(
    `alekseylearn fetch --no-extract            ${download.seconds.toFixed(2).padStart(6)} s  ${mibps(download.seconds).padStart(11)}  ${download.peakMiB.toFixed(0)} MiB`,
  );
  console.log(
    `alekseylearn fetch (download + extract)    ${extracted.seconds.toFixed(2).padStart(6)} s  ${mibps(extracted.seconds).padStart(11)}  ${extracted.peakMiB.toFixed(0)} MiB`,
  );
  console.log(
    `alekseylearn fetch, ${(small / 1024 / 1024).toFixed(0)} MiB object            ${smallFetch.seconds.toFixed(2).padStart(6)} s  ${"".padStart(11)}  ${smallFetch.peakMiB.toFixed(0)} MiB`,
  );
  console.log("");
  console.log(`throughput vs aws s3 cp (download only):    ${(awsCli.seconds / download.seconds).toFixed(2)} ×   target ≥ 1.5 ×`);
  console.log(`fetch extracted vs curl (time):             ${(extracted.seconds / curl.seconds).toFixed(2)} ×   target ≤ 1.2 ×`);
  console.log(`peak memory, large vs small object:         ${(extracted.peakMiB / smallFetch.peakMiB).toFixed(2)} ×   target: flat (≈ 1 ×)`);
} finally {
  server.kill();
  fs.rmSync(work, { recursive: true, force: true });
}
