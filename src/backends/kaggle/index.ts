/**
 * The Kaggle backend: the artifact runs as a Kaggle kernel (a script or a
 * notebook, with a preamble that provides the /opt/ml contract), followed by
 * polling its session status; its output is fetched from Kaggle.
 */
import fs from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Context } from "../../context.js";
import { failure, UserError } from "../../errors.js";
import { isFinal, type JobState } from "../../jobs/job.js";
import type { Backend, JobChanges } from "../types.js";
import { DEFAULT_ENDPOINT, KaggleApi, logEvents, parseStatus, type KernelWorkerStatus, type LogEvent } from "./api.js";
import { uploadCode } from "./code.js";
import { findCredentials } from "./credentials.js";
import { kaggleDoctor } from "./doctor.js";
import { planKaggle } from "./dry-run.js";
import { acceleratorFields, kaggleProblems, kernelName, saveKernelRequest } from "./plan.js";
import { kaggleSchema, type KaggleJob, type KaggleProvider } from "./schema.js";

const clients = new WeakMap<Context, Promise<KaggleApi>>();

/** The client for the credentials and endpoint in the context's environment, found once per context (so a warning about them is said once). */
export function connect(ctx: Context): Promise<KaggleApi> {
  let client = clients.get(ctx);
  if (!client) {
    const endpoint = ctx.env.KAGGLE_API_ENDPOINT || DEFAULT_ENDPOINT;
    client = findCredentials(ctx.env, endpoint, (message) => ctx.reporter.warn(message)).then((credentials) => new KaggleApi(credentials, endpoint));
    clients.set(ctx, client);
  }
  return client;
}

const STATES: Record<KernelWorkerStatus, JobState> = {
  NEW_SCRIPT: "queued",
  QUEUED: "queued",
  RUNNING: "running",
  CANCEL_REQUESTED: "running",
  COMPLETE: "completed",
  ERROR: "failed",
  CANCEL_ACKNOWLEDGED: "stopped",
};

/** Right after a push, Kaggle may still report the previous version's end; an end is believed once the new run was seen, or after this long. */
const NEW_RUN_GRACE_MS = 60_000;

/** The lines of a Kaggle session log: a JSON list of {stream_name, time, data}, or plain text from older servers. */
export function logLines(log: string | undefined): string[] {
  if (!log) return [];
  const text = logEvents(log)
    .map((event) => event.data ?? "")
    .join("");
  return text.replace(/\n$/, "").split(/\r?\n/);
}

/** Turns log events (chunks of output) into whole lines: a line is given once its end has come. */
export class LineAssembler {
  private pending = "";

  /** The lines that `event` completes. */
  push(event: LogEvent): string[] {
    this.pending += event.data ?? "";
    const lines = this.pending.split(/\r?\n/);
    this.pending = lines.pop()!;
    return lines;
  }

  /** What is left of an unfinished last line. */
  flush(): string[] {
    const rest = this.pending;
    this.pending = "";
    return rest ? [rest] : [];
  }
}

/** The whole log of a session that has ended: from the log stream (a JSON array then), or with its output (older APIs). */
async function endedLog(api: KaggleApi, owner: string, slug: string): Promise<LogEvent[]> {
  const stream = await api.logStream(owner, slug);
  if (!stream) return logEvents((await api.sessionOutput(owner, slug, undefined, 1)).log ?? "");
  const events: LogEvent[] = [];
  for await (const event of stream) events.push(event);
  return events;
}

function refOf(job: KaggleJob): { owner: string; slug: string } {
  const { owner, slug } = job.provider ?? {};
  if (!owner || !slug) throw failure(`Job ${job.name} has not been pushed to Kaggle.`, job.reason ? `It failed before: ${job.reason}` : undefined);
  return { owner, slug };
}

