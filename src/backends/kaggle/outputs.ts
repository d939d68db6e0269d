/**
 * Fetching a kernel's output: every file of the session (following
 * pagination past any page limit), downloaded in parallel into a staging
 * folder, then placed so the layout matches the other backends: the model
 * folder's files in DIR, everything else in DIR/output.
 */
import fs from "node:fs";
import path from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Context } from "../../context.js";
import { failure } from "../../errors.js";
import { eachLimited } from "../../exec.js";
import { placeFiles } from "../../storage/archive.js";
import type { KaggleApi } from "./api.js";

/** How many downloads run at once. */
const PARALLEL = 8;

/** Where an output file of /kaggle/working lands under DIR, or undefined when its name is unsafe. */
export function outputDestination(fileName: string): string | undefined {
  const name = fileName.replace(/\\/g, "/").replace(/^\/?kaggle\/working\//, "");
  const segments = name.split("/");
  if (name.startsWith("/") || segments.some((segment) => segment === ".." || segment === "")) return undefined;
  if (segments[0] === "model" && segments.length > 1) return segments.slice(1).join("/");
  if (segments[0] === "output" && segments[1] === "data" && segments.length > 2) return ["output", ...segments.slice(2)].join("/");
  return ["output", ...segments].join("/");
}

async function download(url: string, file: string): Promise<void> {
  // Output URLs are signed by Kaggle: they are fetched without our credentials, which must not travel to a storage host.
  const response = await fetch(url);
  if (!response.ok || !response.body)
    throw failure(`Downloading ${path.basename(file)} from Kaggle failed (${response.status}).`, "Fetch again; files already fetched are kept as they are.");
  fs.mkdirSync(path.dirname(file), { recursive: true });
  await pipeline(Readable.fromWeb(response.body as import("node:stream/web").ReadableStream), fs.createWriteStream(file));
  const expected = Number(response.headers.get("content-length"));
  if (expected && fs.statSync(file).size !== expected)
    throw failure(`${path.basename(file)} arrived short (${fs.statSync(file).size} of ${expected} bytes).`, "Fetch again.");
}

/** Download the output of OWNER/SLUG's latest session into `to`; returns the files written, relative to `to`. */
export async function fetchKernelOutput(api: KaggleApi, owner: string, slug: string, to: string, overwrite: boolean, ctx: Context): Promise<string[]> {
  const { files } = await api.allSessionOutput(owner, slug);
  if (!files.length)
    throw failure(
      `Kernel ${owner}/${slug} has no output files.`,
      "Its model is what it writes to /opt/ml/model (SM_MODEL_DIR); check its log with `alekseylearn logs JOB`.",
    );
  const unsafe = files.filter((file) => !outputDestination(file.fileName));
  if (unsafe.length) throw failure(`Refusing to fetch ${owner}/${slug}: the output file name ${JSON.stringify(unsafe[0]!.fileName)} would land outside ${to}.`);

  fs.mkdirSync(to, { recursive: true });
  const staging = fs.mkdtempSync(path.join(to, ".alekseylearn-fetch-"));
  try {
    const label = `Downloading ${files.length} file${files.length === 1 ? "" : "s"} from ${owner}/${slug}`;
    ctx.reporter.info(label);
    let done = 0;
    await eachLimited(files, PARALLEL, async (file) => {
      await download(file.url, path.join(staging, outputDestination(file.fileName)!));
      ctx.reporter.progress?.(label, ++done, files.length);
    });
    return await placeFiles(staging, to, `Fetching ${owner}/${slug}`, overwrite);
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}
