/**
 * What ships (issue 12, item 1): one rule set for the SageMaker build context
 * and the Kaggle code dataset. Secrets are canaries made here; every packed
 * byte is scanned for them.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { gunzipSync } from "node:zlib";
import * as tar from "tar";
import { buildSpec, buildSpecFor } from "../../src/jobs/spec.js";
import { kaggleBackend } from "../../src/backends/kaggle/index.js";
import { writeBuildContext } from "../../src/package/image.js";
import { packCode } from "../../src/backends/kaggle/code.js";
import { saveKernelRequest } from "../../src/backends/kaggle/plan.js";
import { reportShipment, shippableRequirements, shippedFiles } from "../../src/package/ship.js";
import { UserError } from "../../src/errors.js";
import { writeTree } from "../helpers/tree.js";
import { fileTimeLimit } from "../helpers/limit.js";

fileTimeLimit(3, import.meta.url);

/** A credential no real file holds: finding it anywhere means it leaked. */
function canary(): string {
  return `CANARY${randomBytes(12).toString("hex")}`;
}

/** A project folder holding every kind of secret the refusal list names, each with its own canary, beside real code. */
function secretProject(secret: string): Record<string, string> {
  const pem = `-----BEGIN OPENSSH PRIVATE KEY-----\n${secret}\n-----END OPENSSH PRIVATE KEY-----\n`;
  return {
    "proj/train.py": "print('train')\n",
    "proj/lib/util.py": "X = 1\n",
    "proj/id_to_label.json": "{}\n", // an ordinary ML file whose name starts with id_
    "proj/requirements.txt": "joblib\n",
    "proj/.env": `WANDB_API_KEY=${secret}\n`,
    "proj/.env.production": `TOKEN=${secret}\n`,
    "proj/.aws/credentials": `[default]\naws_secret_access_key = ${secret}\n`,
    "proj/.aws/config": "[default]\nregion = us-east-1\n",
    "proj/.ssh/id_rsa": pem,
    "proj/.gnupg/secring.gpg": secret,
    "proj/.netrc": `machine example.com login me password ${secret}\n`,
    "proj/.pypirc": `[pypi]\npassword = ${secret}\n`,
    "proj/.docker/config.json": `{"auths": {"x": {"auth": "${secret}"}}}\n`,
    "proj/kaggle.json": `{"username": "me", "key": "${secret}"}\n`,
    "proj/certs/server.pem": pem,
    "proj/tls.key": secret,
    "proj/keys/id_ed25519": pem,
    "proj/keys/id_ed25519.pub": "ssh-ed25519 AAAA public\n",
    "proj/credentials-prod.json": `{"secret": "${secret}"}\n`,
    "proj/notes/old-key.txt": `kept for later\n${pem}`,
    "proj/gcp/sa.json": JSON.stringify({ type: "service_account", project_id: "p", private_key: `-----BEGIN NOT A KEY-----${secret}` }),
    "proj/config/deploy.ini": `[aws]\naws_secret_access_key=${secret}\n`,
  };
}

const EXPECTED_SECRETS = [
  ".aws/",
  ".docker/config.json",
  ".env",
  ".env.production",
  ".gnupg/",
  ".netrc",
  ".pypirc",
  ".ssh/",
  "certs/server.pem",
  "config/deploy.ini",
  "credentials-prod.json",
  "gcp/sa.json",
  "kaggle.json",
  "keys/id_ed25519",
  "notes/old-key.txt",
  "tls.key",
];

/** Every byte of every entry of a tar (plain or gzip), names included, as one string. */
async function tarText(file: string): Promise<{ names: string[]; text: string }> {
  const names: string[] = [];
  const chunks: Buffer[] = [];
  await tar.t({
    file,
    onReadEntry: (entry) => {
      names.push(entry.path.replace(/\/$/, ""));
      entry.on("data", (chunk: Buffer) => chunks.push(chunk));
    },
  });
  const raw = fs.readFileSync(file);
  const whole = raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw) : raw;
  return { names: names.sort(), text: Buffer.concat([...chunks, whole]).toString("latin1") };
}

