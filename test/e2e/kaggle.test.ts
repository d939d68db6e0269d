/**
 * The Kaggle backend end to end through the CLI, against the Kaggle API test
 * server (test/servers/kaggle-api.ts: checks every request against the
 * official API's published shapes, and really runs each pushed kernel).
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { gunzipSync } from "node:zlib";
import * as tar from "tar";
import { ensureEnvironment } from "../../src/package/environment.js";
import { NOTEBOOK_PACKAGES } from "../../src/package/notebook.js";
import { makeContext } from "../../src/context.js";
import { KaggleApi } from "../../src/backends/kaggle/api.js";
import { copyExample, cliEnv, runCli, startCli, TEST_CACHE, waitFor } from "../helpers/cli.js";
import { listTree, writeTree } from "../helpers/tree.js";
import { startKaggleServer, USER, type KaggleTestServer } from "../servers/kaggle-api.js";

let server: KaggleTestServer;

before(async () => {
  // The "Kaggle image": a Python environment with the packages Kaggle preinstalls that the examples use.
  const image = writeTree({ "requirements.txt": "# kaggle image for tests\nscikit-learn\njoblib\n" });
  const ctx = makeContext({ cwd: image, env: process.env, cacheDir: path.join(TEST_CACHE, "alekseylearn") });
  const environment = await ensureEnvironment({ file: { kind: "requirements", path: path.join(image, "requirements.txt"), content: fs.readFileSync(path.join(image, "requirements.txt"), "utf8") }, python: "python3", extras: NOTEBOOK_PACKAGES }, ctx);
  server = await startKaggleServer(environment.python);
});

after(() => server.close());

/** The CLI's environment: the test server, credentials from `credentials`, a home with no ~/.kaggle. */
function kaggleEnv(credentials: Record<string, string> = { KAGGLE_API_TOKEN: USER.token }): ReturnType<typeof cliEnv> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "kaggle-home-"));
  return cliEnv({ KAGGLE_API_ENDPOINT: server.url, HOME: home, ...credentials });
}

const FAST = ["--backend", "kaggle", "--config.poll_interval=0.1"];

/** A project folder called `name` (Kaggle kernels are named after the folder and the file). */
function project(name: string, files: Record<string, string>): string {
  return path.join(writeTree(Object.fromEntries(Object.entries(files).map(([file, text]) => [`${name}/${file}`, text]))), name);
}

function lastSave(): Record<string, unknown> {
  return server.requests.filter((r) => r.method === "SaveKernel").at(-1)!.body;
}

