/**
 * `alekseylearn doctor` through the CLI against real and test servers: the
 * machine's own checks, SageMaker's against moto (STS, IAM, S3: the role made
 * by `init --create-role`, the bucket written to and cleaned), and Kaggle's
 * against the Kaggle API test server, Vertex AI's against the Vertex AI test
 * server (its token endpoint) and the Service Usage test server. A passing check is ✓; a failing one is
 * ✗ with its fix and exits 1.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { awsCli, testAwsKeys } from "../helpers/aws.js";
import { cliEnv, runCli, TEST_CACHE } from "../helpers/cli.js";
import { fileTimeLimit } from "../helpers/limit.js";
import { startMoto, type Moto } from "../helpers/servers.js";
import { writeTree } from "../helpers/tree.js";
import { startGcsFake, type GcsFake } from "../servers/gcs-fake.js";
import { loadDocument } from "../servers/google-discovery.js";
import { startKaggleServer, USER, type KaggleTestServer } from "../servers/kaggle-api.js";
import { startServiceUsageFake, type ServiceUsageFake } from "../servers/serviceusage-fake.js";
import { startVertexFake, type VertexFake } from "../servers/vertex-fake.js";

fileTimeLimit(5, import.meta.url);

interface Report {
  backend: string;
  failed: boolean;
  checks: Array<{ backend: string; check: string; status: string; detail: string; fix?: string }>;
}

let moto: Moto;
let kaggle: KaggleTestServer;
let vertex: VertexFake;
let serviceUsage: ServiceUsageFake;
let gcs: GcsFake;
let keyFile: string;
const EMAIL = "trainer@my-proj.iam.gserviceaccount.com";
before(async () => {
  const pair = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
  keyFile = path.join(writeTree({}), "key.json");
  fs.writeFileSync(
    keyFile,
    JSON.stringify({
      type: "service_account",
      project_id: "my-proj",
      private_key_id: "0123456789abcdef",
      private_key: pair.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
      client_email: EMAIL,
      client_id: "1234567890",
      token_uri: "https://oauth2.googleapis.com/token",
    }),
  );
  const documents = {
    aiplatform: loadDocument(TEST_CACHE, "aiplatform.v1"),
    logging: loadDocument(TEST_CACHE, "logging.v2"),
    artifactregistry: loadDocument(TEST_CACHE, "artifactregistry.v1"),
  };
  [moto, kaggle, vertex, gcs] = await Promise.all([
    startMoto(),
    startKaggleServer("python3"),
    startVertexFake(documents, { [EMAIL]: pair.publicKey.export({ type: "spki", format: "pem" }).toString() }),
    startGcsFake(loadDocument(TEST_CACHE, "storage.v1"), ["bucket"]),
  ]);
  // Logging is not enabled in my-proj: the one check that fails.
  serviceUsage = await startServiceUsageFake(vertex.tokens, {
    "my-proj": ["aiplatform.googleapis.com", "artifactregistry.googleapis.com", "storage.googleapis.com"],
  });
});
after(async () => {
  await Promise.all([moto?.stop(), kaggle?.close(), vertex?.close(), serviceUsage?.close(), gcs?.close()]);
});

/** A home of its own, so nothing of this machine's ~/.aws, ~/.kaggle or gcloud is seen. */
function env(extra: Record<string, string>): NodeJS.ProcessEnv {
  return cliEnv({ HOME: fs.mkdtempSync(path.join(os.tmpdir(), "doctor-home-")), CLOUDSDK_CONFIG: writeTree({}), ...extra }).env;
}

function find(report: Report, backend: string, check: string): Report["checks"][number] {
  const found = report.checks.find((line) => line.backend === backend && line.check === check);
  assert.ok(found, `${backend} ${check} in ${JSON.stringify(report.checks)}`);
  return found;
}

