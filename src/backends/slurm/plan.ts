/**
 * The spec translated, by pure functions, into what a Slurm submission sends:
 * the sbatch options (from the settings; an unset setting adds none) and the
 * sbatch script, a plain bash file a user can read, and the folders on the
 * cluster's shared filesystem it uses:
 *
 *   WORK/blobs/DIGEST/   the shipped code, the job runtime and the environment file, by the digest of their tar
 *   WORK/envs/HASH/      the virtual environment, by the hash of the environment it is made from
 *   WORK/jobs/JOB/       the job's log (slurm.out), each node's code copy and /opt/ml (nodes/N/), exit-code, failure,
 *                        and output/ when the output path is s3:// or gs:// (`clusterOutput`)
 */
import { createHash } from "node:crypto";
import { NOTEBOOK_PACKAGES, runtimeEnv, trainArgs } from "../../package/runtime.js";
import { shippableRequirements } from "../../package/ship.js";
import { runtimeSettings } from "../common.js";
import { joinLocation, schemeOf } from "../../storage/location.js";
import type { SlurmSettings, SlurmSpec } from "./schema.js";

/** The job's folders on the cluster, from the work folder as given (absolute, or `~/…`). */
export function jobPaths(workDir: string, name: string): { work: string; job: string; log: string } {
  const work = workDir.replace(/\/+$/, "");
  const job = `${work}/jobs/${name}`;
  return { work, job, log: `${job}/slurm.out` };
}

/**
 * Where the sbatch script packs the job's archives on the cluster: OUTPUT_PATH/JOB/output/ when the output path is a
 * cluster folder; with s3:// or gs://, the job's own folder (WORK/jobs/JOB/output/), from where alekseylearn copies them
 * to the bucket with this machine's credentials once it sees the job end (`outputs.ts`): the cluster is given none.
 */
export function clusterOutput(workDir: string, name: string, jobOutput: string): string {
  return schemeOf(jobOutput) ? `${jobPaths(workDir, name).job}/output` : joinLocation(jobOutput, "output");
}

