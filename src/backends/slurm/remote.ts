/**
 * Commands on the cluster's login node: through the user's own `ssh HOST` (their ~/.ssh/config, or `ssh -F FILE`),
 * never prompting (BatchMode=yes: a missing key is an error, not a hang), or, for `localhost`, run here by `sh -c`.
 * Every command is one shell line; Slurm's own programs (sbatch, squeue, scancel) run there as the user runs them.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import type { Context } from "../../context.js";
import { failure } from "../../errors.js";
import { namesSecret } from "../../redact.js";

/** Where commands run: the login node's name (or localhost) and the ssh_config file to use, if not the user's own. */
export interface Login {
  host: string;
  sshConfig?: string | undefined;
}

/** The program and arguments that run `command` on the login node. */
export function loginCommand(login: Login, command: string): { program: string; args: string[] } {
  if (isHere(login)) return { program: "sh", args: ["-c", command] };
  const config = login.sshConfig ? ["-F", login.sshConfig] : [];
  // -T: no terminal (a job's log is bytes, not a screen); BatchMode: ssh fails rather than asks for a password or a host key.
  return { program: "ssh", args: [...config, "-T", "-o", "BatchMode=yes", login.host, "--", command] };
}

/** True when this machine is the login node. */
export function isHere(login: Login): boolean {
  return login.host === "localhost" || login.host === "";
}

/** What a remote command left: its exit status and its output. */
export interface RemoteResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** The clouds whose credentials alekseylearn itself reads: given to it, not to a job. */
const CLOUD_PREFIX = /^(AWS|GOOGLE|CLOUDSDK|GCLOUD|KAGGLE)_/;
/** Such a credential that `namesSecret` does not recognise by its name alone (Kaggle's API key). */
const CLOUD_CREDENTIALS = new Set(["KAGGLE_KEY"]);

/**
 * The environment a command on this machine as the login node runs with: this process's, without the AWS, Google and
 * Kaggle credentials alekseylearn was given. sbatch passes the submitting shell's whole environment into the job (its
 * default `--export=ALL`, slurm.schedmd.com/sbatch.html#OPT_export), so on localhost the job would get them; through
 * ssh it gets the login shell's environment, which has none of them. Other variables (a WANDB_API_KEY the user
 * exported for the job) pass as sbatch passes them.
 */
export function loginEnvironment(env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    const cloudCredential = CLOUD_CREDENTIALS.has(name) || (CLOUD_PREFIX.test(name) && namesSecret(name));
    if (value !== undefined && !cloudCredential) kept[name] = value;
  }
  return kept;
}

/** Start `command` on the login node, its stdin, stdout and stderr piped. */
export function spawnRemote(login: Login, command: string, ctx: Context): ChildProcess {
  const { program, args } = loginCommand(login, command);
  // ssh reads the user's keys and agent from this environment; a command run here gets it without credentials.
  const env = isHere(login) ? loginEnvironment(ctx.env) : (ctx.env as NodeJS.ProcessEnv);
  return spawn(program, args, { cwd: ctx.cwd, env, stdio: ["pipe", "pipe", "pipe"] });
}

/** Run `command` on the login node, feeding it `input` (text, or a file's bytes streamed); never throws for its exit status. */
export function runRemote(login: Login, command: string, ctx: Context, input?: { text?: string; file?: string }): Promise<RemoteResult> {
  return new Promise((resolve, reject) => {
    const child = spawnRemote(login, command, ctx);
    const out: Buffer[] = [];
    let err = "";
    child.stdout!.on("data", (chunk: Buffer) => out.push(chunk));
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (chunk: string) => (err += chunk));
    child.on("error", (error) =>
      reject(
        failure(
          `Could not run ${isHere(login) ? "sh" : "ssh"} to reach the Slurm login node ${login.host}: ${error.message}.`,
          "Install an OpenSSH client, or set config.host=localhost on the login node itself.",
        ),
      ),
    );
    child.on("close", (code) => resolve({ code, stdout: Buffer.concat(out), stderr: err }));
    child.stdin!.on("error", () => {}); // a command that exits without reading its input
    if (input?.file) fs.createReadStream(input.file).pipe(child.stdin!);
    else child.stdin!.end(input?.text ?? "");
  });
}

/** Run `command` and return its output; a UserError naming the command's own words when it fails (ssh's 255: the connection itself). */
export async function mustRun(login: Login, command: string, what: string, ctx: Context, input?: { text?: string; file?: string }): Promise<string> {
  const result = await runRemote(login, command, ctx, input);
  if (result.code === 0) return result.stdout.toString("utf8");
  const words = result.stderr.trim().split("\n").slice(-3).join(" ") || `exit status ${result.code}`;
  if (!isHere(login) && result.code === 255)
    throw failure(
      `Could not reach the Slurm login node ${login.host} over ssh: ${words}`,
      `Check that \`ssh ${login.sshConfig ? `-F ${login.sshConfig} ` : ""}${login.host}\` logs in without a password prompt (a key in your ssh agent or ssh_config).`,
    );
  throw failure(`Could not ${what} on ${login.host}: ${words}`);
}

/** Stream the file `remote` on the login node into the local file `local` (never held in memory); its `cat`'s exit status and words. */
export function copyFrom(login: Login, remote: string, local: string, ctx: Context): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawnRemote(login, `cat ${quote(remote)}`, ctx);
    child.stdin!.end();
    const out = fs.createWriteStream(local);
    child.stdout!.pipe(out);
    let err = "";
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (chunk: string) => (err += chunk));
    const written = new Promise<void>((done) => out.on("close", done));
    child.on("error", reject);
    child.on("close", (code) => void written.then(() => resolve({ code, stderr: err })));
  });
}

function quote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}