test("doctor: the machine's checks pass with a reachable pip index; an unreachable one is ✗ with the fix and exits 1", async () => {
  const cwd = writeTree({});
  const good = await runCli(["doctor", "--backend", "local"], { cwd, env: env({ PIP_INDEX_URL: "file:///opt/pypi/simple" }) });
  assert.equal(good.code, 0, good.stdout + good.stderr);
  assert.match(good.stdout, /✓ Python: \S+ \(Python 3\.\d+\.\d+\)/);
  assert.match(good.stdout, /✓ bubblewrap: /);
  assert.match(good.stdout, /✓ pip index: file:\/\/\/opt\/pypi\/simple \(PIP_INDEX_URL\)/);
  assert.match(good.stdout, /✓ daemonless builder: available with no Docker \(config\.builder=oci, and auto\): pip \S+/);

  const bad = await runCli(["doctor"], { cwd, env: env({ PIP_INDEX_URL: "http://127.0.0.1:9/simple" }) });
  assert.equal(bad.code, 1, bad.stdout + bad.stderr);
  assert.match(bad.stdout, /✗ pip index: http:\/\/127\.0\.0\.1:9\/simple \(PIP_INDEX_URL\) cannot be reached/);
  assert.match(bad.stdout, /fix: Set PIP_INDEX_URL=URL .*pip config set global\.index-url URL/);
});

test("doctor --backend sagemaker against moto: credentials' source, account, the role init made, the bucket written to and cleaned; a missing bucket exits 1 with its fix", async () => {
  const keys = testAwsKeys("doctor-s3cr3t");
  const aws = { ...keys, AWS_ENDPOINT_URL: moto.url };
  awsCli(moto.url, ["s3", "mb", "s3://doctor-bucket"], keys);
  const cwd = writeTree({ "train.py": "print('hi')\n" });
  const output = "--config.output_path=s3://doctor-bucket/runs";
  const made = await runCli(["init", "train.py", "--backend", "sagemaker", "--create-role", output], { cwd, env: env(aws) });
  assert.equal(made.code, 0, made.stderr);

  const run = await runCli(["doctor", "--backend", "sagemaker", output, "--json"], { cwd, env: env(aws) });
  const report = JSON.parse(run.stdout) as Report;
  assert.equal(report.backend, "sagemaker");
  assert.equal(find(report, "sagemaker", "credentials").detail, "from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment");
  assert.match(find(report, "sagemaker", "account").detail, /^\d{12}, region us-east-1$/);
  const role = find(report, "sagemaker", "role");
  assert.equal(role.status, "ok", role.detail);
  assert.match(role.detail, /alekseylearn_sagemaker_role exists, is trusted by SageMaker and allows writing s3:\/\/doctor-bucket\/runs/);
  assert.equal(find(report, "sagemaker", "output bucket").status, "ok");
  const writable = find(report, "sagemaker", "output writable");
  assert.equal(writable.status, "ok");
  assert.match(writable.detail, /wrote and deleted the 0-byte s3:\/\/doctor-bucket\/runs\/\.alekseylearn-doctor-[0-9a-f]{12}/);
  assert.doesNotMatch(awsCli(moto.url, ["s3api", "list-objects-v2", "--bucket", "doctor-bucket"], keys), /alekseylearn-doctor/, "the probe was deleted");
  // The image builders: the daemonless one (the default) beside this machine's Docker, whose line decides the rest of the exit code.
  assert.equal(find(report, "sagemaker", "daemonless builder").status, "ok");
  assert.equal(run.code, report.checks.some((check) => check.status === "fail") ? 1 : 0);
  assert.doesNotMatch(run.stdout + run.stderr, /doctor-s3cr3t/, "never the secret");

  const missing = await runCli(["doctor", "--backend", "sagemaker", "--config.output_path=s3://no-such-bucket/runs"], { cwd, env: env(aws) });
  assert.equal(missing.code, 1);
  assert.match(missing.stdout, /✗ output bucket: the bucket no-such-bucket does not exist\n\s+fix: Create it \(aws s3 mb s3:\/\/no-such-bucket\)/);
});

