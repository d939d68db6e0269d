/** Job names: `<artifact-stem>-<UTC yyyymmdd-hhmmss>-<4 random chars>`, valid on every backend. */
import { randomBytes } from "node:crypto";

/** Longest job name any backend accepts (SageMaker's limit). */
export const MAX_JOB_NAME = 63;
const ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";

/** Lower-case `text` to `[a-z0-9-]`, collapsing runs of anything else into one hyphen. */
export function slugify(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "");
}

function stamp(date: Date): string {
  const iso = date.toISOString(); // 2026-11-26T18:42:14.123Z
  return `${iso.slice(0, 10).replace(/-/g, "")}-${iso.slice(11, 19).replace(/:/g, "")}`;
}

/** A fresh job name for an artifact stem at `now`; the stem is shortened to keep the name within 63 characters. */
export function makeJobName(stem: string, now: Date = new Date(), random: () => Buffer = () => randomBytes(4)): string {
  const suffix = `-${stamp(now)}-${[...random()].map((byte) => ALPHABET[byte % ALPHABET.length]).join("")}`;
  let base = slugify(stem) || "job";
  if (!/^[a-z]/.test(base)) base = `job-${base}`;
  base = base.slice(0, MAX_JOB_NAME - suffix.length).replace(/-+$/, "");
  return base + suffix;
}

/** True when `name` is a job name every backend accepts. */
export function isValidJobName(name: string): boolean {
  return name.length <= MAX_JOB_NAME && /^[a-z][a-z0-9-]*[a-z0-9]$/.test(name);
}