test("secrets never ship: the refusal list keeps each one out of the SageMaker build context and the Kaggle code dataset, and names it once", async () => {
  const secret = canary();
  const root = writeTree(secretProject(secret));
  const dir = path.join(root, "proj");
  const shipment = shippedFiles(dir);
  assert.deepEqual(shipment.secrets, EXPECTED_SECRETS);
  assert.deepEqual(shipment.files, ["id_to_label.json", "keys/id_ed25519.pub", "lib/util.py", "requirements.txt", "train.py"]);
  assert.ok(!shipment.folders.some((folder) => [".aws", ".ssh", ".gnupg", ".docker", "certs", "gcp"].includes(folder)), shipment.folders.join());

  const warnings: string[] = [];
  reportShipment(
    shipment,
    (message) => warnings.push(message),
    () => {},
  );
  assert.equal(warnings.length, EXPECTED_SECRETS.length, "one warning per secret");
  for (const secretPath of EXPECTED_SECRETS) assert.equal(warnings.filter((w) => w.includes(` ${secretPath}:`)).length, 1, secretPath);
  assert.ok(!warnings.join("\n").includes(secret), "a warning names the path only");

  const spec = await buildSpec({ artifact: "proj", entry: "train.py", config: { output_path: "s3://bucket/sagemaker/runs" } }, root);
  const context = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "ctx-")), "context.tar");
  const reported: string[] = [];
  await writeBuildContext(spec, "python:3.11-slim", context, { env: {}, reporter: { warn: (m) => reported.push(m), info: (m) => reported.push(m) } });
  const image = await tarText(context);
  assert.ok(!image.text.includes(secret), "no canary in the build context");
  assert.ok(image.names.includes("train.py") && image.names.includes("lib/util.py") && image.names.includes("Dockerfile"));
  assert.equal(reported.filter((m) => m.startsWith("Not shipping")).length, EXPECTED_SECRETS.length);

  const kaggleSpec = await buildSpec({ artifact: "proj", entry: "train.py", backend: "kaggle" }, root);
  const archive = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "code-")), "code.tar.gz");
  await packCode(kaggleSpec, archive, { env: {}, reporter: { info() {}, warn() {}, jobLine() {} } });
  const code = await tarText(archive);
  assert.ok(!code.text.includes(secret), "no canary in the Kaggle code dataset");
  assert.deepEqual(
    code.names.filter((name) => !name.includes("/") && name !== "lib" && name !== "keys"),
    ["id_to_label.json", "requirements.txt", "train.py"],
  );
});

test("only an explicit ! in .alekseylearnignore brings a secret back; .dockerignore cannot", () => {
  const root = writeTree({
    "train.py": "",
    ".env.example": "API_KEY=\n",
    ".env": "TOKEN=x\n",
    ".aws/config": "[default]\n",
    ".aws/credentials": "x",
    "data/big.bin": "x",
    ".dockerignore": "data\n!.env\n",
    ".alekseylearnignore": "!.env.example\n!.aws/config\n*.log\n",
    "run.log": "",
  });
  const shipment = shippedFiles(root);
  assert.deepEqual(shipment.files, [".alekseylearnignore", ".aws/config", ".dockerignore", ".env.example", "train.py"]);
  assert.deepEqual(shipment.secrets, [".aws/", ".env"]);
});

test(".gitignore applies in a git work tree, counted once; .alekseylearnignore has the last word; outside a work tree it is only a file", () => {
  const root = writeTree({
    "proj/train.py": "",
    "proj/.gitignore": "data/\n*.log\n",
    "proj/data/a.bin": "x".repeat(1000),
    "proj/data/b.bin": "x".repeat(24),
    "proj/run.log": "log!",
    "proj/keep.log": "keep",
    "proj/.alekseylearnignore": "!keep.log\n",
    "proj/.env": "X=1\n", // gitignored secrets are not named: they would not have shipped anyway
    ".gitignore": ".env\n",
  });
  const dir = path.join(root, "proj");
  const before = shippedFiles(dir);
  assert.deepEqual(before.gitignored, { files: 0, bytes: 0 }, "not a work tree yet");
  assert.ok(before.files.includes("run.log") && before.files.includes("data/a.bin"));

  execFileSync("git", ["init", "-q", root]);
  const after = shippedFiles(dir, { env: { PATH: "/usr/bin:/bin:/usr/local/bin" } });
  assert.deepEqual(after.files, [".alekseylearnignore", ".gitignore", "keep.log", "train.py"]);
  assert.deepEqual(after.gitignored, { files: 4, bytes: 1000 + 24 + 4 + 4 });
  assert.deepEqual(after.secrets, []);
  const said: string[] = [];
  reportShipment(
    after,
    (m) => said.push(m),
    (m) => said.push(m),
  );
  assert.deepEqual(said, [".gitignore kept 4 files (1032 bytes) from shipping."]);
});

