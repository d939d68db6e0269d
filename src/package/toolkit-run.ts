/**
 * The script-mode contract as a given Python computes it, for showing: the
 * arguments and SM_* variables a job's script would get, from the config
 * files it would get (used by `fit --dry-run`; a job computes them itself).
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { TOOLKIT_SOURCE } from "./toolkit.js";

/** What the toolkit gives a script: its arguments and the SM_* variables. */
export interface ScriptContract {
  args: string[];
  env: Record<string, string>;
}

/** Run the toolkit with `python` over `configFiles` laid out at a scratch /opt/ml; undefined when that Python cannot run it. */
export function previewContract(
  python: string,
  configFiles: Record<string, unknown>,
  entry: string,
  codeDir: string,
  jobName: string,
): ScriptContract | undefined {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), "alekseylearn-contract-"));
  try {
    fs.mkdirSync(path.join(base, "input", "config"), { recursive: true });
    for (const [name, content] of Object.entries(configFiles)) fs.writeFileSync(path.join(base, "input", "config", name), JSON.stringify(content));
    const program = `${TOOLKIT_SOURCE}\nimport sys\nenv, args = training_environment(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4])\nprint(_al_json.dumps({"env": env, "args": args}))\n`;
    const result = spawnSync(python, ["-c", program, base, codeDir, entry, jobName], { encoding: "utf8", timeout: 30_000 });
    if (result.status !== 0) return undefined;
    const parsed = JSON.parse(result.stdout) as ScriptContract;
    // Paths as the job sees them: under /opt/ml, not the scratch folder.
    for (const [key, value] of Object.entries(parsed.env)) parsed.env[key] = value.split(base).join("/opt/ml");
    return parsed;
  } catch {
    return undefined;
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
}
