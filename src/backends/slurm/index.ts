/**
 * The Slurm backend: a cluster people own, reached through its login node
 * (`remote.ts`). The shipped files go to the shared filesystem once per
 * digest (`ship.ts`); `sbatch` runs the script `plan.ts` writes; `squeue`
 * (then `sacct`, `scontrol show job` and the exit-code file the script leaves)
 * says how the job goes (`status.ts`); its log is the job's Slurm output file.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Context } from "../../context.js";
import { failure } from "../../errors.js";
import { isFinal } from "../../jobs/job.js";
import { jobShipment } from "../../package/image-plan.js";
import { reportShipment } from "../../package/ship.js";
import { redactUrls } from "../../redact.js";
import { joinLocation, schemeOf } from "../../storage/location.js";
import { distributionProblems } from "../common.js";
import type { Backend, JobChanges, SubmissionPlan } from "../types.js";
import { clusterOutput, jobPaths, sbatchOptions, sbatchScript, shellWord, submitCommand } from "./plan.js";
import { bucketAnswers, copyToBucket } from "./outputs.js";
import { slurmDoctor } from "./doctor.js";
import { copyFrom, isHere, mustRun, runRemote, spawnRemote, type Login } from "./remote.js";
import { slurmSchema, type SlurmProvider, type SlurmSettings, type SlurmSpec } from "./schema.js";
import { outputLocation, parseOutputLocation, readStatus, statusCommand } from "./status.js";

function loginOf(settings: Pick<SlurmSettings, "host" | "ssh_config">): Login {
  return { host: settings.host, sshConfig: settings.ssh_config };
}

/** The script and options of `job`, with the work folder as given (the dry run) or as the cluster resolved it. */
function request(spec: SlurmSpec, name: string, jobOutput: string, digest: string, ctx: Context): { script: string; options: string[] } {
  const paths = jobPaths(spec.settings.work_dir, name);
  const index = { PIP_INDEX_URL: ctx.env.PIP_INDEX_URL, PIP_EXTRA_INDEX_URL: ctx.env.PIP_EXTRA_INDEX_URL };
  const options = sbatchOptions(spec.settings, name, paths.log);
  return { script: sbatchScript(spec, jobOutput, { name, digest, index, options }), options };
}

