/**
 * The Slurm backend's `doctor` checks, from one command on the login node (`doctorCommand`, read by `readDoctor`): ssh
 * reaches it (ssh's own words when not; never a key), Slurm's commands are there, whether accounting (sacct) answers,
 * the work folder is writable (a file made and removed), the cluster's Python and whether it makes virtual
 * environments, and bubblewrap (informational). With an s3:// or gs:// output path, whether this machine reaches the
 * bucket, since it is this machine that copies the model there (outputs.ts).
 */
import type { Context } from "../../context.js";
import { UserError } from "../../errors.js";
import { schemeOf } from "../../storage/location.js";
import type { DoctorCheck } from "../types.js";
import { bucketAnswers } from "./outputs.js";
import { shellWord } from "./plan.js";
import { isHere, runRemote, type Login } from "./remote.js";
import type { SlurmSettings, SlurmSpec } from "./schema.js";

const SEPARATOR = "@@alekseylearn-doctor@@";

/** The Slurm commands the backend runs on the login node. */
const COMMANDS = ["sbatch", "squeue", "scontrol", "scancel"];

/** The oldest Python the job runtime supports. */
const MIN_PYTHON: [number, number] = [3, 8];

/** The one remote command that finds everything `doctor` reports, in sections. */
export function doctorCommand(settings: Pick<SlurmSettings, "work_dir" | "python" | "modules">): string {
  const work = shellWord(settings.work_dir);
  const probe = "import sys, venv, ensurepip; print('%d.%d.%d' % sys.version_info[:3]); print(sys.executable)";
  const load = settings.modules.length ? `module load ${settings.modules.map(shellWord).join(" ")} && ` : "";
  return [
    "echo reached",
    `echo ${SEPARATOR}`,
    `for c in ${COMMANDS.join(" ")}; do printf '%s %s\\n' "$c" "$(command -v "$c" 2>/dev/null)"; done`,
    `echo ${SEPARATOR}`,
    // sacct's words go to stderr when the cluster keeps no accounting ("Slurm accounting storage is disabled").
    `e=$(sacct --noheader --parsable2 --starttime=now --format=JobID 2>&1 >/dev/null); r=$?; echo "$r"; printf '%s\\n' "$e" | head -n 2`,
    `echo ${SEPARATOR}`,
    `(mkdir -p ${work} && cd ${work} && pwd -P && f=".doctor.$$" && : > "$f" && rm -f "$f" && echo writable) 2>&1 | tail -n 3`,
    `echo ${SEPARATOR}`,
    `(${load}${shellWord(settings.python)} -c ${shellWord(probe)}) 2>&1 | tail -n 3`,
    `echo ${SEPARATOR}`,
    "command -v bwrap 2>/dev/null",
  ].join("; ");
}

