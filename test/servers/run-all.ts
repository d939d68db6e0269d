/**
 * Every test server at once, for a person trying the cloud backends without a
 * cloud (`npm run services`, which runs `scripts/test-services.sh start .services
 * --all`): moto (STS, IAM, S3, ECR's API, CloudWatch Logs) with the SageMaker
 * test server, the Vertex AI / Cloud Logging / OAuth test server with the Cloud
 * Storage test server and Artifact Registry's authentication in front of the
 * test registry, and the Kaggle API test server. Each runs jobs for real (in
 * Docker or bubblewrap), as in the end-to-end tests.
 *
 * Usage: node dist/test/servers/run-all.js DIR (with the Docker-side services'
 * environment: DOCKER_HOST, ALEKSEYLEARN_TEST_REGISTRY, ALEKSEYLEARN_TEST_PIP_INDEX).
 * Writes DIR/sagemaker.env, DIR/vertex.env and DIR/kaggle.env (what to `source`
 * before running `alekseylearn fit` by hand) and DIR/servers.ready, then runs
 * until SIGTERM. The bucket `bucket` exists on S3 and Cloud Storage, and the
 * SageMaker role is made with `alekseylearn init --create-role`.
 */
import { execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { awsCli, testAwsKeys } from "../helpers/aws.js";
import { CLI, REPO, TEST_CACHE } from "../helpers/cli.js";
import { startMoto } from "../helpers/servers.js";
import { makeContext } from "../../src/context.js";
import { ensureEnvironment } from "../../src/package/environment.js";
import { NOTEBOOK_PACKAGES } from "../../src/package/runtime.js";
import { startArtifactRegistryProxy } from "./artifact-registry-proxy.js";
import { startGcsFake } from "./gcs-fake.js";
import { loadDocument } from "./google-discovery.js";
import { startKaggleServer, USER } from "./kaggle-api.js";
import { startFakeSageMaker } from "./sagemaker-fake.js";
import { startServiceUsageFake } from "./serviceusage-fake.js";
import { startVertexFake } from "./vertex-fake.js";

const dir = path.resolve(process.argv[2] ?? ".services");
fs.mkdirSync(dir, { recursive: true });
const need = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: start the Docker-side services first (scripts/test-services.sh start DIR --all does both).`);
  return value;
};
const dockerHost = need("DOCKER_HOST");
const registry = need("ALEKSEYLEARN_TEST_REGISTRY");
const pipIndex = need("ALEKSEYLEARN_TEST_PIP_INDEX");
const dockerEnv = { ...process.env, DOCKER_HOST: dockerHost };
const started = Date.now();
const closers: Array<() => Promise<void> | void> = [];

/** KEY=VALUE lines as `export` lines a shell sources. */
function writeEnv(name: string, variables: Record<string, string>): void {
  const text = Object.entries(variables)
    .map(([key, value]) => `export ${key}=${JSON.stringify(value)}`)
    .join("\n");
  fs.writeFileSync(path.join(dir, name), text + "\n");
}

const home = fs.mkdtempSync(path.join(dir, "home-"));
const common = { HOME: home, DOCKER_HOST: dockerHost, PIP_INDEX_URL: pipIndex };

// SageMaker: moto for AWS, the SageMaker test server in front of it, the test registry for ECR's.
const [moto, gcs] = await Promise.all([startMoto(), startGcsFake(loadDocument(TEST_CACHE, "storage.v1"), ["bucket"])]);
closers.push(
  () => moto.stop(),
  () => gcs.close(),
);
const sagemaker = await startFakeSageMaker({ moto: moto.url, dockerEnv });
closers.push(() => sagemaker.stop());
const keys = testAwsKeys();
awsCli(moto.url, ["s3", "mb", "s3://bucket"], keys);
const sagemakerEnv = {
  ...common,
  ...keys,
  AWS_ENDPOINT_URL: moto.url,
  AWS_ENDPOINT_URL_SAGEMAKER: sagemaker.url,
  ALEKSEYLEARN_REGISTRY: registry,
};
writeEnv("sagemaker.env", sagemakerEnv);
// The role a job runs as, made as a user makes it.
const project = fs.mkdtempSync(path.join(dir, "role-"));
fs.writeFileSync(path.join(project, "train.py"), "");
execFileSync(process.execPath, [CLI, "init", "train.py", "--backend", "sagemaker", "--create-role", "--config.output_path=s3://bucket/sagemaker/runs"], {
  cwd: project,
  env: { ...process.env, ...sagemakerEnv },
  stdio: "ignore",
});

// Vertex AI: a service account key the test server trusts, every Google endpoint at the test servers.
const pair = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
const email = "trainer@my-proj.iam.gserviceaccount.com";
const keyFile = path.join(dir, "vertex-key.json");
fs.writeFileSync(
  keyFile,
  JSON.stringify({
    type: "service_account",
    project_id: "my-proj",
    private_key_id: crypto.randomBytes(20).toString("hex"),
    private_key: pair.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    client_email: email,
    client_id: "1234567890",
    token_uri: "https://oauth2.googleapis.com/token",
  }),
  { mode: 0o600 },
);
const vertex = await startVertexFake(
  {
    aiplatform: loadDocument(TEST_CACHE, "aiplatform.v1"),
    logging: loadDocument(TEST_CACHE, "logging.v2"),
    artifactregistry: loadDocument(TEST_CACHE, "artifactregistry.v1"),
  },
  { [email]: pair.publicKey.export({ type: "spki", format: "pem" }).toString() },
  { run: { dockerEnv, registry, gcs } },
);
closers.push(() => vertex.close());
const artifactRegistry = await startArtifactRegistryProxy(registry, vertex.tokens);
closers.push(() => artifactRegistry.close());
const serviceUsage = await startServiceUsageFake(vertex.tokens, {
  "my-proj": ["aiplatform.googleapis.com", "artifactregistry.googleapis.com", "logging.googleapis.com", "storage.googleapis.com"],
});
closers.push(() => serviceUsage.close());
writeEnv("vertex.env", {
  ...common,
  CLOUDSDK_CONFIG: fs.mkdtempSync(path.join(dir, "gcloud-")),
  GOOGLE_APPLICATION_CREDENTIALS: keyFile,
  GOOGLE_CLOUD_PROJECT: "my-proj",
  CLOUDSDK_AUTH_TOKEN_HOST: vertex.url,
  CLOUDSDK_API_ENDPOINT_OVERRIDES_AIPLATFORM: vertex.url,
  CLOUDSDK_API_ENDPOINT_OVERRIDES_LOGGING: vertex.url,
  CLOUDSDK_API_ENDPOINT_OVERRIDES_ARTIFACTREGISTRY: vertex.url,
  CLOUDSDK_API_ENDPOINT_OVERRIDES_SERVICEUSAGE: serviceUsage.url,
  STORAGE_EMULATOR_HOST: gcs.url,
  ALEKSEYLEARN_REGISTRY: artifactRegistry.host,
});

// Kaggle: kernels run in bubblewrap on a "Kaggle image" environment (the packages the examples use), cached like the tests'.
const image = fs.mkdtempSync(path.join(dir, "kaggle-image-"));
const requirements = "# kaggle image for tests\nscikit-learn\njoblib\n";
fs.writeFileSync(path.join(image, "requirements.txt"), requirements);
const environment = await ensureEnvironment(
  { file: { kind: "requirements", path: path.join(image, "requirements.txt"), content: requirements }, python: "python3", extras: NOTEBOOK_PACKAGES },
  makeContext({ cwd: image, env: { ...process.env, PIP_INDEX_URL: process.env.PIP_INDEX_URL ?? pipIndex }, cacheDir: path.join(TEST_CACHE, "alekseylearn") }),
);
const kaggle = await startKaggleServer(environment.python);
closers.push(() => kaggle.close());
writeEnv("kaggle.env", { ...common, KAGGLE_API_ENDPOINT: kaggle.url, KAGGLE_API_TOKEN: USER.token });

fs.writeFileSync(path.join(dir, "servers.ready"), `${((Date.now() - started) / 1000).toFixed(1)}\n`);
console.error(`run-all: every test server is up in ${((Date.now() - started) / 1000).toFixed(1)}s (repository ${REPO})`);
const stop = async (): Promise<void> => {
  for (const close of closers.reverse()) await Promise.resolve(close()).catch(() => undefined);
  process.exit(0);
};
process.on("SIGTERM", () => void stop());
process.on("SIGINT", () => void stop());
setInterval(() => undefined, 1 << 30);