/** The Slurm backend. */
export const slurmBackend = {
  name: "slurm",
  summary: "a Slurm cluster, through its login node (ssh HOST) and its shared filesystem",
  schema: slurmSchema,
  // A cluster job goes on when the follower leaves, as a cloud's does; `stop` stops it.
  onInterrupt: "detach",
  wantsGpu: (settings) => typeof settings.gpus_per_node === "number" && settings.gpus_per_node > 0,

  check(spec) {
    const problems = distributionProblems(spec);
    if (spec.environment?.kind === "conda")
      problems.push("the slurm backend makes a virtual environment from a requirements.txt; environment.yml (conda) is not supported there");
    const scheme = schemeOf(spec.outputPath);
    if (scheme && scheme !== "s3" && scheme !== "gs")
      problems.push(`the slurm backend writes to a folder on the cluster's shared filesystem (an absolute path), s3:// or gs://, not ${scheme}://`);
    for (const [channel, location] of Object.entries(spec.inputs))
      if (schemeOf(location)) problems.push(`input ${channel}: the slurm backend reads folders on the cluster's shared filesystem, not ${location}`);
    if (!spec.settings.work_dir.startsWith("/") && !spec.settings.work_dir.startsWith("~/"))
      problems.push(`config.work_dir must be an absolute path or start with ~/ (the login node's home), not ${spec.settings.work_dir}`);
    return problems;
  },

  async plan(job, ctx): Promise<SubmissionPlan> {
    const shipment = jobShipment(job.spec, ctx.env);
    reportShipment(
      shipment,
      (message) => ctx.reporter.warn(message),
      (message) => ctx.reporter.info(message),
    );
    const { packBlob } = await import("./ship.js");
    const blob = await packBlob(job.spec, shipment);
    fs.rmSync(blob.dir, { recursive: true, force: true });
    const { script, options } = request(job.spec, job.name, job.jobOutput, blob.digest, ctx);
    const placeholders = job.spec.settings.work_dir.startsWith("~/")
      ? [`${job.spec.settings.work_dir} in --output: the login node's home, resolved to an absolute path at submission`]
      : [];
    const count = job.spec.settings.instance_count;
    if (count > 1)
      placeholders.push(
        `the job's ${count} hosts: the nodes Slurm gives it when it starts (SLURM_JOB_NODELIST), one task each; the first node's address (scontrol show node) is MASTER_ADDR`,
      );
    return {
      backend: "slurm",
      job: job.name,
      files: shipment.files,
      requests: [{ api: "slurm", operation: "sbatch", request: { script: redactUrls(script), options: options.map(redactUrls) } }],
      checks: {
        done: [`shipped files, job runtime and environment file: ${blob.bytes} bytes, digest ${blob.digest}`],
        skipped: [
          `the login node ${job.spec.settings.host} was not asked: whether the digest is there already (then nothing is copied), nor the queue`,
          ...(schemeOf(job.jobOutput)
            ? [
                `${joinLocation(job.jobOutput, "output")} was not asked; the job packs its archives on the cluster and alekseylearn copies them there once it sees the job end`,
              ]
            : []),
        ],
      },
      placeholders,
    };
  },

  async submit(job, ctx) {
    const { spec } = job;
    const login = loginOf(spec.settings);
    // An s3:// or gs:// output path is written from this machine once the job ends (outputs.ts): asked now, before
    // anything is copied, so that missing credentials or a wrong bucket are found before the job waits in the queue.
    if (schemeOf(job.jobOutput)) await bucketAnswers(joinLocation(job.jobOutput, "output"), ctx);
    const shipment = jobShipment(spec, ctx.env);
    reportShipment(
      shipment,
      (message) => ctx.reporter.warn(message),
      (message) => ctx.reporter.info(message),
    );
    // Loaded on first use (tar), as the other backends load their SDKs: `--help` stays quick.
    const { blobCommand, packBlob } = await import("./ship.js");
    const blob = await packBlob(spec, shipment);
    try {
      const work = spec.settings.work_dir;
      // One round trip: the work folder as an absolute path (sbatch's --output takes no ~), and whether the digest is there.
      const answer = await mustRun(
        login,
        `mkdir -p ${shellWord(work)}/blobs && cd ${shellWord(work)} && pwd -P && if [ -d blobs/${blob.digest} ]; then echo have; else echo need; fi`,
        `make the work folder ${work}`,
        ctx,
      );
      const [workDir, have] = answer.trim().split("\n").slice(-2);
      let copied = 0;
      if (have === "need") {
        ctx.reporter.info(`Copying ${blob.bytes} bytes to ${spec.settings.host}:${workDir}/blobs/${blob.digest}`);
        await mustRun(login, blobCommand(workDir!, blob.digest), "copy the shipped files", ctx, { file: blob.tar });
        copied = blob.bytes;
      } else {
        ctx.reporter.info(`Nothing to copy: ${spec.settings.host}:${workDir}/blobs/${blob.digest} is there already`);
      }
      const resolved: SlurmSpec = { ...spec, settings: { ...spec.settings, work_dir: workDir! } };
      const { script, options } = request(resolved, job.name, job.jobOutput, blob.digest, ctx);
      const submitted = await mustRun(login, submitCommand(options, jobPaths(workDir!, job.name).job), "submit the job with sbatch", ctx, { text: script });
      // --parsable prints "ID" or "ID;CLUSTER" (slurm.schedmd.com/sbatch.html#OPT_parsable).
      const jobId = submitted.trim().split("\n").pop()!.split(";")[0]!;
      if (!/^\d+$/.test(jobId)) throw failure(`sbatch did not answer with a job id: ${submitted.trim()}`);
      ctx.reporter.info(`Submitted Slurm job ${jobId}`);
      return { state: "queued", provider: { jobId, workDir: workDir!, copied: String(copied) } } satisfies JobChanges<SlurmProvider>;
    } finally {
      fs.rmSync(blob.dir, { recursive: true, force: true });
    }
  },

  async describe(job, ctx) {
    const jobId = job.provider?.jobId;
    const workDir = job.provider?.workDir;
    // An ended job's record is what it will stay (a finished job's folder may be cleaned up on the cluster later).
    if (!jobId || !workDir || isFinal(job.state)) return {};
    const { spec } = job;
    const paths = jobPaths(workDir, job.name);
    const output = clusterOutput(workDir, job.name, job.jobOutput);
    const result = await runRemote(loginOf(spec.settings), statusCommand(jobId, paths.job, output), ctx);
    if (result.code !== 0 && !isHere(loginOf(spec.settings)) && result.code === 255) return {}; // the login node is unreachable now; try again later
    const status = readStatus(result.stdout.toString("utf8"));
    const changes: JobChanges<SlurmProvider> = {};
    const provider: SlurmProvider = { ...job.provider };
    if (status.slurmState) provider.secondary = status.slurmState;
    if (status.nodes) provider.nodes = status.nodes;
    provider.message = status.state === "queued" && status.queueReason ? status.queueReason : status.nodes ? `on ${status.nodes}` : undefined;
    provider.queueReason = status.state === "queued" ? status.queueReason : undefined;
    if (status.state !== job.state) changes.state = status.state;
    if (status.state === "running" && !job.startedAt) changes.startedAt = new Date().toISOString();
    if (isFinal(status.state)) {
      changes.endedAt = job.endedAt ?? new Date().toISOString();
      if (status.exitCode !== undefined) changes.exitCode = status.exitCode;
      if (status.reason) changes.reason = status.reason;
      const login = loginOf(spec.settings);
      if (schemeOf(job.jobOutput)) {
        // The bucket's copy first; until it is made the record stays as it was, so the next status or fetch tries again.
        const names = [...(status.model ? ["model.tar.gz"] : []), ...(status.output ? ["output.tar.gz"] : [])];
        const copied = names.length ? await copyToBucket(login, job.name, output, job.jobOutput, names, ctx) : {};
        if (copied["model.tar.gz"]) changes.model = copied["model.tar.gz"];
        if (copied["output.tar.gz"]) changes.output = copied["output.tar.gz"];
      } else {
        if (status.model) changes.model = outputLocation(login, `${output}/model.tar.gz`);
        if (status.output) changes.output = outputLocation(login, `${output}/output.tar.gz`);
      }
    }
    if (JSON.stringify(provider) !== JSON.stringify(job.provider)) changes.provider = provider;
    return changes;
  },

  async *logs(job, ctx, options) {
    const workDir = job.provider?.workDir;
    if (!workDir) return;
    const login = loginOf(job.spec.settings);
    const file = shellWord(jobPaths(workDir, job.name).log);
    if (!options.follow || !options.refresh) {
      const text = (await runRemote(login, `cat ${file} 2>/dev/null`, ctx)).stdout.toString("utf8");
      yield* text.split(/\r?\n/).filter((line, i, all) => line || i < all.length - 1);
      return;
    }
    // One long `tail -F` streams the log as Slurm writes it (the file appears once the job starts); the state is polled
    // beside it. Once the job has ended, what tail had not sent yet is read from where it stopped.
    const lines: string[] = [];
    let bytes = 0;
    let partial = "";
    let wake: (() => void) | undefined;
    const take = (chunk: Buffer): void => {
      bytes += chunk.length;
      const parts = (partial + chunk.toString("utf8")).split(/\r?\n/);
      partial = parts.pop() ?? "";
      lines.push(...parts);
      wake?.();
    };
    const tail = spawnRemote(login, `tail -c +1 -F ${file} 2>/dev/null`, ctx);
    tail.stdout!.on("data", take);
    tail.on("error", () => {});
    try {
      for (;;) {
        const record = await options.refresh();
        while (lines.length) yield lines.shift()!;
        if (isFinal(record.state)) break;
        const waited = new Promise<void>((resolve) => (wake = resolve));
        try {
          await Promise.race([sleep(job.spec.settings.poll_interval * 1000, undefined, { signal: options.signal }), waited]);
        } catch {
          return; // the reader stopped following
        }
        wake = undefined;
        if (options.signal?.aborted) return;
      }
      tail.stdout!.off("data", take);
      tail.kill();
      const rest = (await runRemote(login, `tail -c +${bytes + 1} ${file} 2>/dev/null`, ctx)).stdout;
      take(rest);
      while (lines.length) yield lines.shift()!;
      if (partial) yield partial;
    } finally {
      tail.kill();
    }
  },

  async stop(job, ctx) {
    const jobId = job.provider?.jobId;
    const workDir = job.provider?.workDir;
    if (isFinal(job.state) || !jobId || !workDir) return;
    const grace = job.spec.settings.stop_timeout;
    // SIGTERM to the batch script and every step (--full: scancel.html#OPT_full), the job's stop reason noted first; a
    // detached watcher cancels what still runs after the grace time (it outlives this process and the ssh session, and
    // leaves as soon as the job has ended). A job still pending takes no signal ("Job can not be altered now"): it is
    // taken out of the queue at once.
    const alive = `squeue --noheader --jobs=${jobId} --format=%i 2>/dev/null | grep -q .`;
    const watcher = `i=0; while [ $i -lt ${grace} ] && ${alive}; do sleep 1; i=$((i+1)); done; if ${alive}; then scancel ${jobId}; fi`;
    await mustRun(
      loginOf(job.spec.settings),
      `touch ${shellWord(jobPaths(workDir, job.name).job)}/stop-requested && ` +
        `if squeue --noheader --jobs=${jobId} --states=PENDING --format=%i 2>/dev/null | grep -q .; then scancel ${jobId}; ` +
        `else scancel --signal=TERM --full ${jobId} && (nohup sh -c ${shellWord(watcher)} >/dev/null 2>&1 </dev/null &); fi`,
      `stop Slurm job ${jobId}`,
      ctx,
    );
  },

  doctor: (spec, ctx, options) => slurmDoctor(spec, ctx, options),

  outputScheme: "slurm",

  async fetchOutputs(location, to, options, ctx) {
    const { login, path: model } = parseOutputLocation(location);
    const { extractArchive } = await import("../../storage/archive.js");
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "alekseylearn-slurm-fetch-"));
    try {
      const files: string[] = [];
      const archives: Array<[string, string, boolean]> = [
        [model, ".", true],
        [model.replace(/model\.tar\.gz$/, "output.tar.gz"), "output", false],
      ];
      for (const [remote, into, required] of archives) {
        const local = path.join(scratch, path.basename(remote));
        const result = await copyFrom(login, remote, local, ctx);
        if (result.code !== 0) {
          if (!required) continue;
          throw failure(`Could not read ${remote} on ${login.host}: ${result.stderr.trim() || `exit status ${result.code}`}`);
        }
        const extracted = await extractArchive(local, path.join(to, into), { overwrite: options.overwrite });
        files.push(...extracted.map((file) => (into === "." ? file : `${into}/${file}`)));
      }
      return files;
    } finally {
      fs.rmSync(scratch, { recursive: true, force: true });
    }
  },
} satisfies Backend<typeof slurmSchema, SlurmProvider>;
