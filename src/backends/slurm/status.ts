/**
 * How a Slurm job goes, from one remote command: `squeue` while Slurm holds the job (its state, the reason it waits,
 * its nodes), else `sacct` where the cluster keeps accounting, else `scontrol show job` (kept for MinJobAge, 300 s by
 * default), and the exit-code file the job's script writes as its last step, which outlives them all.
 *
 * Formats, as Slurm 22.05 prints them (slurm.schedmd.com/squeue.html#OPT_format: %T the state in full, %r the reason,
 * %N the nodes; sacct.html: --parsable2 with `|`; scontrol.html: `-o` one line of KEY=VALUE), checked against the test
 * cluster's own output: `squeue --noheader --format=%T|%r|%N` prints `PENDING|Resources|` and `RUNNING|None|node[1-2]`;
 * with accounting off `sacct` prints only "Slurm accounting storage is disabled" on stderr.
 */
import type { JobState } from "../../jobs/job.js";
import { shellWord } from "./plan.js";
import { isHere, type Login } from "./remote.js";

/** Slurm's job states that are final (squeue.html, "JOB STATE CODES"). */
const FINAL = new Set([
  "COMPLETED",
  "FAILED",
  "CANCELLED",
  "TIMEOUT",
  "NODE_FAIL",
  "OUT_OF_MEMORY",
  "PREEMPTED",
  "BOOT_FAIL",
  "DEADLINE",
  "SPECIAL_EXIT",
  "REVOKED",
]);

const SEPARATOR = "@@alekseylearn@@";

/** The remote command that reports on job `jobId` (its folder `jobDir`, its outputs under `output`), in sections. */
export function statusCommand(jobId: string, jobDir: string, output: string): string {
  const dir = shellWord(jobDir);
  const out = shellWord(output);
  const id = shellWord(jobId);
  return [
    `q=$(squeue --noheader --states=all --jobs=${id} --format='%T|%r|%N' 2>/dev/null); echo "$q"`,
    `echo ${SEPARATOR}`,
    `if [ -z "$q" ]; then sacct --noheader --parsable2 --allocations --jobs=${id} --format=State,ExitCode,NodeList 2>/dev/null; fi`,
    `echo ${SEPARATOR}`,
    `if [ -z "$q" ]; then scontrol show job -o ${id} 2>/dev/null; fi`,
    `echo ${SEPARATOR}`,
    `cat ${dir}/exit-code 2>/dev/null`,
    `echo ${SEPARATOR}`,
    `cat ${dir}/failure 2>/dev/null`,
    `echo ${SEPARATOR}`,
    `if [ -e ${dir}/stop-requested ]; then echo stop; fi`,
    `echo ${SEPARATOR}`,
    `for f in model.tar.gz output.tar.gz; do if [ -e ${out}/$f ]; then echo $f; fi; done`,
  ].join("; ");
}

/** What the report says, in the record's terms. */
export interface SlurmStatus {
  state: JobState;
  /** Slurm's own state (PENDING, RUNNING, COMPLETED, …), when Slurm still knows the job. */
  slurmState?: string;
  /** Why a pending job waits (Resources, Priority, …). */
  queueReason?: string;
  nodes?: string;
  exitCode?: number;
  reason?: string;
  model: boolean;
  output: boolean;
}

/** The report of `statusCommand` read. */
export function readStatus(text: string): SlurmStatus {
  const [queue = "", accounting = "", control = "", exitFile = "", failureFile = "", stopFile = "", outputs = ""] = text.split(`${SEPARATOR}\n`);
  const stopRequested = stopFile.trim() === "stop";
  const failureText = failureFile.trim().split("\n").filter(Boolean).join(" ");
  const files = outputs.split("\n");
  const common = { model: files.includes("model.tar.gz"), output: files.includes("output.tar.gz") };

  let slurmState: string | undefined;
  let queueReason: string | undefined;
  let nodes: string | undefined;
  const queued = queue.trim().split("\n")[0];
  if (queued) {
    const [state = "", reason = "", list = ""] = queued.split("|");
    slurmState = state;
    queueReason = reason && reason !== "None" ? reason : undefined;
    nodes = list || undefined;
  } else if (accounting.trim()) {
    const [state = "", , list = ""] = accounting.trim().split("\n")[0]!.split("|");
    slurmState = state.split(" ")[0]; // "CANCELLED by 0"
    nodes = list && list !== "None assigned" ? list : undefined;
  } else if (control.trim()) {
    const fields = Object.fromEntries(
      control
        .trim()
        .split(/\s+/)
        .map((token) => [token.slice(0, token.indexOf("=")), token.slice(token.indexOf("=") + 1)]),
    );
    slurmState = fields.JobState;
    queueReason = fields.Reason && fields.Reason !== "None" ? fields.Reason : undefined;
    nodes = fields.NodeList && fields.NodeList !== "(null)" ? fields.NodeList : undefined;
  }
  const known = { ...(slurmState ? { slurmState } : {}), ...(nodes ? { nodes } : {}) };

  // The script's exit code is written last: once it is there, the job has ended, whatever Slurm still says.
  const exit = exitFile.trim();
  if (/^-?\d+$/.test(exit)) {
    const exitCode = Number(exit);
    if (stopRequested) return { ...common, ...known, state: "stopped", exitCode, reason: "stopped by request" };
    if (exitCode === 0) return { ...common, ...known, state: "completed", exitCode };
    return { ...common, ...known, state: "failed", exitCode, reason: failureText || `the training process exited with code ${exitCode}` };
  }
  if (slurmState && FINAL.has(slurmState)) {
    // Ended without its script's last step: cancelled, out of time or memory, or a node lost.
    if (stopRequested || slurmState === "CANCELLED")
      return { ...common, ...known, state: "stopped", reason: stopRequested ? "stopped by request" : "cancelled with scancel" };
    const why: Record<string, string> = {
      TIMEOUT: "Slurm ended the job at its time limit (config.max_runtime, or the partition's)",
      OUT_OF_MEMORY: "the job ran out of memory (config.mem)",
      NODE_FAIL: "a node of the job failed",
      PREEMPTED: "the job was preempted",
    };
    return { ...common, ...known, state: "failed", reason: failureText || why[slurmState] || `Slurm reports the job ${slurmState}` };
  }
  if (slurmState === "PENDING" || slurmState === "REQUEUED") return { ...common, ...known, state: "queued", ...(queueReason ? { queueReason } : {}) };
  if (slurmState) return { ...common, ...known, state: "running" };
  return { ...common, state: "failed", reason: "Slurm no longer knows the job, and its script left no exit code (it was killed before its end)" };
}

/** Where a job's archive is, as the record keeps it: slurm://HOST/PATH (the ssh_config file, when one is used, as ?ssh_config=FILE). */
export function outputLocation(login: Login, file: string): string {
  const host = isHere(login) ? "localhost" : login.host;
  return `slurm://${host}${file}${login.sshConfig ? `?ssh_config=${encodeURIComponent(login.sshConfig)}` : ""}`;
}

/** The login node and path of a slurm:// location. */
export function parseOutputLocation(location: string): { login: Login; path: string } {
  const match = /^slurm:\/\/([^/]+)(\/[^?]*)(?:\?ssh_config=(.*))?$/.exec(location);
  if (!match) throw new Error(`not a slurm:// location: ${location}`);
  return { login: { host: match[1]!, ...(match[3] ? { sshConfig: decodeURIComponent(match[3]) } : {}) }, path: match[2]! };
}
