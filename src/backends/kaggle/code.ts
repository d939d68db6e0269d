/**
 * A folder artifact on Kaggle: a kernel is one file, so the folder's other
 * files go up as a private dataset (OWNER/SLUG-code, one code.tar.gz) that is
 * attached to the kernel; the preamble unpacks it and runs the entry there.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import * as tar from "tar";
import type { Context } from "../../context.js";
import { failure } from "../../errors.js";
import { codeEntries, isCode } from "../../package/bundle.js";
import type { KaggleApi } from "./api.js";
import { codeDatasetSlug, createCodeDatasetRequest } from "./plan.js";

const READY_TIMEOUT_MS = 10 * 60_000;

/** Pack the folder's code as a gzip tar (skipping caches and outputs) at `archive`. */
export async function packCode(dir: string, archive: string): Promise<void> {
  await tar.c({ gzip: true, cwd: dir, portable: true, file: archive, filter: (file) => isCode(file) }, codeEntries(dir));
}

/** Upload the folder as the private dataset OWNER/SLUG-code (a new version when it exists) and wait until Kaggle has that version ready, confirmed by its number; returns its reference. */
export async function uploadCode(api: KaggleApi, owner: string, slug: string, dir: string, ctx: Context): Promise<string> {
  const datasetSlug = codeDatasetSlug(slug);
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "alekseylearn-kaggle-"));
  try {
    const archive = path.join(scratch, "code.tar.gz");
    await packCode(dir, archive);
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
    const created = current !== undefined
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
      if (Date.now() - started > READY_TIMEOUT_MS) throw failure(`Version ${expected} of the code dataset ${owner}/${datasetSlug} was not ready after 10 minutes.`, "Run again later; Kaggle is still processing it.");
      await sleep(wait, undefined, { signal: ctx.signal });
    }
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}
