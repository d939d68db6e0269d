/** Which files of a project folder are its code: everything but version control, caches, outputs and environments. */
import fs from "node:fs";
import path from "node:path";
import { byCodePoint } from "../order.js";

/** Folders that are never code. */
export const NOT_CODE = new Set([
  ".git",
  "__pycache__",
  ".ipynb_checkpoints",
  "alekseylearn-output",
  "node_modules",
  ".venv",
  "venv",
  ".mypy_cache",
  ".pytest_cache",
]);

/** True for a path (relative, with /) that lies in no skipped folder and is no compiled file. */
export function isCode(relative: string): boolean {
  return !relative.split("/").some((part) => NOT_CODE.has(part)) && !relative.endsWith(".pyc");
}

/**
 * Every folder and file of `dir` that is code and not `excluded`, relative
 * with /, depth first in sorted order: the same tree always gives the same list.
 * A folder that is excluded is still walked, since an exception may bring back something inside it.
 */
export function codePaths(dir: string, excluded: (relative: string) => boolean = () => false, prefix = ""): string[] {
  const paths: string[] = [];
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(path.join(dir, prefix), { withFileTypes: true });
  } catch (err) {
    // A folder this user cannot read holds nothing a run of this user's could read either; what ships is checked by ship.ts, which names it.
    if (prefix && ["EACCES", "EPERM"].includes((err as NodeJS.ErrnoException).code ?? "")) return paths;
    throw err;
  }
  for (const entry of entries.sort((a, b) => byCodePoint(a.name, b.name))) {
    const relative = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (!isCode(relative)) continue;
    if (entry.isDirectory()) {
      const inside = codePaths(dir, excluded, relative);
      if (!excluded(relative) || inside.length) paths.push(relative, ...inside);
    } else if (!excluded(relative)) {
      paths.push(relative);
    }
  }
  return paths;
}