test("Kaggle API test server: iris on Kaggle: pushed as a script kernel, followed to the end, fetched with the same files as the local backend", async () => {
  const dir = copyExample("iris");
  const { env } = kaggleEnv();
  const result = await runCli(["fit", "train.py", ...FAST, "--hyperparameter.C=0.5", "--json"], { cwd: dir, env });
  assert.equal(result.code, 0, result.stderr);
  const job = JSON.parse(result.stdout);
  assert.equal(job.state, "completed");
  assert.equal(job.model, "kaggle://tester/iris-train");
  assert.match(result.stderr, /\[kaggle\] queued \(https:\/\/www\.kaggle\.com\/code\/tester\/iris-train\)/);
  assert.match(result.stderr, /\[kaggle\] completed/);
  assert.match(result.stderr, /training on 112 samples with C=0\.5/, "the kernel's log is shown, with hyperparameters from SM_HPS");

  const request = lastSave();
  assert.equal(request.slug, "tester/iris-train");
  assert.equal(request.newTitle, "iris train");
  assert.equal(request.kernelType, "script");
  assert.equal(request.language, "python");
  assert.equal(request.isPrivate, true);
  assert.equal(request.enableGpu, false);
  assert.equal(request.enableTpu, false);
  assert.equal(request.enableInternet, true);
  assert.match(String(request.text), /^# Added by alekseylearn: the \/opt\/ml contract on Kaggle/);
  assert.match(String(request.text), /_alekseylearn_runpy\.run_path\(_alekseylearn_entry, run_name="__main__"\)\n$/);

  const fetched = await runCli(["fetch", "kaggle://tester/iris-train", "--to", "m"], { cwd: dir, env });
  assert.equal(fetched.code, 0, fetched.stderr);
  assert.deepEqual(listTree(path.join(dir, "m")), ["metrics.json", "model.joblib"], "the same files as `fetch` from the local backend");
  const byName = await runCli(["fetch", job.name, "--to", "m2"], { cwd: dir, env });
  assert.equal(byName.code, 0, byName.stderr);
  assert.deepEqual(listTree(path.join(dir, "m2")), ["metrics.json", "model.joblib"]);
  const logs = await runCli(["logs", job.name], { cwd: dir, env });
  assert.match(logs.stdout, /test accuracy: 0\.\d+/);
});

test("Kaggle API test server: a notebook goes up as a notebook kernel, outputs stripped, the preamble as its first cell", async () => {
  const dir = copyExample("notebook");
  const { env } = kaggleEnv();
  const result = await runCli(["fit", "train.ipynb", ...FAST, "--json"], { cwd: dir, env });
  assert.equal(result.code, 0, result.stderr);
  const request = lastSave();
  assert.equal(request.kernelType, "notebook");
  const notebook = JSON.parse(String(request.text));
  assert.deepEqual(notebook.cells[0].metadata.tags, ["alekseylearn-preamble"]);
  assert.ok(notebook.cells.every((cell: { outputs?: unknown[]; source: unknown }) => typeof cell.source === "string" && !(cell.outputs ?? []).length));
  const fetched = await runCli(["fetch", JSON.parse(result.stdout).name, "--to", "m"], { cwd: dir, env });
  assert.equal(fetched.code, 0, fetched.stderr);
  assert.deepEqual(listTree(path.join(dir, "m")), ["model.joblib"]);
});

test("Kaggle API test server: a folder goes up as a private code dataset attached to the kernel, so its modules import", async () => {
  const folder = project("mlproj", {
    "src/train.py": "import os\nfrom helpers import weights\nopen(os.path.join(os.environ['SM_MODEL_DIR'], 'w.txt'), 'w').write(weights())\n",
    "src/helpers.py": "def weights():\n    return 'from a helper module'\n",
    "requirements.txt": "",
    "__pycache__/junk.pyc": "x",
  });
  const cwd = path.dirname(folder);
  const { env } = kaggleEnv();
  const result = await runCli(["fit", "mlproj", "--entry", "src/train.py", ...FAST, "--json"], { cwd, env });
  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual(lastSave().datasetDataSources, ["tester/mlproj-code"]);
  assert.ok(server.requests.some((r) => r.method === "CreateDataset" && r.body.slug === "mlproj-code" && r.body.isPrivate === true));
  const uploaded: string[] = [];
  await tar.t({ file: path.join(server.datasets.get("tester/mlproj-code")!, "code.tar.gz"), onReadEntry: (entry) => void uploaded.push(entry.path) });
  assert.deepEqual(uploaded.filter((name) => !name.endsWith("/")).sort(), ["requirements.txt", "src/helpers.py", "src/train.py"], "caches stay home");
  const fetched = await runCli(["fetch", "kaggle://tester/mlproj", "--to", "m"], { cwd, env });
  assert.equal(fetched.code, 0, fetched.stderr);
  assert.equal(fs.readFileSync(path.join(cwd, "m", "w.txt"), "utf8"), "from a helper module");
  // A second run updates the dataset with a new version instead of failing on the existing slug.
  const again = await runCli(["fit", "mlproj", "--entry", "src/train.py", ...FAST], { cwd, env });
  assert.equal(again.code, 0, again.stderr);
  assert.ok(server.requests.some((r) => r.method === "CreateDatasetVersion" && r.body.datasetSlug === "mlproj-code"));
});

test("Kaggle API test server: secrets in a folder artifact stay home: not in the code dataset, the kernel, the records or any output; each is named once", async () => {
  const secret = `CANARY${randomBytes(12).toString("hex")}`;
  const pem = `-----BEGIN RSA PRIVATE KEY-----\n${secret}\n-----END RSA PRIVATE KEY-----\n`;
  const folder = project("leaky", {
    "train.py": "import os\nopen(os.path.join(os.environ['SM_MODEL_DIR'], 'ok.txt'), 'w').write('ok')\n",
    "requirements.txt": "",
    ".env": `KAGGLE_KEY=${secret}\n`,
    ".aws/credentials": `[default]\naws_secret_access_key = ${secret}\n`,
    ".ssh/id_ed25519": pem,
    "kaggle.json": `{"username": "tester", "key": "${secret}"}\n`,
    "certs/client.pem": pem,
    "notes.txt": `old key\n${pem}`,
    "gcp-key.json": JSON.stringify({ type: "service_account", private_key: secret }),
  });
  const cwd = path.dirname(folder);
  const { env, stateDir } = kaggleEnv();
  const result = await runCli(["fit", "leaky", "--entry", "train.py", ...FAST, "--json"], { cwd, env });
  assert.equal(result.code, 0, result.stderr);
  for (const named of [".env", ".aws/", ".ssh/", "kaggle.json", "certs/client.pem", "notes.txt", "gcp-key.json"]) {
    assert.equal(result.stderr.split(`Not shipping ${named}:`).length - 1, 1, `${named} is named once`);
  }
  const archive = fs.readFileSync(path.join(server.datasets.get("tester/leaky-code")!, "code.tar.gz"));
  const uploaded: string[] = [];
  await tar.t({ file: path.join(server.datasets.get("tester/leaky-code")!, "code.tar.gz"), onReadEntry: (entry) => void uploaded.push(entry.path) });
  assert.deepEqual(uploaded.filter((name) => !name.endsWith("/")).sort(), ["requirements.txt", "train.py"]);
  const status = await runCli(["status", "--json"], { cwd, env });
  const jobs = await runCli(["jobs", "--json"], { cwd, env });
  const records = listTree(stateDir).map((file) => fs.readFileSync(path.join(stateDir, file), "utf8"));
  for (const [where, text] of [
    ["the code dataset", gunzipSync(archive).toString("latin1")],
    ["the kernels pushed", JSON.stringify(server.requests)],
    ["fit's output", result.stdout + result.stderr],
    ["status --json and jobs --json", status.stdout + jobs.stdout],
    ["the job's records and logs", records.join("\n")],
  ] as const) {
    assert.ok(!text.includes(secret), `the canary is not in ${where}`);
  }
});

test("Kaggle API test server: fetch follows pagination past the 500-file page limit and downloads every output file", async () => {
  const dir = project("bulk", {
    "many.py": "import os\nfor i in range(620):\n    open(os.path.join('/opt/ml/model', 'part-%04d.bin' % i), 'w').write(str(i))\nopen('/opt/ml/output/data/report.txt', 'w').write('ok')\n",
    "requirements.txt": "",
  });
  const { env } = kaggleEnv();
  const result = await runCli(["fit", "many.py", ...FAST, "--json"], { cwd: dir, env });
  assert.equal(result.code, 0, result.stderr);
  const fetched = await runCli(["fetch", JSON.parse(result.stdout).name, "--to", "m", "--json"], { cwd: dir, env });
  assert.equal(fetched.code, 0, fetched.stderr);
  const files = listTree(path.join(dir, "m"));
  assert.equal(files.filter((f) => f.startsWith("part-")).length, 620);
  assert.ok(files.includes("output/report.txt"), "output data lands in DIR/output as on the other backends");
  assert.equal(fs.readFileSync(path.join(dir, "m", "part-0619.bin"), "utf8"), "619");
  const pages = server.requests.filter((r) => r.method === "ListKernelSessionOutput" && r.body.kernelSlug === "bulk-many");
  assert.ok(pages.some((r) => r.body.pageToken === "500"), "the second page was asked for");
});

test("Kaggle API test server: a kernel that errors: exit 1, Kaggle's failure message and the last log lines shown", async () => {
  const dir = project("crash", { "boom.py": "print('loading data')\nraise ValueError('corrupt shard 7')\n", "requirements.txt": "" });
  const { env } = kaggleEnv();
  const result = await runCli(["fit", "boom.py", ...FAST], { cwd: dir, env });
  assert.equal(result.code, 1, result.stderr);
  assert.match(result.stderr, /error: Job boom-\S+ failed: Your notebook tried to run but exited with code 1\./);
  assert.match(result.stderr, /ValueError: corrupt shard 7/);
});

test("Kaggle API test server: a session cancelled on Kaggle ends the job as stopped; `stop` explains why the API cannot cancel", async () => {
  const dir = project("cancel", { "slow.py": "import time\nprint('working', flush=True)\ntime.sleep(120)\n", "requirements.txt": "" });
  const { env } = kaggleEnv();
  const run = startCli(["fit", "slow.py", ...FAST], { cwd: dir, env });
  await waitFor(() => server.session("tester/cancel-slow")?.status === "RUNNING" && run.output().includes("[kaggle] running"), "the kernel to run");
  const name = /Job (slow-\S+) \(kaggle backend\)/.exec(run.output())![1]!;
  const stop = await runCli(["stop", name], { cwd: dir, env });
  assert.equal(stop.code, 1);
  assert.match(stop.stderr, /Kaggle's API cannot stop slow-\S+: cancelling needs the kernel session's id, which Kaggle does not give out\.\nhint: Stop it from the kernel's page: https:\/\/www\.kaggle\.com\/code\/tester\/cancel-slow/);
  const early = await runCli(["logs", name], { cwd: dir, env });
  assert.match(early.stdout, /^\[kaggle\] running: Kaggle hands out a session's log once it ends/);
  server.cancel("tester/cancel-slow");
  const result = await run.done;
  assert.equal(result.code, 130, result.stderr);
  assert.match(result.stderr, /\[kaggle\] stopped/);
  assert.match(result.stderr, /Job slow-\S+ was stopped/);
});

test("Kaggle API test server: statuses are read in either spelling (COMPLETE, complete)", async () => {
  const dir = project("spelling", { "tiny.py": "open('/opt/ml/model/a.txt', 'w').write('a')\n", "requirements.txt": "" });
  const { env } = kaggleEnv();
  server.lowercaseStatus = true;
  try {
    const result = await runCli(["fit", "tiny.py", ...FAST, "--json"], { cwd: dir, env });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(JSON.parse(result.stdout).state, "completed");
  } finally {
    server.lowercaseStatus = false;
  }
});

test("Kaggle API test server: Kaggle's answers: a quota error says what to do, unknown sources are named one by one", async () => {
  const dir = project("exp", { "tiny.py": "print(1)\n", "requirements.txt": "" });
  const { env } = kaggleEnv();
  server.failNextSave = "Maximum weekly GPU quota of 30.00 hours reached.";
  const quota = await runCli(["fit", "tiny.py", ...FAST, "--config.accelerator=gpu"], { cwd: dir, env });
  assert.equal(quota.code, 1);
  assert.match(quota.stderr, /Kaggle refused the kernel tester\/exp-tiny: Maximum weekly GPU quota of 30\.00 hours reached\.\nhint: Check your weekly GPU\/TPU quota/);
  const sources = await runCli(["fit", "tiny.py", ...FAST, "--config.dataset_sources=tester/no-such-data,tester/gone"], { cwd: dir, env });
  assert.equal(sources.code, 1);
  assert.match(sources.stderr, /Kaggle does not know these sources of tester\/exp-tiny:\n {2}- dataset tester\/no-such-data\n {2}- dataset tester\/gone\n/);
});

test("Kaggle API test server: settings become the kernel's: accelerator, privacy, internet, sources, runtime", async () => {
  const dir = project("exp", { "tiny.py": "print(1)\n", "requirements.txt": "numpy\n" });
  const { env } = kaggleEnv();
  server.datasets.set("tester/iris-data", writeTree({ "iris.csv": "5.1,3.5\n" }));
  const result = await runCli(
    ["fit", "tiny.py", ...FAST, "--detach", "--config.accelerator=NvidiaTeslaT4", "--config.is_private=false", "--config.enable_internet=false", "--config.title=Tiny Experiment", "--config.max_runtime=2h", "--config.docker_image_pinning=latest", "--input.train=kaggle://tester/iris-data", "--config.kernel_sources=tester/feature-kernel"],
    { cwd: dir, env },
  );
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, /enable_internet=false: the kernel cannot pip install requirements\.txt/);
  const request = lastSave();
  assert.equal(request.slug, "tester/tiny-experiment");
  assert.equal(request.newTitle, "Tiny Experiment");
  assert.equal(request.machineShape, "NvidiaTeslaT4");
  assert.equal(request.enableGpu, true);
  assert.equal(request.isPrivate, false);
  assert.equal(request.enableInternet, false);
  assert.equal(request.sessionTimeoutSeconds, 7200);
  assert.equal(request.dockerImagePinningType, "latest");
  assert.deepEqual(request.datasetDataSources, ["tester/iris-data"]);
  assert.deepEqual(request.kernelDataSources, ["tester/feature-kernel"]);
});

function writeSecret(file: string, text: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text, { mode: 0o600 });
}

test("Kaggle API test server: credentials, in the official order: token, token file, username and key, kaggle.json; never printed", async () => {
  const dir = project("exp", { "tiny.py": "print(1)\n", "requirements.txt": "" });
  const tokenFile = path.join(writeTree({ token: `${USER.token}\n` }), "token");
  const configDir = writeTree({ "kaggle.json": JSON.stringify({ username: USER.username, key: USER.key }) });
  fs.chmodSync(path.join(configDir, "kaggle.json"), 0o644);
  const cases: Array<[string, Record<string, string>, (home: string) => void]> = [
    ["KAGGLE_API_TOKEN", { KAGGLE_API_TOKEN: USER.token }, () => {}],
    ["KAGGLE_API_TOKEN as a file", { KAGGLE_API_TOKEN: tokenFile }, () => {}],
    ["~/.kaggle/access_token", {}, (home) => writeSecret(path.join(home, ".kaggle", "access_token"), USER.token)],
    ["KAGGLE_USERNAME and KAGGLE_KEY", { KAGGLE_USERNAME: USER.username, KAGGLE_KEY: USER.key }, () => {}],
    ["kaggle.json in KAGGLE_CONFIG_DIR", { KAGGLE_CONFIG_DIR: configDir }, () => {}],
    ["~/.kaggle/kaggle.json", {}, (home) => writeSecret(path.join(home, ".kaggle", "kaggle.json"), JSON.stringify({ username: USER.username, key: USER.key }))],
  ];
  for (const [label, credentials, prepare] of cases) {
    const { env } = kaggleEnv(credentials);
    prepare(env.HOME!);
    const result = await runCli(["fit", "tiny.py", ...FAST], { cwd: dir, env });
    assert.equal(result.code, 0, `${label}: ${result.stderr}`);
    assert.equal(result.stderr.match(/readable by other users/g)?.length ?? 0, label === "kaggle.json in KAGGLE_CONFIG_DIR" ? 1 : 0, `${label}: the permission warning once, and only for the shared file`);
    assert.ok(!(result.stdout + result.stderr).includes(USER.key) && !(result.stdout + result.stderr).includes(USER.token), `${label}: no credential in the output`);
  }
  // The token wins over a key pair when both are there.
  const both = await runCli(["fit", "tiny.py", ...FAST, "--detach"], { cwd: dir, env: kaggleEnv({ KAGGLE_API_TOKEN: USER.token, KAGGLE_USERNAME: USER.username, KAGGLE_KEY: "wrong-key" }).env });
  assert.equal(both.code, 0, both.stderr);

  const none = await runCli(["fit", "tiny.py", ...FAST], { cwd: dir, env: kaggleEnv({}).env });
  assert.equal(none.code, 1);
  assert.match(none.stderr, /error: No Kaggle credentials found .*\nhint: Create an API token at https:\/\/www\.kaggle\.com\/settings/);
  const wrong = await runCli(["fit", "tiny.py", ...FAST], { cwd: dir, env: kaggleEnv({ KAGGLE_USERNAME: USER.username, KAGGLE_KEY: "not-the-key-42" }).env });
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /Kaggle refused the credentials from KAGGLE_USERNAME and KAGGLE_KEY \(401 on SaveKernel\)/);
  assert.ok(!wrong.stderr.includes("not-the-key-42"), "the rejected key is not printed");
});

