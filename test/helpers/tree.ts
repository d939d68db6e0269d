/** Fixture projects written inline as file trees, each in a fresh temporary folder. */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

/** Write `files` (relative path → content) under a new temporary folder and return the folder. */
export function writeTree(files: Record<string, string | Buffer>, prefix = "alekseylearn-test-"): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  for (const [file, content] of Object.entries(files)) {
    const full = path.join(root, file);
    fs.mkdirSync(path.dirname(full), { recursive: true });
    fs.writeFileSync(full, content);
  }
  return root;
}

/** Every file (or link) under `dir`, relative, sorted, with forward slashes (folders are implied by their files). */
export function listTree(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  // lstat: a link is an entry of the tree, never followed (a dangling one, left in this machine's /gcs say, is listed).
  return (fs.readdirSync(dir, { recursive: true }) as string[])
    .filter((entry) => !fs.lstatSync(path.join(dir, entry)).isDirectory())
    .map((entry) => entry.split(path.sep).join("/"))
    .sort();
}

/** The text a notebook's cells printed, joined: what an executed notebook holds. */
export function notebookOutput(file: string): string {
  const notebook = JSON.parse(fs.readFileSync(file, "utf8")) as { cells: Array<{ outputs?: Array<{ text?: string | string[] }> }> };
  return notebook.cells
    .flatMap((cell) => cell.outputs ?? [])
    .map((output) => [output.text ?? ""].flat().join(""))
    .join("");
}

/** The files of a .tar.gz (a model.tar.gz, say), by name, as text. */
export function archiveText(file: string): Record<string, string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "alekseylearn-archive-"));
  try {
    execFileSync("tar", ["-xzf", file, "-C", dir]);
    return Object.fromEntries(listTree(dir).map((name) => [name, fs.readFileSync(path.join(dir, name), "latin1")]));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
