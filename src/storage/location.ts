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

/** A dotted-decimal IPv4 address, which neither S3 nor Cloud Storage takes as a bucket name. */
const IP_ADDRESS = /^\d{1,3}(\.\d{1,3}){3}$/;

/**
 * What Cloud Storage's bucket naming rules refuse in `bucket` (https://cloud.google.com/storage/docs/buckets#naming):
 * 3–63 characters of lowercase letters, digits, `-`, `_` and `.` (up to 222 with dots, each dot-separated part at most
 * 63), starting and ending with a letter or digit; not an IP address; not starting with `goog`; not containing `google`
 * (nor its look-alikes `g00gle`, `googel`…, of which the two most common are refused here).
 */
export function gcsBucketProblems(bucket: string): string[] {
  const problems: string[] = [];
  const dotted = bucket.includes(".");
  if (bucket.length < 3 || bucket.length > (dotted ? 222 : 63)) problems.push(`it must be 3 to 63 characters long (222 with dots)`);
  if (!/^[a-z0-9._-]*$/.test(bucket)) problems.push("it may hold only lowercase letters, digits, '-', '_' and '.'");
  if (!/^[a-z0-9]/.test(bucket) || !/[a-z0-9]$/.test(bucket)) problems.push("it must start and end with a letter or digit");
  if (bucket.includes("..") || bucket.split(".").some((part) => part.length > 63)) problems.push("each part between dots must be 1 to 63 characters");
  if (IP_ADDRESS.test(bucket)) problems.push("it may not be an IP address");
  if (bucket.startsWith("goog")) problems.push("it may not start with goog");
  if (/google|g00gle|googel/.test(bucket)) problems.push("it may not contain google");
  return problems;
}

/**
 * What S3's naming rules for general purpose buckets refuse in `bucket`
 * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html): 3–63 characters of lowercase
 * letters, digits, `.` and `-`, starting and ending with a letter or digit; no two dots in a row; not an IP address;
 * not the prefixes `xn--`, `sthree-`, `amzn-s3-demo-`, nor the suffixes `-s3alias`, `--ol-s3`, `.mrap`, `--x-s3`,
 * `--table-s3` (kept for access points and other bucket types).
 */
export function s3BucketProblems(bucket: string): string[] {
  const problems: string[] = [];
  if (bucket.length < 3 || bucket.length > 63) problems.push("it must be 3 to 63 characters long");
  if (!/^[a-z0-9.-]*$/.test(bucket)) problems.push("it may hold only lowercase letters, digits, '.' and '-'");
  if (!/^[a-z0-9]/.test(bucket) || !/[a-z0-9]$/.test(bucket)) problems.push("it must start and end with a letter or digit");
  if (bucket.includes("..")) problems.push("it may not hold two dots in a row");
  if (IP_ADDRESS.test(bucket)) problems.push("it may not be an IP address");
  const prefix = ["xn--", "sthree-", "amzn-s3-demo-"].find((each) => bucket.startsWith(each));
  if (prefix) problems.push(`it may not start with ${prefix}`);
  const suffix = ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"].find((each) => bucket.endsWith(each));
  if (suffix) problems.push(`it may not end with ${suffix}`);
  return problems;
}

/**
 * What makes `location` (normalized) unfit as an output path, before anything runs: a bucket name its service refuses,
 * a `.` or `..` segment (a key, not a folder: `runs/../x` would be its own prefix, never `x`), a `?` or `#` (read as a
 * URL's query or fragment by the tools that follow), or a control character, in the path.
 */
export function outputLocationProblems(location: string): string[] {
  const problems: string[] = [];
  // eslint-disable-next-line no-control-regex -- control characters are what this looks for
  if (/[\u0000-\u001f\u007f]/.test(location)) problems.push(`the output path ${JSON.stringify(location)} holds a control character`);
  const scheme = schemeOf(location);
  if (scheme !== "s3" && scheme !== "gs") return problems;
  const [bucket = "", ...segments] = location.slice(scheme.length + 3).split("/");
  const rules = scheme === "gs" ? gcsBucketProblems(bucket) : s3BucketProblems(bucket);
  const guide =
    scheme === "gs" ? "https://cloud.google.com/storage/docs/buckets#naming" : "https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html";
  if (rules.length)
    problems.push(
      `the bucket name ${JSON.stringify(bucket)} of ${location} is not one ${scheme === "gs" ? "Cloud Storage" : "S3"} allows: ${rules.join("; ")} (${guide})`,
    );
  if (segments.some((segment) => segment === ".." || segment === "."))
    problems.push(`the output path ${location} has a '.' or '..' part, which object storage keeps as part of the name rather than following`);
  if (/[?#]/.test(location)) problems.push(`the output path ${location} holds '?' or '#', which would be read as a URL's query or fragment`);
  return problems;
}