test("Kaggle API test server: the test server holds the client to the published request shapes", async () => {
  const api = new KaggleApi({ kind: "token", token: USER.token, source: "test" }, server.url, 0);
  await assert.rejects(api.call("kernels.KernelsApiService", "GetKernelSessionStatus", { userName: "tester", kernelSlug: "x", kernelSlugs: "typo" }), /kernelSlugs: unknown field/);
  await assert.rejects(api.call("kernels.KernelsApiService", "ListKernelSessionOutput", { userName: "tester", kernelSlug: "x", pageSize: "20" }), /pageSize: expected an integer/);
  const stranger = new KaggleApi({ kind: "token", token: "KGAT_stolen", source: "KAGGLE_API_TOKEN" }, server.url, 0);
  await assert.rejects(stranger.username(), /The Kaggle token from KAGGLE_API_TOKEN is not active/);
});

test("Kaggle API test server: jobs still lists a running Kaggle job when Kaggle cannot be asked (no credentials here)", async () => {
  const dir = project("offline", { "slow.py": "import time\ntime.sleep(60)\n", "requirements.txt": "" });
  const { env } = kaggleEnv();
  const detached = await runCli(["fit", "slow.py", ...FAST, "--detach", "--json"], { cwd: dir, env });
  assert.equal(detached.code, 0, detached.stderr);
  const name = JSON.parse(detached.stdout).name;
  const withoutCredentials = { ...env };
  delete withoutCredentials.KAGGLE_API_TOKEN;
  const listed = await runCli(["jobs"], { cwd: dir, env: withoutCredentials });
  assert.equal(listed.code, 0, listed.stderr);
  assert.match(listed.stdout, new RegExp(`${name}\\s+kaggle\\s+queued`));
  server.cancel("tester/offline-slow");
});