test("an entry the rules keep out is a clear error before anything is packed", () => {
  const root = writeTree({ "train.py": "", ".dockerignore": "*.py\n" });
  assert.throws(
    () => shippedFiles(root, { entry: "train.py" }),
    (err: unknown) => err instanceof UserError && /train\.py would not ship/.test(err.message) && /!train\.py/.test(err.hint ?? ""),
  );
});

test("requirements: lines with a credential in a URL never ship; the image build and Kaggle refuse such an environment with a hint", async () => {
  const secret = canary();
  const requirements = `--extra-index-url https://user:${secret}@pypi.example/simple\n-i https://${secret}@idx.example/simple \\\n    --trusted-host idx.example\njoblib==1.4\nprivate-pkg @ https://pkgs.example/p.whl?token=${secret}\n--extra-index-url https://\${PIP_USER}:\${PIP_TOKEN}@env.example/simple\n`;
  const cleaned = shippableRequirements(requirements);
  assert.equal(cleaned.removed, 3);
  assert.ok(!cleaned.text.includes(secret));
  assert.match(cleaned.text, /^joblib==1\.4$/m);
  assert.match(cleaned.text, /\$\{PIP_TOKEN\}@env\.example/, "a ${VARIABLE} reference is no credential: pip fills it in where it installs");
  assert.equal(cleaned.text.split("\n").length, requirements.split("\n").length, "the other lines keep their numbers");

  const root = writeTree({ "proj/train.py": "", "proj/requirements.txt": requirements, "proj/tools/requirements-dev.txt": requirements });
  // SageMaker refuses it while checking the spec, before anything; the build itself refuses it too (the local container runner).
  await assert.rejects(
    () => buildSpec({ artifact: "proj/train.py", config: { output_path: "s3://bucket/sagemaker/runs" } }, root),
    (err: unknown) => err instanceof UserError && [err.message, ...err.details].some((line) => /credential in a URL/.test(line) && !line.includes(secret)),
  );
  const spec = await buildSpec({ artifact: "proj/train.py", backend: "local", config: { runner: "docker" } }, root);
  const context = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "ctx-")), "context.tar");
  await assert.rejects(
    writeBuildContext(spec, "python:3.11-slim", context),
    (err: unknown) =>
      err instanceof UserError && /credential in a URL/.test(err.message) && /pip download/.test(err.hint ?? "") && !err.message.includes(secret),
  );
  assert.ok(!fs.existsSync(context), "nothing is packed");

  // A requirements file that is not the job's environment ships, cleaned.
  const other = writeTree({ "proj/train.py": "", "proj/requirements.txt": "joblib\n", "proj/tools/requirements-dev.txt": requirements });
  const otherSpec = await buildSpec({ artifact: "proj/train.py", config: { output_path: "s3://bucket/sagemaker/runs" } }, other);
  await writeBuildContext(otherSpec, "python:3.11-slim", context);
  const packed = await tarText(context);
  assert.ok(packed.names.includes("tools/requirements-dev.txt"));
  assert.ok(!packed.text.includes(secret), "no canary in the build context");

  await assert.rejects(
    () => buildSpec({ artifact: "proj/train.py", backend: "kaggle" }, root),
    (err: unknown) => err instanceof UserError && [err.message, ...err.details].some((line) => /credential in a URL/.test(line)),
  );
  const kaggleSpec = buildSpecFor(kaggleBackend, { artifact: "proj/train.py" }, other);
  assert.ok(
    !JSON.stringify(saveKernelRequest({ ...kaggleSpec, environment: { ...kaggleSpec.environment!, content: requirements } }, "tester", { text: "" })).includes(
      secret,
    ),
    "the kernel's source holds no credential",
  );
});
