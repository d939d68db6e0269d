/** Turning records into text for people: durations, tables, job summaries. */
import type { SubmissionPlan } from "../backends/types.js";
import type { JobRecord } from "../jobs/records.js";
import { printable } from "../text.js";

/** Seconds as `4.2s`, `3m 05s` or `2h 07m`. */
export function formatDuration(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)}s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m}m ${String(Math.floor(seconds % 60)).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, "0")}m`;
}

/** How long a job ran (or has been running, at `now`), when it has started. */
export function jobDuration(job: JobRecord, now: Date = new Date()): string {
  if (!job.startedAt) return "";
  const end = job.endedAt ? Date.parse(job.endedAt) : now.getTime();
  return formatDuration((end - Date.parse(job.startedAt)) / 1000);
}

/** Rows as aligned columns under a header. */
export function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => (row[i] ?? "").length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n") + "\n";
}

/** The `status` view of a job: one `field: value` line each. */
export function describeJob(job: JobRecord): string {
  const fields: Array<[string, string | undefined]> = [
    ["Job", job.name],
    ["Backend", job.backend],
    ["State", job.state],
    ["Reason", job.reason],
    ["Artifact", job.spec.artifact.dir ? `${job.spec.artifact.dir}/${job.spec.artifact.entry}` : undefined],
    ["Hosts", jobHosts(job)],
    ["Status", providerStatus(job)],
    ["Created", job.createdAt],
    ["Started", job.startedAt],
    ["Ended", job.endedAt],
    ["Duration", jobDuration(job) || undefined],
    ["Output", job.jobOutput],
    ["Model", job.model],
    ["Output data", job.output],
    ["Log", job.logFile],
    ["Billable", job.provider?.billableSeconds ? `${job.provider.billableSeconds} s` : undefined],
    ["Image", job.provider?.image],
    ["ARN", job.provider?.arn],
    ["Resource", job.provider?.resource],
    ["Page", job.provider?.url],
  ];
  return (
    fields
      .filter(([, value]) => value)
      // What a record says is data: its control characters are shown escaped, as archive names are, never acted on by the terminal.
      .map(([key, value]) => `${(key + ":").padEnd(13)}${printable(String(value))}`)
      .join("\n") + "\n"
  );
}

/** How many hosts a job runs on; 1 where its backend has no instance_count. */
export function hostCount(job: JobRecord): number {
  const count = job.spec.settings.instance_count;
  return typeof count === "number" && count > 1 ? count : 1;
}

/** A job's hosts by name: the nodes Slurm gave it (node[1-2], in its hostlist syntax; none while it waits), else SageMaker's names (algo-1 … algo-N). */
function hostNames(job: JobRecord, count: number): string {
  if (job.provider?.nodes) return job.provider.nodes;
  if (job.backend === "slurm") return "nodes not given yet";
  return count > 3 ? `algo-1 … algo-${count}` : Array.from({ length: count }, (_, index) => `algo-${index + 1}`).join(", ");
}

/** The `jobs` table's HOSTS cell: the count, and a multi-host job's hosts by name. */
export function hostsCell(job: JobRecord): string {
  const count = hostCount(job);
  return count > 1 ? `${count} (${hostNames(job, count)})` : "1";
}

/** The `jobs` table's STATE cell: the state, and why a job waits in its queue when the provider says (Slurm's reason: Priority, Resources). */
export function stateCell(job: JobRecord): string {
  return job.state === "queued" && job.provider?.queueReason ? `queued (${job.provider.queueReason})` : job.state;
}

/** A multi-host or torchrun job's hosts, as SageMaker names them (algo-1 … algo-N) or Slurm gave them, and its launch; undefined for a plain one-host job. */
export function jobHosts(job: JobRecord): string | undefined {
  const count = hostCount(job);
  const torchrun = job.spec.settings.distribution === "torchrun";
  if (count === 1 && !torchrun) return undefined;
  const names = hostNames(job, count);
  const processes = job.spec.settings.processes_per_host;
  return `${count} (${names})${torchrun ? `, torchrun with ${processes ?? "one per GPU (else 1)"} process${processes === 1 ? "" : "es"} per host` : ""}`;
}

/** The provider's own status of a job, with its message: SageMaker's secondary status, Vertex AI's JobState. */
function providerStatus(job: JobRecord): string | undefined {
  const status = job.provider?.secondary || (job.backend === "vertex" ? job.provider?.status : undefined);
  return status ? `${status}${job.provider?.message ? ` (${job.provider.message})` : ""}` : undefined;
}

/** A plan (`fit --dry-run`) for people: what would ship, the image, each request, and what was and was not checked. Long text values are cut; `--json` shows them whole. */
export function describePlan(plan: SubmissionPlan): string {
  const lines = [`Dry run of job ${plan.job} on the ${plan.backend} backend: nothing was created, built, uploaded or run.`, ""];
  const shown = plan.files.slice(0, 30);
  lines.push(`Files (${plan.files.length}):`, ...shown.map((file) => `  ${file}`));
  if (plan.files.length > shown.length) lines.push(`  … and ${plan.files.length - shown.length} more (--json lists them all)`);
  if (plan.image) lines.push("", `Image: on ${plan.image.base}, for ${plan.image.platform}`, ...plan.image.layers.map((layer) => `  ${layer}`));
  lines.push("", "Requests:");
  for (const { api, operation, request } of plan.requests) {
    lines.push(`  ${api} ${operation}`, ...compactJson(request, "    ").split("\n"));
  }
  if (plan.checks.done.length) lines.push("", "Checked:", ...plan.checks.done.map((check) => `  - ${check}`));
  if (plan.checks.skipped.length) lines.push("", "Not checked:", ...plan.checks.skipped.map((check) => `  - ${check}`));
  if (plan.placeholders.length) lines.push("", "Placeholders:", ...plan.placeholders.map((value) => `  - ${value}`));
  return lines.join("\n") + "\n";
}

/** JSON for reading: a list or object on one line when that line is short, else one member a line; long text cut. */
function compactJson(value: unknown, indent: string): string {
  const cut = (item: unknown): unknown =>
    typeof item === "string" && item.length > 200 ? `${item.slice(0, 120)}… (${item.length} characters; --json shows all)` : item;
  const render = (item: unknown, at: string): string => {
    const flat = JSON.stringify(item, (_key, inner: unknown) => cut(inner));
    if (flat === undefined || typeof item !== "object" || item === null || at.length + flat.length <= 100) return flat ?? "null";
    const inner = `${at}  `;
    if (Array.isArray(item)) return `[\n${item.map((element) => inner + render(element, inner)).join(",\n")}\n${at}]`;
    const entries = Object.entries(item as Record<string, unknown>).filter(([, member]) => member !== undefined);
    return `{\n${entries.map(([key, member]) => `${inner}${JSON.stringify(key)}: ${render(member, inner)}`).join(",\n")}\n${at}}`;
  };
  return indent + render(value, indent);
}