/** The checks the report of `doctorCommand` says, for `settings` on `login`. */
export function readDoctor(text: string, login: Login, settings: Pick<SlurmSettings, "work_dir" | "python" | "modules">): DoctorCheck[] {
  const [, commands = "", accounting = "", work = "", python = "", bwrap = ""] = text.split(`${SEPARATOR}\n`);
  const checks: DoctorCheck[] = [];
  const where = isHere(login) ? "this machine" : login.host;

  const found: Record<string, string> = {};
  for (const line of commands.split("\n")) {
    const [command = "", ...path] = line.trim().split(" ");
    if (command) found[command] = path.join(" ");
  }
  const missing = COMMANDS.filter((command) => !found[command]);
  checks.push(
    missing.length
      ? {
          check: "Slurm commands",
          status: "fail",
          detail: `not on ${where}'s PATH for a command run over ssh: ${missing.join(", ")}`,
          fix: "Point config.host at the cluster's login node, and make Slurm's commands reachable there without an interactive shell (PATH in ~/.bashrc or /etc/profile.d).",
        }
      : { check: "Slurm commands", status: "ok", detail: COMMANDS.map((command) => found[command]).join(", ") },
  );

  const [code = "", ...said] = accounting.trim().split("\n");
  checks.push(
    code === "0"
      ? { check: "accounting", status: "ok", detail: "sacct answers: an ended job's state is read from it" }
      : {
          check: "accounting",
          status: "ok",
          detail: `sacct does not answer (${said.join(" ").trim() || `exit status ${code}`}): an ended job's state comes from scontrol show job and the exit-code file its script writes`,
        },
  );

  const workLines = work.trim().split("\n");
  checks.push(
    workLines.at(-1) === "writable"
      ? { check: "work folder", status: "ok", detail: `${workLines[0]} (config.work_dir ${settings.work_dir}): writable, a file made and removed there` }
      : {
          check: "work folder",
          status: "fail",
          detail: `${settings.work_dir} cannot be written on ${where}: ${workLines.join(" ").trim() || "no answer"}`,
          fix: "Set config.work_dir to a folder you can write on the cluster's shared filesystem (seen by the login node and every compute node).",
        },
  );

  const [version = "", executable = ""] = python.trim().split("\n");
  const [major, minor] = version.split(".").map(Number);
  const named = `${settings.python}${settings.modules.length ? ` (after module load ${settings.modules.join(" ")})` : ""}`;
  if (!/^\d+\.\d+\.\d+$/.test(version))
    checks.push({
      check: "Python",
      status: "fail",
      detail: `${named} on ${where} cannot make a virtual environment: ${python.trim().split("\n").join(" ") || "no answer"}`,
      fix: "Name the cluster's Python 3.8 or newer with config.python (with its venv and ensurepip modules), or the modules that provide it with config.modules.",
    });
  else if (major! < MIN_PYTHON[0] || (major === MIN_PYTHON[0] && minor! < MIN_PYTHON[1]))
    checks.push({
      check: "Python",
      status: "fail",
      detail: `${named} on ${where} is Python ${version}`,
      fix: `Name a Python ${MIN_PYTHON.join(".")} or newer with config.python, or load one with config.modules.`,
    });
  else checks.push({ check: "Python", status: "ok", detail: `${named} on ${where}: Python ${version} (${executable})` });

  const bubblewrap = bwrap.trim();
  checks.push({
    check: "bubblewrap",
    status: "ok",
    detail: bubblewrap
      ? `${bubblewrap} on ${where} (informational)`
      : `not on ${where} (informational: each node's job has its own folder, SM_MODEL_DIR and the other variables pointing into it)`,
  });
  return checks;
}

/** `doctor --backend slurm`: the login node's checks, then (s3:// or gs://) this machine's access to the bucket. */
export async function slurmDoctor(spec: SlurmSpec, ctx: Context, options: { asked: boolean }): Promise<DoctorCheck[]> {
  // Nothing on this machine says it uses a cluster: asked for by name, or by a project's settings.
  if (!options.asked) return [];
  const { settings } = spec;
  const login: Login = { host: settings.host, sshConfig: settings.ssh_config };
  const ssh = `ssh ${login.sshConfig ? `-F ${login.sshConfig} ` : ""}${login.host}`;
  const result = await runRemote(login, doctorCommand(settings), ctx);
  const text = result.stdout.toString("utf8");
  const checks: DoctorCheck[] = [];
  if (!text.startsWith("reached")) {
    const words = result.stderr.trim().split("\n").slice(-2).join(" ") || `exit status ${result.code}`;
    checks.push({
      check: "login node",
      status: "fail",
      detail: `${isHere(login) ? "sh on this machine" : ssh} did not run a command: ${words}`,
      fix: isHere(login)
        ? "Run on the cluster's login node, or set config.host to it."
        : `Make \`${ssh} true\` work without a password prompt (a key in your ssh agent, or IdentityFile in your ssh_config), or set config.host to the login node.`,
    });
    for (const check of ["Slurm commands", "accounting", "work folder", "Python", "bubblewrap"])
      checks.push({ check, status: "skip", detail: "needs the login node" });
  } else {
    checks.push({ check: "login node", status: "ok", detail: isHere(login) ? "this machine (config.host=localhost)" : `${ssh} runs commands` });
    checks.push(...readDoctor(text, login, settings));
  }
  if (schemeOf(spec.outputPath)) {
    try {
      await bucketAnswers(spec.outputPath, ctx);
      checks.push({
        check: "output bucket",
        status: "ok",
        detail: `${spec.outputPath}: this machine's credentials list it (it copies each job's model there)`,
      });
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      checks.push({ check: "output bucket", status: "fail", detail: err.message.replace(/\.$/, ""), ...(err.hint ? { fix: err.hint } : {}) });
    }
  }
  return checks;
}
