/** Locations: a local path, `file://`, `s3://`, `gs://` or `kaggle://`, parsed once and compared as strings. */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { UserError } from "../errors.js";

/** URL schemes the tool understands; a local path has scheme "file". */
export const KNOWN_SCHEMES = ["file", "s3", "gs", "kaggle"] as const;
export type Scheme = (typeof KNOWN_SCHEMES)[number];

/** The scheme of `text` if it is a URL (`s3://…`), else undefined (a local path). */
export function schemeOf(text: string): string | undefined {
  return /^([a-z][a-z0-9+.-]*):\/\//i.exec(text)?.[1]?.toLowerCase();
}

/**
 * A location in its one canonical spelling: a local path or `file://` URL
 * becomes an absolute path without a trailing slash; a cloud URL keeps its
 * scheme, loses a trailing slash. An unknown scheme is a UserError.
 */
export function normalizeLocation(text: string, cwd: string, what = "location"): string {
  const scheme = schemeOf(text);
  if (scheme === undefined) return path.resolve(cwd, text);
  if (!(KNOWN_SCHEMES as readonly string[]).includes(scheme)) {
    throw new UserError(`The ${what} ${text} has an unknown scheme ${scheme}://.`, "Use a local folder, file://, s3:// (SageMaker) or gs:// (Vertex AI).");
  }
  if (scheme === "file") return path.resolve(fileURLToPath(text));
  const rest = text.slice(scheme.length + 3).replace(/\/+$/, "");
  if (!rest) throw new UserError(`The ${what} ${text} names no bucket.`, `Write it as ${scheme}://BUCKET/PREFIX.`);
  return `${scheme}://${rest}`;
}

/** Join a location and a relative path with a single slash. */
export function joinLocation(base: string, ...parts: string[]): string {
  return schemeOf(base) ? [base.replace(/\/+$/, ""), ...parts].join("/") : path.join(base, ...parts);
}