/** The Kaggle backend. */
export const kaggleBackend = {
  name: "kaggle",
  summary: "Kaggle Kernels: free GPU and TPU hours; the artifact runs as a kernel",
  schema: kaggleSchema,
  onInterrupt: "detach",
  outputScheme: "kaggle",

  check: kaggleProblems,
  plan: planKaggle,
  // config.accelerator gpu or an Nvidia* machine shape; Kaggle's kernels need no image of ours, so nothing is built from this.
  wantsGpu: (settings) => typeof settings.accelerator === "string" && acceleratorFields(settings.accelerator)?.enableGpu === true,

  async submit(job, ctx, options) {
    const { spec } = job;
    const api = await connect(ctx);
    const owner = await api.username();
    const { slug } = kernelName(spec);
    const codeDataset = spec.artifact.isFolder ? await uploadCode(api, owner, slug, spec, ctx) : undefined;
    const text = fs.readFileSync(path.join(spec.artifact.dir, spec.artifact.entry), "utf8");
    const request = saveKernelRequest(spec, owner, { text, jobName: job.name, ...(codeDataset ? { codeDataset } : {}) });
    if (spec.environment?.kind === "requirements" && !request.enableInternet) {
      ctx.reporter.warn("config.enable_internet=false: the kernel cannot pip install requirements.txt, so it runs with Kaggle's preinstalled packages only.");
    }
    ctx.reporter.info(`Pushing the ${request.kernelType} kernel ${owner}/${slug} to Kaggle…`);
    const response = await api.saveKernel(request);
    if (response.error) {
      const quota = /quota|gpu|tpu|accelerator/i.test(response.error);
      throw failure(
        `Kaggle refused the kernel ${owner}/${slug}: ${response.error}`,
        quota ? "Check your weekly GPU/TPU quota and phone verification at https://www.kaggle.com/settings, or run with --config.accelerator=none." : undefined,
      );
    }
    const invalid = [
      ...(response.invalidDatasetSources ?? []).map((s) => `dataset ${s}`),
      ...(response.invalidCompetitionSources ?? []).map((s) => `competition ${s}`),
      ...(response.invalidKernelSources ?? []).map((s) => `kernel ${s}`),
      ...(response.invalidModelSources ?? []).map((s) => `model ${s}`),
    ];
    const provider = { owner, slug, url: response.url ?? "", version: String(response.versionNumber ?? ""), pushedAt: new Date().toISOString() };
    if (invalid.length) {
      options.record({ provider }); // the version was pushed: the job knows its kernel, though it failed here

      throw failure(
        `Kaggle does not know ${invalid.length === 1 ? "this source" : "these sources"} of ${owner}/${slug}:`,
        "Fix the names (OWNER/SLUG, as in the source's URL) and run again; the kernel version was pushed without them.",
        invalid.map((s) => `- ${s}`),
      );
    }
    ctx.reporter.info(`Kernel ${owner}/${slug} version ${response.versionNumber ?? "?"}: ${response.url ?? ""}`);
    return { state: "queued", jobOutput: `kaggle://${owner}/${slug}`, provider };
  },

  async describe(record, ctx) {
    if (isFinal(record.state) || !record.provider?.owner) return {};
    const { owner, slug } = refOf(record);
    const answer = await (await connect(ctx)).sessionStatus(owner, slug);
    const status = parseStatus(answer.status);
    if (!status) return {};
    const state = STATES[status];
    const seen = record.provider.seen === "1" || !isFinal(state);
    const pushedAt = Date.parse(record.provider.pushedAt ?? record.createdAt);
    if (isFinal(state) && !seen && Date.now() - pushedAt < NEW_RUN_GRACE_MS) return {}; // likely the previous version's end
    if (state === record.state && seen === (record.provider.seen === "1")) return {};
    const now = new Date().toISOString();
    const changes: JobChanges<KaggleProvider> = { state, provider: { ...record.provider, seen: seen ? "1" : "0" } };
    if (state === "running" && !record.startedAt) changes.startedAt = now;
    if (isFinal(state)) {
      changes.endedAt = now;
      if (state === "completed") changes.model = `kaggle://${owner}/${slug}`;
      if (state === "failed") changes.reason = answer.failureMessage || "the kernel ended with an error";
      if (state === "stopped") changes.reason = "the session was cancelled";
    }
    return changes;
  },

  async *logs(job, ctx, options) {
    let record = job;
    const base = job.spec.settings.poll_interval * 1000;
    let interval = base;
    let last: JobState | undefined;
    // The stream replays a session's log from its start on every connection (kaggle-cli's `kernels logs --follow`): events already shown are counted, and skipped.
    let shown = 0;
    const lines = new LineAssembler();
    const refresh = async (): Promise<KaggleJob> => (options.refresh ? options.refresh() : { ...record, ...(await this.describe(record, ctx)) });
    while (options.follow) {
      record = await refresh();
      if (record.state !== last) {
        yield `[kaggle] ${record.state}${record.provider?.url && last === undefined ? ` (${record.provider.url})` : ""}`;
        last = record.state;
        interval = base;
      } else {
        interval = Math.min(interval * 1.5, 60_000);
      }
      if (isFinal(record.state)) break;
      if (record.state === "running" && record.provider?.seen === "1") {
        // The session's output, live, until its log ends or the connection drops; then its state is asked again.
        const { owner, slug } = refOf(record);
        const stream = await (await connect(ctx)).logStream(owner, slug, options.signal);
        let index = 0;
        for await (const event of stream ?? []) {
          if (index++ < shown) continue;
          shown = index;
          yield* lines.push(event);
        }
        if (options.signal?.aborted) return;
      }
      try {
        await sleep(interval, undefined, { signal: options.signal });
      } catch {
        return; // the reader stopped following; the kernel goes on
      }
    }
    const current = options.follow ? record : await refresh();
    if (!current.provider?.owner) return;
    if (!isFinal(current.state)) {
      yield `[kaggle] ${current.state}: Kaggle hands out a session's log once it ends; \`alekseylearn logs ${current.name} --follow\` streams it live.`;
      return;
    }
    const { owner, slug } = refOf(current);
    // The whole log once the session has ended; what was shown live is not shown again.
    const events = await endedLog(await connect(ctx), owner, slug);
    for (const event of events.slice(shown)) yield* lines.push(event);
    yield* lines.flush();
  },

  async fetchOutputs(location, to, options, ctx) {
    const match = /^kaggle:\/\/([^/]+)\/([^/]+)$/.exec(location);
    if (!match) throw new UserError(`${location} is not a kernel: write it as kaggle://OWNER/SLUG.`);
    const { fetchKernelOutput } = await import("./outputs.js");
    return fetchKernelOutput(await connect(ctx), match[1]!, match[2]!, to, options.overwrite, ctx);
  },

  async doctor(_spec, ctx, options) {
    return kaggleDoctor(ctx, options);
  },
  async stop(job) {
    const url = job.provider?.url;
    throw new UserError(
      `Kaggle's API cannot stop ${job.name}: cancelling needs the kernel session's id, which Kaggle does not give out.`,
      url ? `Stop it from the kernel's page: ${url} (Edit → Stop session).` : "Stop it from the kernel's page on kaggle.com.",
      1,
    );
  },
} satisfies Backend<typeof kaggleSchema, KaggleProvider>;
