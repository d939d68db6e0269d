/** What the fetch benchmarks share: timing a command with its peak memory, fresh folders, and the best of alternating rounds. */
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

/** One timed run: wall seconds and peak memory (MiB). */
export interface Run {
  seconds: number;
  peakMiB: number;
}

/**
 * Wall seconds and peak memory of a command, by GNU time; dirty pages of earlier runs flushed first. Started without
 * blocking, so a test server running in this process keeps answering.
 */
export async function measure(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<Run> {
  execFileSync("sync");
  const start = process.hrtime.bigint();
  const child = spawn("/usr/bin/time", ["-f", "%M", command, ...args], { cwd, env, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (code !== 0) throw new Error(`${command} ${args.join(" ")} failed: ${stderr}`);
  return { seconds, peakMiB: Number(stderr.trim().split("\n").pop()) / 1024 };
}

/** An empty folder `name` under `work`. */
export function freshFolder(work: string, name: string): string {
  const dir = path.join(work, name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir);
  return dir;
}

/** Rounds in which the tools take turns; each tool's faster run counts. */
export async function bestOf<K extends string>(runs: Record<K, () => Promise<Run>>, rounds: number): Promise<Record<K, Run>> {
  const best: Partial<Record<K, Run>> = {};
  for (let round = 0; round < rounds; round++) {
    for (const [name, run] of Object.entries(runs) as Array<[K, () => Promise<Run>]>) {
      const result = await run();
      if (!best[name] || result.seconds < best[name]!.seconds) best[name] = result;
    }
  }
  return best as Record<K, Run>;
}

/** One line of the table: time, throughput over `bytes` (when given) and peak memory. */
export function row(what: string, run: Run, bytes?: number): string {
  const throughput = bytes === undefined ? "" : `${(bytes / 1024 / 1024 / run.seconds).toFixed(0)} MiB/s`;
  return `${what.padEnd(43)}${run.seconds.toFixed(2).padStart(6)} s  ${throughput.padStart(11)}  ${run.peakMiB.toFixed(0)} MiB`;
}
