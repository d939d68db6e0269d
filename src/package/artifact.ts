/**
 * Finding what to run: the training artifact (script, notebook, or folder with
 * an entry point) and its environment file.
 */
import fs from "node:fs";
import path from "node:path";
import { UserError } from "../errors.js";
import { yaml } from "../yaml.js";
import type { EnvironmentFile, TrainingArtifact } from "../spec/types.js";

const KINDS: Record<string, TrainingArtifact["kind"]> = { ".py": "script", ".ipynb": "notebook" };

function kindOf(file: string): TrainingArtifact["kind"] {
  const kind = KINDS[path.extname(file).toLowerCase()];
  if (!kind) {
    throw new UserError(
      `Cannot run ${file}: alekseylearn runs Python scripts (.py) and Jupyter notebooks (.ipynb).`,
      "Pass a .py or .ipynb file, or a folder with --entry FILE.",
    );
  }
  return kind;
}

function statOrNull(file: string): fs.Stats | null {
  try {
    return fs.statSync(file);
  } catch {
    return null;
  }
}

/** The artifact's name: the folder's for a folder, the file's without its extension for a file. */
export function artifactStem(artifact: TrainingArtifact): string {
  return artifact.isFolder ? path.basename(artifact.dir) : path.parse(artifact.entry).name;
}

/** Resolve the artifact the user named (relative to `cwd`), with `entry` when it is a folder. */
export function resolveArtifact(cwd: string, artifact: string, entry?: string): TrainingArtifact {
  const full = path.resolve(cwd, artifact);
  const stat = statOrNull(full);
  if (!stat) throw new UserError(`Training artifact ${artifact} does not exist.`, "Check the path; it is read relative to the current folder.");
  if (stat.isFile()) {
    if (entry !== undefined) {
      throw new UserError(
        `--entry goes with a folder, but ${artifact} is a file.`,
        `Run \`alekseylearn fit ${path.dirname(artifact)} --entry ${path.basename(artifact)}\`, or drop --entry.`,
      );
    }
    return { kind: kindOf(full), dir: path.dirname(full), entry: path.basename(full), isFolder: false };
  }
  if (!stat.isDirectory()) throw new UserError(`Training artifact ${artifact} is neither a file nor a folder.`);
  if (entry === undefined) {
    const candidates = fs
      .readdirSync(full)
      .filter((name) => KINDS[path.extname(name).toLowerCase()])
      .sort();
    throw new UserError(
      `${artifact} is a folder: say which file in it to run with --entry FILE.`,
      candidates.length ? `Files it could run: ${candidates.slice(0, 5).join(", ")}.` : "It holds no .py or .ipynb file.",
    );
  }
  const dir = fs.realpathSync(full);
  const target = path.resolve(dir, entry);
  const real = statOrNull(target) ? fs.realpathSync(target) : target;
  const relative = path.relative(dir, real);
  if (relative === "" || relative.startsWith("..") || path.isAbsolute(relative)) {
    throw new UserError(`--entry ${entry} is outside the folder ${artifact}.`, "The entry point must be a file inside the folder that is sent to the job.");
  }
  if (!statOrNull(real)?.isFile()) throw new UserError(`--entry ${entry} does not exist in ${artifact}.`);
  return { kind: kindOf(real), dir, entry: relative.split(path.sep).join("/"), isFolder: true };
}

const ENV_FILES: Record<string, EnvironmentFile["kind"]> = {
  "requirements.txt": "requirements",
  "environment.yml": "conda",
  "environment.yaml": "conda",
};

function envKind(file: string): EnvironmentFile["kind"] {
  const base = path.basename(file).toLowerCase();
  if (ENV_FILES[base]) return ENV_FILES[base];
  if (base.endsWith(".yml") || base.endsWith(".yaml")) return "conda";
  return "requirements";
}

/** Read and check an environment file: a conda file must parse as YAML with a `dependencies` list. */
export function readEnvironmentFile(file: string): EnvironmentFile {
  let content: string;
  try {
    content = fs.readFileSync(file, "utf8");
  } catch {
    throw new UserError(`Environment file ${file} cannot be read.`, "Check the path given to --envfile.");
  }
  const kind = envKind(file);
  if (kind === "conda") {
    let doc: unknown;
    try {
      doc = yaml().parse(content);
    } catch (err) {
      const reason = (err as Error).message.split("\n")[0]!.replace(/:\s*$/, "");
      throw new UserError(`${file} is not valid YAML: ${reason}`, "Fix the file, or pass a requirements.txt with --envfile.");
    }
    const deps = (doc as { dependencies?: unknown } | null)?.dependencies;
    if (typeof doc !== "object" || doc === null || Array.isArray(doc) || (deps !== undefined && !Array.isArray(deps))) {
      throw new UserError(`${file} is not a conda environment file: it needs a mapping with a \`dependencies:\` list.`);
    }
  }
  return { kind, path: file, content };
}

/**
 * The environment file for an artifact: `explicit` (already resolved to an
 * absolute path) if given, else requirements.txt or environment.yml beside the
 * artifact. Both present without an explicit choice is an error.
 */
export function findEnvironmentFile(artifact: TrainingArtifact, explicit?: string): EnvironmentFile | undefined {
  if (explicit) return readEnvironmentFile(explicit);
  const present = Object.keys(ENV_FILES).filter((name) => statOrNull(path.join(artifact.dir, name))?.isFile());
  const kinds = new Set(present.map((name) => ENV_FILES[name]));
  if (kinds.size > 1) {
    throw new UserError(
      `Both ${present.join(" and ")} are in ${artifact.dir}: which one describes the environment?`,
      `Pass one with --envfile, e.g. --envfile ${path.join(artifact.dir, present[0]!)}.`,
    );
  }
  return present.length ? readEnvironmentFile(path.join(artifact.dir, present[0]!)) : undefined;
}
