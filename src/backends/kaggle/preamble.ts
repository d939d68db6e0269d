/**
 * The kernel's first cell: the job runtime's Kaggle bootstrap
 * (runtime/kaggle_bootstrap.py), carrying the runtime's files and the job, so
 * that every platform's contract holds on Kaggle (runtime/…/platforms/kaggle.py:
 * /opt/ml/model and /opt/ml/output lead into /kaggle/working, hyperparameters
 * and SM_* variables where the contract puts them, requirements installed when
 * the kernel has internet) and the code runs unchanged.
 */
import fs from "node:fs";
import path from "node:path";
import { deflateSync } from "node:zlib";
import { hyperparameterStrings } from "../../package/contract.js";
import { ENTRYPOINT, RUNTIME_DIR, runtimeFiles, type HyperparameterFormat } from "../../package/runtime.js";
import type { ConfigValue } from "../../spec/values.js";

/** What the preamble needs to know, all of it plain data. */
export interface PreambleSpec {
  hyperparameters: Record<string, ConfigValue>;
  /** Channel name → dataset reference (OWNER/SLUG) attached to the kernel. */
  channels: Record<string, string>;
  /** requirements.txt content, when there is one. */
  requirements?: string;
  enableInternet: boolean;
  /** The entry's path within the code folder (a notebook's name), as SM_USER_ENTRY_POINT names it. */
  program: string;
  /** The job's name (TRAINING_JOB_NAME, the toolkit's job_name). */
  jobName?: string;
  /** Pass the hyperparameters to a script as command-line arguments, as SageMaker's toolkit does, in this form. */
  hyperparameterArgs: boolean;
  hyperparameterFormat?: HyperparameterFormat;
  /** For scripts: the entry's path within the code folder, and its source when it is sent inline. */
  entry?: string;
  source?: string;
  /** The dataset slug holding code.tar.gz, when the artifact is a folder. */
  codeDataset?: string;
}

/** The kernel's first cell: runtime/kaggle_bootstrap.py with the runtime's files and the job inside (see runtime/…/platforms/kaggle.py `setup`), as one deflated base64 payload; for a script it ends by running the entry. */
export function preamble(spec: PreambleSpec): string {
  const setup = {
    program: spec.program,
    jobName: spec.jobName ?? null,
    hyperparameters: hyperparameterStrings(spec.hyperparameters),
    channels: spec.channels,
    requirements: spec.requirements ?? null,
    internet: spec.enableInternet,
    args: spec.hyperparameterArgs,
    format: spec.hyperparameterFormat ?? "toolkit",
    entry: spec.entry ?? null,
    source: spec.source ?? null,
    codeDataset: spec.codeDataset ?? null,
  };
  const template = fs.readFileSync(path.join(RUNTIME_DIR, "kaggle_bootstrap.py"), "utf8");
  const files = runtimeFiles();
  delete files[ENTRYPOINT];
  // Deflated: the runtime's files are most of the cell, and Kaggle keeps (and shows) the kernel's source.
  const payload = deflateSync(JSON.stringify({ ...setup, runtime: files })).toString("base64");
  return template.replace('"ALEKSEYLEARN_PAYLOAD"', JSON.stringify(payload));
}

/** A script kernel's text: the preamble, then the entry run as __main__. */
export function scriptKernel(spec: PreambleSpec): string {
  return preamble(spec);
}

/** A notebook kernel's text: the user's notebook with its outputs stripped and the preamble as its first cell. */
export function notebookKernel(notebookJson: string, spec: PreambleSpec): string {
  const notebook = JSON.parse(notebookJson) as {
    cells?: Array<{ cell_type?: string; source?: string | string[]; outputs?: unknown[]; execution_count?: number | null }>;
  };
  const cells = (notebook.cells ?? []).map((cell) => {
    // Kaggle wants each cell's source as one string, and the outputs of a previous run stripped.
    const source = Array.isArray(cell.source) ? cell.source.join("") : (cell.source ?? "");
    return cell.cell_type === "code" ? { ...cell, source, outputs: [], execution_count: null } : { ...cell, source };
  });
  const first = { cell_type: "code", metadata: { tags: ["alekseylearn-preamble"] }, execution_count: null, outputs: [], source: preamble(spec) };
  return JSON.stringify({ ...notebook, cells: [first, ...cells] });
}
