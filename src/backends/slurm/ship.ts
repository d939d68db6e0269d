/**
 * What a submission copies to the cluster, as one tar named by its digest: the shipped files (one rule set for every
 * backend, `package/ship.ts`) under code/, the job runtime under runtime/, and the environment file as it ships
 * (requirements.txt). The same code, runtime and environment give the same bytes, so a resubmission finds its digest
 * on the cluster already and copies nothing.
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { runtimeFiles } from "../../package/runtime.js";
import { packShipment, type Shipment } from "../../package/ship.js";
import { loadTar } from "../../storage/archive.js";
import { shellWord, shippedRequirements } from "./plan.js";
import type { SlurmSpec } from "./schema.js";
import { byCodePoint } from "../../order.js";

/** The tar of one submission: its file, size and digest (sha256, 24 hex digits), in a scratch folder the caller removes. */
export interface Blob {
  dir: string;
  tar: string;
  bytes: number;
  digest: string;
}

/** Pack `spec`'s code, the runtime and the environment file into one deterministic tar. */
export async function packBlob(spec: SlurmSpec, shipment: Shipment): Promise<Blob> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "alekseylearn-slurm-"));
  const stage = path.join(dir, "stage");
  fs.mkdirSync(path.join(stage, "code"), { recursive: true });
  const code = path.join(dir, "code.tar");
  await packShipment(shipment, code);
  const tar = await loadTar();
  await tar.x({ file: code, cwd: path.join(stage, "code") });
  for (const [name, text] of Object.entries(runtimeFiles())) {
    const target = path.join(stage, "runtime", name);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, text);
  }
  const requirements = shippedRequirements(spec);
  if (requirements !== undefined) fs.writeFileSync(path.join(stage, "requirements.txt"), requirements);
  const entries = listTree(stage);
  const file = path.join(dir, "blob.tar");
  // Sorted entries, no times or owners: the same tree gives the same bytes (as packShipment does for images).
  await tar.c({ file, cwd: stage, portable: true, mtime: new Date(0), noDirRecurse: true }, entries);
  const bytes = fs.statSync(file).size;
  const digest = createHash("sha256").update(fs.readFileSync(file)).digest("hex").slice(0, 24);
  return { dir, tar: file, bytes, digest };
}

/** Every folder and file under `root`, relative, folders before what they hold, by name. */
function listTree(root: string): string[] {
  const found: string[] = [];
  const walk = (relative: string): void => {
    for (const entry of fs.readdirSync(path.join(root, relative), { withFileTypes: true }).sort((a, b) => byCodePoint(a.name, b.name))) {
      const name = relative ? `${relative}/${entry.name}` : entry.name;
      found.push(name);
      if (entry.isDirectory()) walk(name);
    }
  };
  walk("");
  return found;
}

/** The remote command that unpacks a blob from its standard input into WORK/blobs/DIGEST, all at once (a rename), or not at all. */
export function blobCommand(workDir: string, digest: string): string {
  const blobs = `${shellWord(workDir)}/blobs`;
  return (
    `cd ${blobs} && t=$(mktemp -d .incoming.XXXXXX) && tar -xf - -C "$t" && ` +
    `if [ -d ${digest} ]; then rm -rf "$t"; else chmod 755 "$t" && mv "$t" ${digest}; fi`
  );
}
