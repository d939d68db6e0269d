/**
 * Without a sandbox, /opt/ml and /kaggle are this machine's folders, not the
 * job's: a file that names them literally would read this machine's
 * hyperparameters (or none, and train with its defaults) and write its model
 * where `fetch` never looks. Such an artifact is found before it runs.
 */
import fs from "node:fs";
import path from "node:path";
import type { JobSpec } from "../../spec/types.js";
import { folderFiles } from "../../package/image-plan.js";

/** One line of the artifact that names a contract root itself. */
export interface LiteralRoot {
  /** The file, relative to the artifact's folder. */
  file: string;
  /** 1-based; for a notebook, the line within its code cells as they read top to bottom. */
  line: number;
  /** The path it names (`/opt/ml/model`, `/kaggle/input/titanic/train.csv`). */
  named: string;
}

/** A contract root named in code: /opt/ml or /kaggle, followed by a separator, a quote or the end. */
const ROOT = /\/(?:opt\/ml|kaggle)(?:\/[^\s'"`)]*)?(?=$|[\s'"`)/])/;
/** The root as the fallback of a variable the job always gets (`os.environ.get("SM_MODEL_DIR", "/opt/ml/model")`): harmless. */
const FALLBACK = /(?:environ\.get|getenv|environ\.setdefault)\(/;

/** The lines of `text` (Python source) that name a contract root, skipping comments and variable fallbacks. */
export function literalRootLines(text: string): Array<{ line: number; named: string }> {
  const found: Array<{ line: number; named: string }> = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const code = raw.replace(/^\s*#.*$/, "").replace(/\s#[^'"]*$/, "");
    const match = ROOT.exec(code);
    if (match && !FALLBACK.test(code)) found.push({ line: index + 1, named: match[0] });
  });
  return found;
}

/** The code of a notebook's code cells, one after the other (a notebook that does not parse has none). */
function notebookCode(text: string): string {
  try {
    const notebook = JSON.parse(text) as { cells?: Array<{ cell_type?: string; source?: string | string[] }> };
    return (notebook.cells ?? [])
      .filter((cell) => cell.cell_type === "code")
      .map((cell) => (Array.isArray(cell.source) ? cell.source.join("") : (cell.source ?? "")))
      .join("\n");
  } catch {
    return "";
  }
}

/** Every place the artifact (its entry, or every .py and .ipynb of a folder artifact) names /opt/ml or /kaggle itself. */
export function literalRoots(spec: JobSpec): LiteralRoot[] {
  const { artifact } = spec;
  const files = artifact.isFolder ? folderFiles(artifact.dir).filter((file) => /\.(py|ipynb)$/.test(file)) : [artifact.entry];
  return files.flatMap((file) => {
    let text: string;
    try {
      text = fs.readFileSync(path.join(artifact.dir, file), "utf8");
    } catch {
      return [];
    }
    return literalRootLines(file.endsWith(".ipynb") ? notebookCode(text) : text).map((found) => ({ file, ...found }));
  });
}
