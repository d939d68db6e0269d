/**
 * `fit --dry-run` on this machine: what the run would be — its folder, its
 * environment, its sandbox, the config files it would get, and the command
 * its script would be started with — found without running anything but a
 * look at bubblewrap and at the environment cache.
 */
import os from "node:os";
import type { Context } from "../../context.js";
import type { LocalJob } from "./schema.js";
import { environmentLocation } from "../../package/environment.js";
import { baseImageFor } from "../../package/image.js";
import { folderFiles, imageLayers } from "../../package/image-plan.js";
import { entrypointPath, NOTEBOOK_PACKAGES, previewContract, trainArgs } from "../../package/runtime.js";
import { joinLocation } from "../../storage/location.js";
import type { SubmissionPlan } from "../types.js";
import { chooseSandbox } from "./sandbox.js";
import { hostNames, localDescription } from "./run.js";

/** This machine's platform as Docker names it (`linux/amd64`, `linux/arm64`). */
export function localPlatform(arch = os.arch()): string {
  return `linux/${arch === "x64" ? "amd64" : arch}`;
}

/** What a local run of `job` would do. */
export async function planLocal(job: LocalJob, ctx: Context): Promise<SubmissionPlan> {
  const { spec } = job;
  const { settings } = spec;
  const checks: SubmissionPlan["checks"] = { done: [], skipped: [] };
  const docker = settings.runner === "docker";
  let sandbox = "docker";
  let python = "python3";
  let sandboxed = docker;
  if (!docker) {
    const choice = chooseSandbox(settings.sandbox, ctx.env.PATH);
    sandbox = choice.bwrap ? "bwrap" : `none (${choice.reason})`;
    sandboxed = choice.bwrap !== undefined;
    checks.done.push(`sandbox: ${sandbox}`);
    const location = environmentLocation(
      { ...(spec.environment ? { file: spec.environment } : {}), python: settings.python, extras: spec.artifact.kind === "notebook" ? NOTEBOOK_PACKAGES : [] },
      ctx,
    );
    checks.done.push(location.ready ? `environment: cached at ${location.dir}` : `environment: not cached; it would be created at ${location.dir}`);
    python = location.ready ? `${location.dir}/bin/python` : settings.python;
  } else {
    checks.skipped.push("Docker was not asked: the image would be built and run with `docker run IMAGE train`");
  }
  // The arguments, variables and config files are what the job runtime itself would give the job, computed by it.
  // A multi-host job: one process per host, each told every host's name; shown here as algo-1 sees it.
  const hosts = hostNames(docker ? 1 : settings.instance_count);
  const description = {
    ...localDescription(job, spec.inputs),
    platform: docker ? ("container" as const) : ("local" as const),
    sandboxed,
    ...(hosts.length > 1 ? { hosts, currentHost: hosts[0] } : {}),
  };

  const contract = previewContract(python, description, spec.hyperparameters, spec.artifact.dir, ctx.env.PATH);
  if (!contract) checks.skipped.push(`${python} could not run the job runtime to compute the script's arguments, variables and config files`);
  const args = spec.artifact.kind === "script" ? (contract?.args ?? []) : [];
  const base = docker ? baseImageFor(spec, settings.base_image, false) : undefined;
  return {
    backend: "local",
    job: job.name,
    files: folderFiles(spec.artifact.dir),
    ...(base ? { image: { base, platform: localPlatform(), layers: imageLayers(spec, base) } } : {}),
    requests: [
      {
        api: "local",
        operation: "RunTrainingJob",
        request: {
          runner: settings.runner,
          // How the image would be made (runner=docker): docker build, or the daemonless image given to docker load.
          builder: docker ? (settings.builder === "oci" ? "oci" : "docker") : null,
          sandbox,
          hosts,
          distribution: settings.distribution,
          workingDir: spec.artifact.dir,
          environmentFile: spec.environment?.path ?? null,
          runtime: ["python", entrypointPath(), ...trainArgs(spec.hyperparameters)],
          command:
            spec.artifact.kind !== "script"
              ? ["python", "-u", "notebook.py", spec.artifact.entry]
              : settings.distribution === "torchrun"
                ? [
                    "python",
                    "-u",
                    "-m",
                    "torch.distributed.run",
                    "--nnodes",
                    String(hosts.length),
                    "--node_rank",
                    "NODE_RANK",
                    "--nproc_per_node",
                    String(settings.processes_per_host ?? "GPUS_OR_1"),
                    "--master_addr",
                    "MASTER_ADDR",
                    "--master_port",
                    "MASTER_PORT",
                    spec.artifact.entry,
                    ...args,
                  ]
                : ["python", "-u", spec.artifact.entry, ...args],
          inputs: spec.inputs,
          configFiles: contract?.files ?? {},
          environment: contract?.env ?? {},
          model: joinLocation(job.jobOutput, "output/model.tar.gz"),
          stopTimeoutSeconds: settings.stop_timeout,
        },
      },
    ],
    checks,
    placeholders: [],
  };
}
