/**
 * The container image of a training artifact, as SageMaker runs it: a
 * Dockerfile and an entrypoint (generated here, or the user's own from
 * `alekseylearn init`), and the build context sent to Docker. SageMaker starts
 * the container with the argument `train`; the entrypoint sets up the SM_*
 * variables from /opt/ml/input/config and runs the script, or executes the
 * notebook headless and keeps the executed copy in /opt/ml/output/data.
 */
import fs from "node:fs";
import path from "node:path";
import type { Reporter } from "../context.js";
import { UserError } from "../errors.js";
import type { JobSpec } from "../spec/types.js";
import { artifactStem } from "./artifact.js";
import { loadTar } from "../storage/archive.js";
import { codePaths } from "./bundle.js";
import { packShipment, reportShipment, shippableRequirements, shippedFiles, type Shipment } from "./ship.js";
import { ENTRYPOINT, NOTEBOOK_PACKAGES, RUNTIME_IN_CONTEXT, RUNTIME_IN_IMAGE, runtimeFiles } from "./runtime.js";

/** File name of the image definition in a project folder (`alekseylearn init` writes it). */
export const DOCKERFILE = "Dockerfile";

/** Default base images: Python for pip environments, micromamba for conda ones; a CUDA one when the backend says the settings ask for a GPU (`Backend.wantsGpu`). */
export const BASE_IMAGES = {
  cpu: "python:3.11-slim",
  gpu: "pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime",
  conda: "mambaorg/micromamba:1.5.10",
} as const;

/** ECR's longest repository name. */
const REPOSITORY_MAX = 256;

/**
 * The artifact's image name: `alekseylearn/<folder>-<stem>` in a registry's
 * alphabet (an ECR repository, or a local tag). The folder is part of it, so
 * every project's `train.py` gets a repository of its own.
 */
export function imageName(spec: JobSpec): string {
  const folder = path.basename(spec.artifact.dir);
  const stem = path.posix.parse(spec.artifact.entry).name;
  const raw = spec.artifact.isFolder || !stem ? `${folder}-${stem || artifactStem(spec.artifact)}` : `${folder}-${stem}`;
  // ECR's pattern: lowercase components of [a-z0-9] joined by single [._-] separators.
  const name =
    raw
      .toLowerCase()
      .replace(/[^a-z0-9._-]+/g, "-")
      .replace(/[._-]{2,}/g, "-")
      .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, "") || "job";
  const prefix = "alekseylearn/";
  return prefix + name.slice(0, REPOSITORY_MAX - prefix.length).replace(/[^a-z0-9]+$/, "");
}

/** The system packages file beside the artifact (repo2docker's convention: one Debian package a line). */
export const APT_FILE = "apt.txt";

/** True when the project folder has an apt.txt, whose packages go into the image. */
export function hasAptFile(spec: JobSpec): boolean {
  return fs.existsSync(path.join(spec.artifact.dir, APT_FILE));
}

/** The base image for `spec`: `chosen` (config.base_image) unless it is `auto`, else the default for its environment and for a GPU instance or not. */
export function baseImageFor(spec: JobSpec, chosen: string, gpu: boolean): string {
  if (chosen !== "auto") return chosen;
  if (spec.environment?.kind === "conda") return BASE_IMAGES.conda;
  return gpu ? BASE_IMAGES.gpu : BASE_IMAGES.cpu;
}

/** Where the environment file sits in the build context: its own path when it lies in the project folder, else beside the Dockerfile under .alekseylearn/. */
export function environmentInContext(spec: JobSpec): string | undefined {
  const file = spec.environment?.path;
  if (!file) return undefined;
  const relative = path.relative(spec.artifact.dir, file);
  if (!relative.startsWith("..") && !path.isAbsolute(relative)) return relative.split(path.sep).join("/");
  return `.alekseylearn/${path.basename(file)}`;
}

/** The Dockerfile for `spec` on `baseImage` (pure). Layers go from what changes least to what changes most, so a code change rebuilds only the last ones. */
export function dockerfileFor(spec: JobSpec, baseImage: string, options: { apt?: boolean } = {}): string {
  const envFile = environmentInContext(spec);
  const notebook = spec.artifact.kind === "notebook";
  const extras = notebook ? ` ${NOTEBOOK_PACKAGES.join(" ")}` : "";
  const lines = [
    "# The image alekseylearn builds for this training artifact. Edit it freely: `alekseylearn fit` uses it",
    "# as it is (`alekseylearn init --overwrite` writes it anew). SageMaker runs it as `docker run IMAGE train`.",
    `FROM ${baseImage}`,
    "",
  ];
  if (options.apt) {
    // System packages before the environment: pip's and conda's builds may need them (libgomp1 for LightGBM).
    // The base image's own user may not be root (micromamba's is not); the environment step sets its own.
    lines.push(
      `# System packages from ${APT_FILE} (one Debian package a line; # starts a comment).`,
      "USER root",
      `COPY ${APT_FILE} /opt/alekseylearn/${APT_FILE}`,
      `RUN apt-get update && \\\n    sed -e 's/#.*//' /opt/alekseylearn/${APT_FILE} | xargs --no-run-if-empty env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends && \\\n    rm -rf /var/lib/apt/lists/*`,
      "",
    );
  }
  lines.push(
    "# The environment first: a change to the code alone does not reinstall it.",
    "ARG PIP_INDEX_URL",
    "ARG PIP_EXTRA_INDEX_URL",
    "ARG PIP_TRUSTED_HOST",
  );
  if (spec.environment?.kind === "conda") {
    lines.push(
      "USER root",
      `COPY ${envFile} /opt/alekseylearn/environment.yml`,
      `RUN micromamba install --yes --name base --file /opt/alekseylearn/environment.yml${extras ? ` &&\\\n    micromamba run -n base pip install --no-cache-dir${extras}` : ""} && micromamba clean --all --yes`,
      "ENV PATH=/opt/conda/bin:$PATH",
    );
  } else {
    // --system-site-packages: what the base image already has (CUDA builds of torch, say) stays visible.
    const install = envFile ? ` -r /opt/alekseylearn/requirements.txt` : "";
    if (envFile) lines.push(`COPY ${envFile} /opt/alekseylearn/requirements.txt`);
    lines.push(
      "RUN python3 -m venv --system-site-packages /opt/venv" +
        (install || extras ? ` && \\\n    /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check${install}${extras}` : ""),
      "ENV PATH=/opt/venv/bin:$PATH",
    );
  }
  lines.push(
    "",
    "ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1",
    "# The job runtime (alekseylearn's, added to the build context): every platform's contract, then the script.",
    `COPY ${RUNTIME_IN_CONTEXT}/ ${RUNTIME_IN_IMAGE}/`,
    "# The code last.",
    "COPY . /opt/ml/code",
    "WORKDIR /opt/ml/code",
    `ENV ALEKSEYLEARN_ENTRY=${JSON.stringify(spec.artifact.entry)} ALEKSEYLEARN_KIND=${spec.artifact.kind}`,
    `ENTRYPOINT ["python3", "${RUNTIME_IN_IMAGE}/${ENTRYPOINT}"]`,
    "",
  );
  return lines.join("\n");
}

