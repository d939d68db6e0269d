/** The Docker-side test services (`scripts/test-services.sh start`, run by `npm test`): where they are, and what the registry holds. */
import { execFile } from "node:child_process";
import fs from "node:fs";
import { promisify } from "node:util";
import path from "node:path";

/** Where the services are, from the environment `npm test` exports. */
export interface DockerTestEnv {
  DOCKER_HOST: string;
  /** host:port of the docker-registry standing in for ECR's registry. */
  registry: string;
  /** The registry's storage folder. */
  registryData: string;
  /** The machine's wheel index over http, for pip inside image builds. */
  pipIndex: string;
  baseImage: string;
}

/** The services' settings; an Error (never a skip) when the suite was not started by `npm test`. */
export function dockerTestEnv(): DockerTestEnv {
  const env = process.env;
  const missing = [
    "DOCKER_HOST",
    "ALEKSEYLEARN_TEST_REGISTRY",
    "ALEKSEYLEARN_TEST_REGISTRY_DATA",
    "ALEKSEYLEARN_TEST_PIP_INDEX",
    "ALEKSEYLEARN_TEST_BASE_IMAGE",
  ].filter((name) => !env[name]);
  if (missing.length)
    throw new Error(
      `${missing.join(", ")} not set: run the suite with \`npm test\`, which starts the Docker test services (scripts/test-services.sh start DIR).`,
    );
  return {
    DOCKER_HOST: env.DOCKER_HOST!,
    registry: env.ALEKSEYLEARN_TEST_REGISTRY!,
    registryData: env.ALEKSEYLEARN_TEST_REGISTRY_DATA!,
    pipIndex: env.ALEKSEYLEARN_TEST_PIP_INDEX!,
    baseImage: env.ALEKSEYLEARN_TEST_BASE_IMAGE!,
  };
}

/** Total bytes of the blobs the registry stores. */
export function registryBytes(): number {
  const blobs = path.join(dockerTestEnv().registryData, "docker", "registry", "v2", "blobs");
  if (!fs.existsSync(blobs)) return 0;
  let total = 0;
  for (const entry of fs.readdirSync(blobs, { recursive: true }) as string[]) {
    const stat = fs.statSync(path.join(blobs, entry));
    if (stat.isFile()) total += stat.size;
  }
  return total;
}

/** Does the registry hold `digest` of `repository`? */
export async function registryHas(repository: string, digest: string): Promise<boolean> {
  const response = await fetch(`http://${dockerTestEnv().registry}/v2/${repository}/manifests/${digest}`, {
    method: "HEAD",
    // Every manifest type docker may push: an image (Docker or OCI) or a multi-platform index.
    headers: {
      Accept: [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
      ].join(", "),
    },
  });
  return response.ok;
}

/** Run the docker CLI against the test daemon (with `env` added); its stdout, or an Error holding the end of its output. */
export async function dockerCli(args: readonly string[], env: Record<string, string> = {}): Promise<string> {
  try {
    const { stdout } = await promisify(execFile)("docker", [...args], {
      env: { ...process.env, DOCKER_HOST: dockerTestEnv().DOCKER_HOST, ...env },
      encoding: "utf8",
      maxBuffer: 64 * 1024 * 1024,
    });
    return stdout;
  } catch (error) {
    const { stdout = "", stderr = "" } = error as { stdout?: string; stderr?: string };
    throw new Error(`docker ${args.join(" ")} failed:\n${stdout.slice(-4000)}\n${stderr.slice(-4000)}`, { cause: error });
  }
}
