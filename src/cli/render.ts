/** Turning records into text for people: durations, tables, job summaries. */
import type { JobRecord } from "../jobs/records.js";

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
  const line = (cells: readonly string[]): string => cells.map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  ").trimEnd();
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
    ["Status", job.provider?.secondary ? `${job.provider.secondary}${job.provider.message ? ` (${job.provider.message})` : ""}` : undefined],
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
    ["Page", job.provider?.url],
  ];
  return fields.filter(([, value]) => value).map(([key, value]) => `${(key + ":").padEnd(13)}${value}`).join("\n") + "\n";
}
