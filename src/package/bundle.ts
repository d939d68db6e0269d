/** Which files of a project folder are its code: everything but version control, caches, outputs and environments. */
import fs from "node:fs";

/** Folders that are never code. */
export const NOT_CODE = new Set([".git", "__pycache__", ".ipynb_checkpoints", "alekseylearn-output", "node_modules", ".venv", "venv", ".mypy_cache", ".pytest_cache"]);

/** The top-level entries of `dir` that are code, sorted (so an archive of them is the same every time). */
export function codeEntries(dir: string): string[] {
  return fs.readdirSync(dir).filter((name) => !NOT_CODE.has(name)).sort();
}

/** True for a path (relative, with /) that lies in no skipped folder and is no compiled file. */
export function isCode(relative: string): boolean {
  return !relative.split("/").some((part) => NOT_CODE.has(part)) && !relative.endsWith(".pyc");
}