test("doctor against the Kaggle API test server: a valid token names its user; a refused key is ✗ with the fix and exits 1 with --backend kaggle", async () => {
  const cwd = writeTree({});
  const base = { KAGGLE_API_ENDPOINT: kaggle.url, PIP_INDEX_URL: "file:///opt/pypi/simple" };
  const good = await runCli(["doctor", "--backend", "kaggle"], { cwd, env: env({ ...base, KAGGLE_API_TOKEN: USER.token }) });
  assert.equal(good.code, 0, good.stdout + good.stderr);
  assert.match(good.stdout, /✓ credentials: from KAGGLE_API_TOKEN/);
  assert.match(good.stdout, /✓ token valid: Kaggle accepts it, for the user tester/);
  const key = await runCli(["doctor", "--backend", "kaggle"], { cwd, env: env({ ...base, KAGGLE_USERNAME: USER.username, KAGGLE_KEY: USER.key }) });
  assert.equal(key.code, 0, key.stdout + key.stderr);
  assert.match(key.stdout, /✓ token valid: Kaggle accepts it, for the user tester/);

  const bad = await runCli(["doctor", "--backend", "kaggle"], { cwd, env: env({ ...base, KAGGLE_USERNAME: USER.username, KAGGLE_KEY: "wrong-key" }) });
  assert.equal(bad.code, 1, bad.stdout + bad.stderr);
  assert.match(bad.stdout, /✗ token valid: Kaggle refused the credentials from KAGGLE_USERNAME and KAGGLE_KEY/);
  assert.match(bad.stdout, /fix: Create an API token at https:\/\/www\.kaggle\.com\/settings/);
  assert.doesNotMatch(bad.stdout + bad.stderr, /wrong-key/, "never the secret");
  // Without --backend, Kaggle is checked (its credentials are here) but only the local backend's failures decide the exit code.
  const all = await runCli(["doctor"], { cwd, env: env({ ...base, KAGGLE_USERNAME: USER.username, KAGGLE_KEY: "wrong-key" }) });
  assert.match(all.stdout, /kaggle:\n\s+✓ credentials/);
  assert.equal(all.code, 0, all.stdout);
});

test("doctor --backend vertex against the Vertex AI and Service Usage test servers: credentials, project, and an API not enabled is ✗ with the gcloud command that enables it", async () => {
  const cwd = writeTree({});
  const google = {
    GOOGLE_APPLICATION_CREDENTIALS: keyFile,
    CLOUDSDK_AUTH_TOKEN_HOST: vertex.url,
    CLOUDSDK_API_ENDPOINT_OVERRIDES_SERVICEUSAGE: serviceUsage.url,
    STORAGE_EMULATOR_HOST: gcs.url,
    PIP_INDEX_URL: "file:///opt/pypi/simple",
  };
  const run = await runCli(["doctor", "--backend", "vertex", "--config.project=my-proj", "--json"], { cwd, env: env(google) });
  assert.equal(run.code, 1, run.stdout + run.stderr);
  const report = JSON.parse(run.stdout) as Report;
  assert.equal(find(report, "vertex", "credentials").detail, `from GOOGLE_APPLICATION_CREDENTIALS (${keyFile})`);
  assert.equal(find(report, "vertex", "project").detail, "my-proj (from config.project), region us-central1");
  const apis = find(report, "vertex", "APIs enabled");
  assert.equal(apis.status, "fail");
  assert.equal(apis.detail, "not enabled in my-proj: logging.googleapis.com");
  assert.equal(apis.fix, "gcloud services enable logging.googleapis.com --project my-proj");
  assert.deepEqual(serviceUsage.requests.slice(-4), [
    "/v1/projects/my-proj/services/aiplatform.googleapis.com",
    "/v1/projects/my-proj/services/artifactregistry.googleapis.com",
    "/v1/projects/my-proj/services/logging.googleapis.com",
    "/v1/projects/my-proj/services/storage.googleapis.com",
  ]);
  serviceUsage.enabled.get("my-proj")!.add("logging.googleapis.com");
  const again = await runCli(["doctor", "--backend", "vertex", "--config.project=my-proj", "--config.output_path=gs://bucket/runs"], { cwd, env: env(google) });
  assert.match(again.stdout, /✓ APIs enabled: aiplatform, artifactregistry, logging, storage/);
  assert.match(again.stdout, /✓ output writable: wrote and deleted the 0-byte gs:\/\/bucket\/runs\/\.alekseylearn-doctor-[0-9a-f]{12}/);
  assert.equal(gcs.requests.filter((request) => request.method === "DELETE").length, 1, "the probe object was deleted through objects.delete");
  const missing = await runCli(["doctor", "--backend", "vertex", "--config.project=my-proj", "--config.output_path=gs://nobucket/runs"], {
    cwd,
    env: env(google),
  });
  assert.equal(missing.code, 1);
  assert.match(missing.stdout, /✗ output bucket: the bucket nobucket does not exist\n\s+fix: Create it \(gcloud storage buckets create gs:\/\/nobucket\)/);
  assert.doesNotMatch(again.stdout + again.stderr, /BEGIN PRIVATE KEY/, "never the key");
});