/** `text` as one bash word; a leading `~/` stays the user's home (`"$HOME"/…`). */
export function shellWord(text: string): string {
  if (text === "~") return '"$HOME"';
  if (text.startsWith("~/")) return `"$HOME"/${shellWord(text.slice(2))}`;
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

/** Seconds as sbatch's --time (`days-hours:minutes:seconds`, slurm.schedmd.com/sbatch.html#OPT_time). */
export function sbatchTime(seconds: number): string {
  const days = Math.floor(seconds / 86400);
  const rest = seconds % 86400;
  const hms = [Math.floor(rest / 3600), Math.floor((rest % 3600) / 60), rest % 60].map((n) => String(n).padStart(2, "0")).join(":");
  return days ? `${days}-${hms}` : hms;
}

/**
 * The sbatch options of `spec`'s job (slurm.schedmd.com/sbatch.html): its name, its log, and one option per setting that
 * is set; `--nodes` and `--ntasks-per-node=1` always (one task per node: the runtime is each node's init).
 */
export function sbatchOptions(settings: SlurmSettings, name: string, logFile: string): string[] {
  const options = [`--job-name=${name}`, `--output=${logFile}`, `--nodes=${settings.instance_count}`, "--ntasks-per-node=1"];
  const set = (flag: string, value: string | number | undefined): void => {
    if (value !== undefined && value !== "") options.push(`--${flag}=${value}`);
  };
  set("partition", settings.partition);
  set("account", settings.account);
  set("qos", settings.qos);
  set("time", settings.max_runtime !== undefined ? sbatchTime(settings.max_runtime) : undefined);
  set("gpus-per-node", settings.gpus_per_node);
  set("cpus-per-task", settings.cpus_per_task);
  set("mem", settings.mem);
  set("constraint", settings.constraint);
  return [...options, ...settings.extra_sbatch];
}

/** `url` without the credentials in it (user information, secret query values): they stay in the cluster's pip configuration. */
export function stripCredentials(url: string): string {
  return url
    .replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^/\s@"'<>]+@/gi, (whole, scheme: string) => (/\$\{/.test(whole) ? whole : scheme))
    .replace(/([?&])((?:[A-Za-z0-9_.-]*(?:token|secret|password|key|sig)[A-Za-z0-9_.-]*))=[^&#\s]*/gi, "$1$2=");
}

/** The requirements the environment is made from, as they ship (credential lines taken out); undefined without a requirements file. */
export function shippedRequirements(spec: SlurmSpec): string | undefined {
  return spec.environment?.kind === "requirements" ? shippableRequirements(spec.environment.content).text : undefined;
}

/** The environment's identity: what it is made from (requirements, interpreter, modules, the notebook runner's packages). */
export function environmentHash(spec: SlurmSpec): string {
  const extras = spec.artifact.kind === "notebook" ? NOTEBOOK_PACKAGES : [];
  const identity = JSON.stringify({ requirements: shippedRequirements(spec) ?? "", python: spec.settings.python, modules: spec.settings.modules, extras });
  return createHash("sha256").update(identity).digest("hex").slice(0, 16);
}

/** What the script needs beyond the spec: the job's name, the digest of its shipped files, the pip index URLs to pass on. */
export interface ScriptInputs {
  name: string;
  /** The digest the shipped files are kept under (WORK/blobs/DIGEST). */
  digest: string;
  /** PIP_INDEX_URL and PIP_EXTRA_INDEX_URL of the submitting environment, when set. */
  index: { PIP_INDEX_URL?: string | undefined; PIP_EXTRA_INDEX_URL?: string | undefined };
  /** The sbatch options it is submitted with, named in its first lines for a reader. */
  options?: readonly string[];
}

/** The bash lines that set `name` to each variable of `vars`, exported. */
function exports(vars: Record<string, string>): string[] {
  return Object.keys(vars)
    .sort()
    .map((key) => `export ${key}=${shellWord(vars[key]!)}`);
}

/**
 * The sbatch script of `spec`'s job: load the modules, make (once per environment hash, under a lock) or reuse the
 * virtual environment, give each node its own copy of the code and its own job folder, run the job runtime there (through
 * `srun`, one task per node, when there are several), then pack the first node's model and output data (with the other
 * nodes' under hosts/NODE/) to OUTPUT_PATH/JOB/output/ (`clusterOutput`) and write the exit code last (what alekseylearn reads once Slurm has forgotten the job).
 */
export function sbatchScript(spec: SlurmSpec, jobOutput: string, inputs: ScriptInputs): string {
  const { settings } = spec;
  const paths = jobPaths(settings.work_dir, inputs.name);
  const requirements = shippedRequirements(spec);
  const extras = spec.artifact.kind === "notebook" ? [...NOTEBOOK_PACKAGES] : [];
  const runtime = {
    ...runtimeEnv({
      entry: spec.artifact.entry,
      kind: spec.artifact.kind,
      name: inputs.name,
      inputs: spec.inputs,
      ...runtimeSettings(settings),
      stopTimeout: settings.stop_timeout,
    }),
    ALEKSEYLEARN_PLATFORM: "slurm",
    ALEKSEYLEARN_SLURM_JOB_DIR: paths.job,
    PYTHONUNBUFFERED: "1",
  };
  const index: Record<string, string> = {};
  for (const key of ["PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL"] as const) {
    const value = inputs.index[key];
    if (value) index[key] = stripCredentials(value);
  }
  const install = [
    ...(requirements !== undefined ? ['"$ENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$BLOB/requirements.txt"'] : []),
    ...(extras.length ? [`"$ENV/bin/python" -m pip install --quiet --disable-pip-version-check ${extras.join(" ")}`] : []),
  ];
  const run = settings.instance_count > 1 ? "srun --ntasks-per-node=1 --kill-on-bad-exit=1 bash -c node" : "SLURM_NODEID=0 bash -c node";
  return [
    "#!/bin/bash",
    `# alekseylearn job ${inputs.name}: ${spec.artifact.entry} on ${settings.instance_count} node${settings.instance_count > 1 ? "s" : ""}.`,
    `# Submitted as: sbatch --parsable ${(inputs.options ?? []).join(" ")} < this script`,
    "# It runs on the job's first node; everything it makes is under WORK (below) and OUTPUT.",
    "set -uo pipefail",
    `WORK=${shellWord(paths.work)}`,
    `JOB_DIR="$WORK/jobs/${inputs.name}"`,
    `BLOB="$WORK/blobs/${inputs.digest}"`,
    `ENV="$WORK/envs/${environmentHash(spec)}"`,
    `OUTPUT=${shellWord(clusterOutput(settings.work_dir, inputs.name, jobOutput))}`,
    ...(schemeOf(jobOutput)
      ? [
          `# The output path is ${joinLocation(jobOutput, "output").replace(/[\r\n]/g, " ")}: this job is given no credential for it. alekseylearn copies`,
          "# model.tar.gz and output.tar.gz from OUTPUT to it with its own credentials once it sees the job end (fit, status, fetch).",
        ]
      : []),
    'fail() { echo "[alekseylearn] $1" >&2; echo "$1" > "$JOB_DIR/failure"; echo 1 > "$JOB_DIR/exit-code"; exit 1; }',
    ...(settings.modules.length ? [`module load ${settings.modules.map(shellWord).join(" ")} || fail "module load failed"`] : []),
    ...exports(index),
    "",
    "# The environment: made once for its hash, then reused by every job (a lock keeps two jobs from making it at once).",
    'mkdir -p "$WORK/envs"',
    "(",
    "  flock 9",
    '  if [ ! -e "$ENV/.ready" ]; then',
    '    echo "[alekseylearn] creating the environment $ENV" >&2',
    `    rm -rf "$ENV" && ${shellWord(settings.python)} -m venv "$ENV" || exit 1`,
    ...install.map((line) => `    ${line} || exit 1`),
    '    touch "$ENV/.ready"',
    "  fi",
    ') 9>"$ENV.lock" || fail "could not create the environment $ENV (see the lines above)"',
    "",
    "# Each node: its own copy of the code and its own job folder (nodes/NODEID/ml), the runtime as the job's init.",
    "node() {",
    '  dir="$JOB_DIR/nodes/$SLURM_NODEID"',
    '  rm -rf "$dir" && mkdir -p "$dir/ml" && cp -R "$BLOB/code" "$dir/code" && cd "$dir/code" || exit 1',
    // The node's name as Slurm calls it (SLURMD_NODENAME, set in every task: slurm.schedmd.com/srun.html#OPT_SLURMD_NODENAME), for hosts/NODE/ below.
    '  printf \'%s\\n\' "${SLURMD_NODENAME:-$SLURM_NODEID}" > "$dir/host"',
    `  exec "$ENV/bin/python" -S -u "$BLOB/runtime/alekseylearn_entrypoint.py" ${trainArgs(spec.hyperparameters).map(shellWord).join(" ")}`,
    "}",
    "export -f node",
    "export WORK JOB_DIR BLOB ENV",
    ...exports(runtime),
    "",
    "# SIGTERM (alekseylearn stop: scancel --signal=TERM --full) reaches every process of the job; this shell waits for",
    "# them to save and end, then packs what they saved.",
    "stopping=",
    "trap 'stopping=1' TERM",
    `${run} &`,
    "child=$!",
    'wait "$child"; code=$?',
    'while [ -n "$stopping" ] && kill -0 "$child" 2>/dev/null; do wait "$child"; code=$?; done',
    "",
    "# Outputs: the first node's model (also when stopped, as SageMaker keeps a stopped job's) and output data.",
    'pack() { [ -n "$(ls -A "$1" 2>/dev/null)" ] || return 0; tar -czf "$2.partial" -C "$1" . && mv "$2.partial" "$2"; }',
    'mkdir -p "$OUTPUT"',
    'first="$JOB_DIR/nodes/0/ml"',
    ...(settings.instance_count > 1
      ? [
          "# The first node's model is the job's; what the others left in their model and output data folders is kept in",
          "# output.tar.gz under hosts/NODE/model/ and hosts/NODE/data/ (as the local backend keeps algo-N's).",
          'for dir in "$JOB_DIR"/nodes/*/; do',
          '  id=$(basename "$dir"); [ "$id" = 0 ] && continue',
          '  host=$(cat "$dir/host" 2>/dev/null || echo "$id")',
          "  for part in model:model output/data:data; do",
          '    from="$dir/ml/${part%%:*}"; to="$first/output/data/hosts/$host/${part#*:}"',
          '    if [ -n "$(ls -A "$from" 2>/dev/null)" ]; then mkdir -p "$to" && cp -R "$from/." "$to/"; fi',
          "  done",
          "done",
        ]
      : []),
    'if [ "$code" = 0 ] || [ -n "$stopping" ]; then pack "$first/model" "$OUTPUT/model.tar.gz"; fi',
    'pack "$first/output/data" "$OUTPUT/output.tar.gz"',
    'cat "$JOB_DIR"/nodes/*/ml/output/failure 2>/dev/null | tail -n 3 > "$JOB_DIR/failure"',
    'echo "$code" > "$JOB_DIR/exit-code"',
    'exit "$code"',
    "",
  ].join("\n");
}

/**
 * The remote command that submits a script given on its standard input: the job's folder made first (Slurm writes its
 * log there), and never one that exists (a job of the same name submitted from elsewhere: its exit code would be taken
 * for this job's).
 */
export function submitCommand(options: readonly string[], jobDir: string): string {
  const dir = shellWord(jobDir);
  return (
    `if [ -e ${dir} ]; then echo "the job folder ${jobDir.replace(/["$`\\]/g, "")} exists already (a job of this name was submitted before): pick another name with --name" >&2; exit 3; fi && ` +
    `mkdir -p ${dir} && sbatch --parsable ${options.map(shellWord).join(" ")}`
  );
}