/** The generated image definition, by name (pure): what `init` writes into the project folder. */
export function imageFiles(spec: JobSpec, baseImage: string): Record<string, string> {
  return { [DOCKERFILE]: dockerfileFor(spec, baseImage, { apt: hasAptFile(spec) }) };
}

/** The files alekseylearn adds to every build context (path in the context → text): the job runtime, always this version's. */
export function contextRuntimeFiles(): Record<string, string> {
  return Object.fromEntries(Object.entries(runtimeFiles()).map(([name, text]) => [`${RUNTIME_IN_CONTEXT}/${name}`, text]));
}

/** True when the project folder has its own image definition (from `alekseylearn init`, maybe edited). */
export function hasOwnDockerfile(spec: JobSpec): boolean {
  return fs.existsSync(path.join(spec.artifact.dir, DOCKERFILE));
}

/**
 * Write the build context for `spec` as a tar file at `file`: what ships of
 * the project folder (ship.ts: ignore files and the refusal list for secrets),
 * the environment file where the Dockerfile expects it, and the generated
 * files unless the folder has its own. Entries are sorted and carry no times
 * or owners, so unchanged code gives the same context and Docker's cache is
 * used. What the rules kept out is said through `report` when given.
 *
 * An environment file with a credential in an index URL is refused: the
 * classic builder this project uses (it counts the steps) has no build
 * secrets, and a build argument or a layer would keep the credential in the
 * image.
 */
export async function writeBuildContext(
  spec: JobSpec,
  baseImage: string,
  file: string,
  report?: { env: Readonly<Record<string, string | undefined>>; reporter: Pick<Reporter, "warn" | "info"> },
): Promise<Shipment> {
  refuseEnvironmentCredentials(spec);
  const staging = fs.mkdtempSync(`${file}.d-`);
  try {
    const generated: Record<string, string> = { ...(hasOwnDockerfile(spec) ? {} : imageFiles(spec, baseImage)), ...contextRuntimeFiles() };
    const envFile = environmentInContext(spec);
    if (spec.environment && envFile?.startsWith(".alekseylearn/"))
      generated[envFile] = shippableRequirements(fs.readFileSync(spec.environment.path, "utf8")).text;
    for (const [name, text] of Object.entries(generated)) {
      fs.mkdirSync(path.dirname(path.join(staging, name)), { recursive: true });
      fs.writeFileSync(path.join(staging, name), text);
    }
    const extra = [...new Set(Object.keys(generated).map((name) => name.split("/")[0]!))];
    const shipment = shippedFiles(spec.artifact.dir, {
      env: report?.env ?? {},
      entry: spec.artifact.entry,
      requirements: envFile && !envFile.startsWith(".alekseylearn/") ? [envFile] : [],
    });
    if (report)
      reportShipment(
        shipment,
        (message) => report.reporter.warn(message),
        (message) => report.reporter.info(message),
      );
    await packShipment(shipment, file, (name) => extra.includes(name.split("/")[0]!));
    const tar = await loadTar();
    // Explicit sorted paths, written one after the other (no folder walking, no concurrency), so the bytes never vary.
    const options = { portable: true, mtime: new Date(0), noDirRecurse: true, sync: true as const, file };
    if (extra.length)
      tar.r(
        { ...options, cwd: staging },
        extra.sort().flatMap((name) => (fs.statSync(path.join(staging, name)).isDirectory() ? [name, ...codePaths(staging, undefined, name)] : [name])),
      );
    return shipment;
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}

/** Refuse an environment file that holds a credential in a URL (an index with a password): it could reach the build only through a layer or a build argument. */
export function refuseEnvironmentCredentials(spec: JobSpec): void {
  if (spec.environment?.kind !== "requirements") return;
  const { removed } = shippableRequirements(spec.environment.content);
  if (!removed) return;
  throw new UserError(
    `${path.basename(spec.environment.path)} has ${removed === 1 ? "a line" : `${removed} lines`} with a credential in a URL (a package index's password or token), which cannot reach the image build safely: the Docker builder alekseylearn uses has no build secrets, and a build argument or a layer would keep it in the image.`,
    "Put the private packages in the project as wheels (`pip download -d wheels PACKAGE`, then `--find-links wheels` in requirements.txt), or serve the index without credentials in its URL, then run fit again.",
  );
}
