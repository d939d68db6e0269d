/**
 * What a job leaves in its working folder. A notebook that saves `model.pkl`
 * beside itself, or a script that writes `results.csv` where it runs, would
 * otherwise lose that file with the machine (SageMaker keeps only /opt/ml/model
 * and /opt/ml/output). A snapshot of the folder before the run, compared with
 * it after, names those files; they are packed in output.tar.gz under
 * `working/`. The image's entrypoint does the same in Python for /opt/ml/code.
 */
import fs from "node:fs";
import path from "node:path";
import { codePaths } from "./bundle.js";

/** Each file of a folder (relative, with /) with its size and modification time. */
export type Snapshot = ReadonlyMap<string, string>;

/** Where packed working files go, within /opt/ml/output/data. */
export const WORKING = "working";

/** The files of `dir` that are code or data (not caches, environments or outputs, nor anything under the folders in `skip`: alekseylearn's own state, cache and outputs), with size and time. */
export function snapshot(dir: string, skip: readonly string[] = []): Snapshot {
  const files = new Map<string, string>();
  const skipped = skip.map((folder) => path.relative(dir, folder)).filter((relative) => relative && !relative.startsWith("..") && !path.isAbsolute(relative));
  const isSkipped = (relative: string): boolean => skipped.some((folder) => relative === folder || relative.startsWith(`${folder}/`));
  for (const relative of codePaths(dir, isSkipped)) {
    if (isSkipped(relative)) continue;
    try {
      const stat = fs.lstatSync(path.join(dir, relative));
      if (stat.isFile()) files.set(relative, `${stat.size}:${stat.mtimeMs}`);
    } catch {
      // gone meanwhile
    }
  }
  return files;
}

/** The files that are new or changed in `after` (sorted). */
export function leftBehind(before: Snapshot, after: Snapshot): string[] {
  return [...after]
    .filter(([file, stamp]) => before.get(file) !== stamp)
    .map(([file]) => file)
    .sort();
}

/** Copy `files` of `dir` under `into/working/`, keeping their paths; returns how many were copied. */
export function keepWorkingFiles(dir: string, files: readonly string[], into: string, under: string = WORKING): number {
  let copied = 0;
  for (const file of files) {
    const target = path.join(into, under, file);
    try {
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.copyFileSync(path.join(dir, file), target);
      copied++;
    } catch {
      // a file the job removed again
    }
  }
  return copied;
}
