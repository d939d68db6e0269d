/**
 * A folder artifact on Kaggle: a kernel is one file, so the folder's other
 * files go up as a private dataset (OWNER/SLUG-code, one code.tar.gz) that is
 * attached to the kernel; the preamble unpacks it and runs the entry there.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { createGzip } from "node:zlib";
import { pipeline } from "node:stream/promises";
import type { Context } from "../../context.js";
import { failure } from "../../errors.js";
import { packShipment, reportShipment, shippedFiles } from "../../package/ship.js";
import type { JobSpec } from "../../spec/types.js";
import type { KaggleApi } from "./api.js";
import { codeDatasetSlug, createCodeDatasetRequest } from "./plan.js";

const READY_TIMEOUT_MS = 10 * 60_000;

/** Pack what ships of the artifact's folder (ship.ts: ignore files, no secrets) as a gzip tar at `archive`; what the rules kept out is said through the reporter. */
export async function packCode(spec: JobSpec, archive: string, ctx: Pick<Context, "env" | "reporter">): Promise<void> {
  const envFile = spec.environment ? path.relative(spec.artifact.dir, spec.environment.path).split(path.sep).join("/") : undefined;
  const shipment = shippedFiles(spec.artifact.dir, {
    env: ctx.env,
    entry: spec.artifact.entry,
    requirements: envFile && !envFile.startsWith("..") ? [envFile] : [],
  });
  reportShipment(
    shipment,
    (message) => ctx.reporter.warn(message),
    (message) => ctx.reporter.info(message),
  );
  const plain = `${archive}.tar`;
  try {
    await packShipment(shipment, plain);
    await pipeline(fs.createReadStream(plain), createGzip(), fs.createWriteStream(archive));
  } finally {
    fs.rmSync(plain, { force: true });
  }
}

/** Upload what ships of the artifact's folder as the private dataset OWNER/SLUG-code (a new version when it exists) and wait until Kaggle has that version ready, confirmed by its number; returns its reference. */
export async function uploadCode(api: KaggleApi, owner: string, slug: string, spec: JobSpec, ctx: Context): Promise<string> {
  const datasetSlug = codeDatasetSlug(slug);
  const dir = spec.artifact.dir;
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "alekseylearn-kaggle-"));
  try {
    const archive = path.join(scratch, "code.tar.gz");
    await packCode(spec, archive, ctx);
    const size = fs.statSync(archive).size;
    ctx.reporter.info(`Uploading ${path.basename(dir)}/ as the dataset ${owner}/${datasetSlug} (${size} bytes)…`);
    const blob = await api.startBlobUpload("code.tar.gz", size, Math.floor(Date.now() / 1000));
    if (!blob.token || !blob.createUrl) throw failure("Kaggle did not return an upload address for the code.");
    // The upload address is signed by Kaggle: no credentials go with it.
    const put = await fetch(blob.createUrl, { method: "PUT", body: fs.readFileSync(archive), headers: { "Content-Type": "application/gzip" } });
    if (!put.ok) throw failure(`Uploading the code to Kaggle failed (${put.status}).`);

    // The version this upload will be: one past the current one (GetDataset's currentVersionNumber), or 1 for a new dataset.
    let current: number | undefined;
    try {
      current = (await api.dataset(owner, datasetSlug)).currentVersionNumber ?? 0;
    } catch {
      current = undefined;
    }
    const created =
      current !== undefined
        ? await api.createDatasetVersion(owner, datasetSlug, blob.token, "code for an alekseylearn run")
        : await api.createDataset(createCodeDatasetRequest(owner, slug, blob.token));
    if (created.error) throw failure(`Kaggle refused the code dataset ${owner}/${datasetSlug}: ${created.error}`);
    const expected = (current ?? 0) + 1;

    // READY may still describe the previous version for a while after a new one is made: the kernel is pushed only once
    // the dataset's current version is this one, or it would run the previous version's code.
    const started = Date.now();
    for (let wait = 1000; ; wait = Math.min(wait * 1.5, 10_000)) {
      const status = ((await api.datasetStatus(owner, datasetSlug)).status ?? "").toUpperCase();
      if (status === "FAILED" || status === "DELETED") throw failure(`Kaggle could not process the code dataset ${owner}/${datasetSlug} (${status}).`);
      if (status === "READY") {
        const version = (await api.dataset(owner, datasetSlug)).currentVersionNumber ?? 0;
        if (version >= expected) return `${owner}/${datasetSlug}`;
      }
      if (Date.now() - started > READY_TIMEOUT_MS)
        throw failure(
          `Version ${expected} of the code dataset ${owner}/${datasetSlug} was not ready after 10 minutes.`,
          "Run again later; Kaggle is still processing it.",
        );
      await sleep(wait, undefined, { signal: ctx.signal });
    }
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}
