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
import { NOTEBOOK_PACKAGES } from "../../src/package/runtime.js";
import { makeContext } from "../../src/context.js";
import { KaggleApi } from "../../src/backends/kaggle/api.js";
import { copyExample, cliEnv, runCli, startCli, TEST_CACHE, waitFor } from "../helpers/cli.js";
import { listTree, writeTree } from "../helpers/tree.js";
import { ARGPARSE_ARGV, ARGPARSE_EXPECTED, ARGPARSE_HYPERPARAMETERS, ARGPARSE_SCRIPT } from "../helpers/scripts.js";
import { startKaggleServer, USER, type KaggleTestServer } from "../servers/kaggle-api.js";
import { fileTimeLimit } from "../helpers/limit.js";

fileTimeLimit(15, import.meta.url);

let server: KaggleTestServer;

before(async () => {
  // The "Kaggle image": a Python environment with the packages Kaggle preinstalls that the examples use.
  const image = writeTree({ "requirements.txt": "# kaggle image for tests\nscikit-learn\njoblib\n" });
  const ctx = makeContext({ cwd: image, env: process.env, cacheDir: path.join(TEST_CACHE, "alekseylearn") });
  const environment = await ensureEnvironment(
    {
      file: { kind: "requirements", path: path.join(image, "requirements.txt"), content: fs.readFileSync(path.join(image, "requirements.txt"), "utf8") },
      python: "python3",
      extras: NOTEBOOK_PACKAGES,
    },
    ctx,
  );
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
  // The first state a poll saw comes with the kernel's page (a quick kernel may be past "queued" by then).
  assert.match(result.stderr, /\[kaggle\] (queued|running|completed) \(https:\/\/www\.kaggle\.com\/code\/tester\/iris-train\)/);
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
  assert.match(String(request.text), /^# Added by alekseylearn: every platform.s contract on Kaggle/);
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
    "many.py":
      "import os\nfor i in range(620):\n    open(os.path.join('/opt/ml/model', 'part-%04d.bin' % i), 'w').write(str(i))\nopen('/opt/ml/output/data/report.txt', 'w').write('ok')\n",
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
  assert.ok(
    pages.some((r) => r.body.pageToken === "500"),
    "the second page was asked for",
  );
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
  assert.match(
    stop.stderr,
    /Kaggle's API cannot stop slow-\S+: cancelling needs the kernel session's id, which Kaggle does not give out\.\nhint: Stop it from the kernel's page: https:\/\/www\.kaggle\.com\/code\/tester\/cancel-slow/,
  );
  const early = await runCli(["logs", name], { cwd: dir, env });
  assert.match(early.stdout, /^\[kaggle\] running: Kaggle hands out a session's log once it ends/);
  server.cancel("tester/cancel-slow");
  const result = await run.done;
  assert.equal(result.code, 130, result.stderr);
  assert.match(result.stderr, /\[kaggle\] stopped/);
  assert.match(result.stderr, /Job slow-\S+ was stopped/);
});

test("Kaggle API test server: statuses are read in every spelling kagglesdk decodes (COMPLETE, complete, camelCase); a cancelled kernel spelled cancelAcknowledged ends as stopped", async () => {
  const dir = project("spelling", {
    "tiny.py": "open('/opt/ml/model/a.txt', 'w').write('a')\n",
    "slow.py": "import time\nprint('waiting', flush=True)\ntime.sleep(120)\n",
    "requirements.txt": "",
  });
  const { env } = kaggleEnv();
  try {
    for (const spelling of ["lower", "camel"] as const) {
      server.statusSpelling = spelling;
      const result = await runCli(["fit", "tiny.py", ...FAST, "--json"], { cwd: dir, env });
      assert.equal(result.code, 0, `${spelling}: ${result.stderr}`);
      assert.equal(JSON.parse(result.stdout).state, "completed");
    }
    // camelCase, as kagglesdk's EnumSerializer reads it: a follower that did not would follow this kernel forever.
    const run = startCli(["fit", "slow.py", ...FAST], { cwd: dir, env });
    await waitFor(() => run.output().includes("waiting"), "the kernel to run");
    server.cancel("tester/spelling-slow");
    const result = await run.done;
    assert.equal(result.code, 130, result.stderr);
    assert.match(result.stderr, /\[kaggle\] stopped/);
  } finally {
    server.statusSpelling = "upper";
  }
});

test("Kaggle API test server: a running kernel's output appears while it runs, from the log stream; a dropped stream is picked up again without repeating a line", async () => {
  const dir = project("live", {
    "steps.py":
      "import os, time\nprint('epoch 1 done', flush=True)\nwhile not os.path.exists('/kaggle/working/go'):\n    time.sleep(0.05)\nfor i in range(2, 5):\n    print('epoch %d done' % i, flush=True)\n",
    "requirements.txt": "",
  });
  const { env } = kaggleEnv();
  server.dropLogStreamAfter = 2;
  const run = startCli(["fit", "steps.py", ...FAST], { cwd: dir, env });
  // The kernel waits for a file before it ends: its first line can only have come from the live stream.
  await waitFor(() => run.output().includes("epoch 1 done"), "the first line while the kernel runs");
  assert.equal(server.session("tester/live-steps")?.status, "RUNNING");
  fs.writeFileSync(path.join(server.session("tester/live-steps")!.work, "go"), "");
  const result = await run.done;
  assert.equal(result.code, 0, result.stderr);
  for (const epoch of [1, 2, 3, 4]) assert.equal(result.stderr.split(`epoch ${epoch} done`).length - 1, 1, `epoch ${epoch} shown once:\n${result.stderr}`);
  assert.ok(server.logStreams >= 2, "the stream was connected again after it dropped");
});

test("Kaggle API test server: Kaggle's answers: a quota error says what to do, unknown sources are named one by one", async () => {
  const dir = project("exp", { "tiny.py": "print(1)\n", "requirements.txt": "" });
  const { env } = kaggleEnv();
  server.failNextSave = "Maximum weekly GPU quota of 30.00 hours reached.";
  const quota = await runCli(["fit", "tiny.py", ...FAST, "--config.accelerator=gpu"], { cwd: dir, env });
  assert.equal(quota.code, 1);
  assert.match(
    quota.stderr,
    /Kaggle refused the kernel tester\/exp-tiny: Maximum weekly GPU quota of 30\.00 hours reached\.\nhint: Check your weekly GPU\/TPU quota/,
  );
  const sources = await runCli(["fit", "tiny.py", ...FAST, "--config.dataset_sources=tester/no-such-data,tester/gone"], { cwd: dir, env });
  assert.equal(sources.code, 1);
  assert.match(sources.stderr, /Kaggle does not know these sources of tester\/exp-tiny:\n {2}- dataset tester\/no-such-data\n {2}- dataset tester\/gone\n/);
});

test("Kaggle API test server: settings become the kernel's: accelerator, privacy, internet, sources, runtime", async () => {
  const dir = project("exp", { "tiny.py": "print(1)\n", "requirements.txt": "numpy\n" });
  const { env } = kaggleEnv();
  server.datasets.set("tester/iris-data", writeTree({ "iris.csv": "5.1,3.5\n" }));
  const result = await runCli(
    [
      "fit",
      "tiny.py",
      ...FAST,
      "--detach",
      "--config.accelerator=NvidiaTeslaT4",
      "--config.is_private=false",
      "--config.enable_internet=false",
      "--config.title=Tiny Experiment",
      "--config.max_runtime=2h",
      "--config.docker_image_pinning=latest",
      "--input.train=kaggle://tester/iris-data",
      "--config.kernel_sources=tester/feature-kernel",
    ],
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

test("Kaggle API test server: credentials, in the official order: token, token file, username and key, kaggle.json; the OAuth login with KAGGLE_ENABLE_OAUTH; never printed", async () => {
  const dir = project("exp", { "tiny.py": "print(1)\n", "requirements.txt": "" });
  const tokenFile = path.join(writeTree({ token: `${USER.token}\n` }), "token");
  const configDir = writeTree({ "kaggle.json": JSON.stringify({ username: USER.username, key: USER.key }) });
  fs.chmodSync(path.join(configDir, "kaggle.json"), 0o644);
  const login = (home: string, accessToken: string, expires: Date): void =>
    writeSecret(
      path.join(home, ".kaggle", "credentials.json"),
      JSON.stringify({
        refresh_token: USER.refreshToken,
        access_token: accessToken,
        access_token_expiration: expires.toISOString().replace("Z", "+00:00"),
        username: USER.username,
        scopes: [],
      }),
    );
  const cases: Array<[string, Record<string, string>, (home: string) => void]> = [
    ["KAGGLE_API_TOKEN", { KAGGLE_API_TOKEN: USER.token }, () => {}],
    ["KAGGLE_API_TOKEN as a file", { KAGGLE_API_TOKEN: tokenFile }, () => {}],
    ["~/.kaggle/access_token", {}, (home) => writeSecret(path.join(home, ".kaggle", "access_token"), USER.token)],
    ["KAGGLE_USERNAME and KAGGLE_KEY", { KAGGLE_USERNAME: USER.username, KAGGLE_KEY: USER.key }, () => {}],
    ["kaggle.json in KAGGLE_CONFIG_DIR", { KAGGLE_CONFIG_DIR: configDir }, () => {}],
    ["~/.kaggle/kaggle.json", {}, (home) => writeSecret(path.join(home, ".kaggle", "kaggle.json"), JSON.stringify({ username: USER.username, key: USER.key }))],
    ["kaggle auth login, token expired", { KAGGLE_ENABLE_OAUTH: "1" }, (home) => login(home, "KGAT_oauth_long_gone", new Date(Date.now() - 3600_000))],
  ];
  for (const [label, credentials, prepare] of cases) {
    const { env } = kaggleEnv(credentials);
    prepare(env.HOME!);
    const result = await runCli(["fit", "tiny.py", ...FAST], { cwd: dir, env });
    assert.equal(result.code, 0, `${label}: ${result.stderr}`);
    assert.equal(
      result.stderr.match(/readable by other users/g)?.length ?? 0,
      label === "kaggle.json in KAGGLE_CONFIG_DIR" ? 1 : 0,
      `${label}: the permission warning once, and only for the shared file`,
    );
    assert.ok(
      ![USER.key, USER.token, USER.refreshToken, "KGAT_oauth"].some((secret) => (result.stdout + result.stderr).includes(secret)),
      `${label}: no credential in the output`,
    );
  }

  // OAuth: an expired access token is refreshed with the saved refresh token and saved back as the CLI saves it; a fresh one is used as it is.
  const oauth = kaggleEnv({ KAGGLE_ENABLE_OAUTH: "true" });
  login(oauth.env.HOME!, "KGAT_oauth_long_gone", new Date(Date.now() - 3600_000));
  assert.equal((await runCli(["fit", "tiny.py", ...FAST, "--detach"], { cwd: dir, env: oauth.env })).code, 0);
  const file = path.join(oauth.env.HOME!, ".kaggle", "credentials.json");
  const saved = JSON.parse(fs.readFileSync(file, "utf8"));
  assert.match(saved.access_token, /^KGAT_oauth_\d+$/);
  assert.equal(saved.refresh_token, USER.refreshToken);
  assert.ok(Date.parse(saved.access_token_expiration) > Date.now() + 11 * 3600_000, "valid for about 12 hours");
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  const refreshes = server.requests.filter((r) => r.method === "GenerateAccessToken").length;
  assert.equal((await runCli(["fit", "tiny.py", ...FAST, "--detach"], { cwd: dir, env: oauth.env })).code, 0);
  assert.equal(server.requests.filter((r) => r.method === "GenerateAccessToken").length, refreshes, "a valid access token is not refreshed again");

  // An access token Kaggle calls invalid or expired is passed over with a warning, and the next form is used.
  server.expiredTokens.add("KGAT_expired_token");
  const fallback = await runCli(["fit", "tiny.py", ...FAST, "--detach"], {
    cwd: dir,
    env: kaggleEnv({ KAGGLE_API_TOKEN: "KGAT_expired_token", KAGGLE_USERNAME: USER.username, KAGGLE_KEY: USER.key }).env,
  });
  assert.equal(fallback.code, 0, fallback.stderr);
  assert.match(fallback.stderr, /warning: Ignoring the Kaggle access token from KAGGLE_API_TOKEN: Kaggle says it is invalid or expired\./);
  assert.ok(!fallback.stderr.includes("KGAT_expired_token"));
  // A valid token wins over a key pair; a key pair over an OAuth login.
  const both = await runCli(["fit", "tiny.py", ...FAST, "--detach"], {
    cwd: dir,
    env: kaggleEnv({ KAGGLE_API_TOKEN: USER.token, KAGGLE_USERNAME: USER.username, KAGGLE_KEY: "wrong-key" }).env,
  });
  assert.equal(both.code, 0, both.stderr);
  const keyFirst = kaggleEnv({ KAGGLE_USERNAME: USER.username, KAGGLE_KEY: USER.key });
  writeSecret(path.join(keyFirst.env.HOME!, ".kaggle", "credentials.json"), JSON.stringify({ refresh_token: "KGRT_revoked" }));
  const before = server.requests.filter((r) => r.method === "GenerateAccessToken").length;
  assert.equal((await runCli(["fit", "tiny.py", ...FAST, "--detach"], { cwd: dir, env: keyFirst.env })).code, 0);
  assert.equal(server.requests.filter((r) => r.method === "GenerateAccessToken").length, before, "the key came first; the login was not touched");
  // A login Kaggle refuses: a warning that says to log in again, then no credentials.
  const revoked = kaggleEnv({ KAGGLE_ENABLE_OAUTH: "yes" });
  writeSecret(path.join(revoked.env.HOME!, ".kaggle", "credentials.json"), JSON.stringify({ refresh_token: "KGRT_revoked" }));
  const refused = await runCli(["fit", "tiny.py", ...FAST], { cwd: dir, env: revoked.env });
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /Kaggle refused the OAuth credentials in .*credentials\.json .*run `kaggle auth login` again/);

  const none = await runCli(["fit", "tiny.py", ...FAST], { cwd: dir, env: kaggleEnv({}).env });
  assert.equal(none.code, 1);
  assert.match(none.stderr, /error: No Kaggle credentials found .*\nhint: Create an API token at https:\/\/www\.kaggle\.com\/settings/);
  const wrong = await runCli(["fit", "tiny.py", ...FAST], { cwd: dir, env: kaggleEnv({ KAGGLE_USERNAME: USER.username, KAGGLE_KEY: "not-the-key-42" }).env });
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /Kaggle refused the credentials from KAGGLE_USERNAME and KAGGLE_KEY \(401 on SaveKernel\)/);
  assert.ok(!wrong.stderr.includes("not-the-key-42"), "the rejected key is not printed");
});

test(
  "Kaggle API test server: KAGGLE_ENABLE_OAUTH as the official CLI reads it: the OAuth login comes first with it (before a valid token and a key), and is never read without it",
  { timeout: 120_000 },
  async () => {
    const dir = project("oauth-order", { "tiny.py": "print(1)\n", "requirements.txt": "" });
    const loginFile = (home: string): string => path.join(home, ".kaggle", "credentials.json");
    const saveLogin = (home: string): void =>
      writeSecret(
        loginFile(home),
        JSON.stringify({
          refresh_token: USER.refreshToken,
          access_token: "KGAT_oauth_stale",
          access_token_expiration: new Date(Date.now() - 60_000).toISOString().replace("Z", "+00:00"),
          username: USER.username,
          scopes: [],
        }),
      );
    const refreshes = (): number => server.requests.filter((r) => r.method === "GenerateAccessToken").length;
    // With it (src/kaggle/__init__.py: "1", "true" or "yes"), the login wins over a valid token and a key pair: it is refreshed and used.
    const first = kaggleEnv({ KAGGLE_ENABLE_OAUTH: "1", KAGGLE_API_TOKEN: USER.token, KAGGLE_USERNAME: USER.username, KAGGLE_KEY: USER.key });
    saveLogin(first.env.HOME!);
    const before = refreshes();
    const used = await runCli(["fit", "tiny.py", ...FAST, "--detach"], { cwd: dir, env: first.env });
    assert.equal(used.code, 0, used.stderr);
    assert.equal(refreshes(), before + 1, "the login was refreshed: it came first");
    assert.match(JSON.parse(fs.readFileSync(loginFile(first.env.HOME!), "utf8")).access_token, /^KGAT_oauth_\d+$/);
    // Any other value, or none, and the login file is not read at all (the token is used, the file left as it was).
    for (const value of [undefined, "0", "TRUE"]) {
      const other = kaggleEnv({ KAGGLE_API_TOKEN: USER.token, ...(value === undefined ? {} : { KAGGLE_ENABLE_OAUTH: value }) });
      saveLogin(other.env.HOME!);
      const text = fs.readFileSync(loginFile(other.env.HOME!), "utf8");
      const mark = refreshes();
      const result = await runCli(["fit", "tiny.py", ...FAST, "--detach"], { cwd: dir, env: other.env });
      assert.equal(result.code, 0, `${value}: ${result.stderr}`);
      assert.equal(refreshes(), mark, `KAGGLE_ENABLE_OAUTH=${value}: the login was not used`);
      assert.equal(fs.readFileSync(loginFile(other.env.HOME!), "utf8"), text);
    }
    // A login alone without the variable is no credential, and the error says why.
    const alone = kaggleEnv({});
    saveLogin(alone.env.HOME!);
    const none = await runCli(["fit", "tiny.py", ...FAST], { cwd: dir, env: alone.env });
    assert.equal(none.code, 1);
    assert.match(none.stderr, /credentials\.json is read only with KAGGLE_ENABLE_OAUTH=1, as by the official CLI/);
  },
);

test("Kaggle API test server: attached datasets are found where Kaggle mounts them: by slug, owner-qualified on a clash, and under /kaggle/input/datasets/OWNER/SLUG", async () => {
  const dir = project("inputs", {
    "read.py":
      "import os\nfor name in ('a', 'b'):\n    print(name, open(os.path.join(os.environ['SM_CHANNEL_' + name.upper()], 'rows.csv')).read().strip(), flush=True)\n",
    "requirements.txt": "",
  });
  server.datasets.set("tester/rows", writeTree({ "rows.csv": "mine" }));
  server.datasets.set("someone/rows", writeTree({ "rows.csv": "theirs" }));
  server.datasets.set("tester/other", writeTree({ "rows.csv": "other" }));
  const { env } = kaggleEnv();
  try {
    // Two attached datasets called "rows": Kaggle mounts both at /kaggle/input/OWNER/rows.
    const clash = await runCli(["fit", "read.py", ...FAST, "--input.a=kaggle://tester/rows", "--input.b=kaggle://someone/rows"], { cwd: dir, env });
    assert.equal(clash.code, 0, clash.stderr);
    assert.match(clash.stderr, /a mine\n/);
    assert.match(clash.stderr, /b theirs\n/);
    server.mountStyle = "datasets";
    const qualified = await runCli(["fit", "read.py", ...FAST, "--input.a=kaggle://tester/rows", "--input.b=kaggle://tester/other"], { cwd: dir, env });
    assert.equal(qualified.code, 0, qualified.stderr);
    assert.match(qualified.stderr, /a mine\n/);
    assert.match(qualified.stderr, /b other\n/);
  } finally {
    server.mountStyle = "slug";
  }
});

test("Kaggle API test server: after a new version of a folder's code dataset, the kernel is pushed only once that version is current (READY alone may describe the previous one)", async () => {
  const folder = project("versioned", { "train.py": "print('code version 1', flush=True)\n", "requirements.txt": "" });
  const cwd = path.dirname(folder);
  const { env } = kaggleEnv();
  const first = await runCli(["fit", "versioned", "--entry", "train.py", ...FAST], { cwd, env });
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stderr, /code version 1/);
  fs.writeFileSync(path.join(folder, "train.py"), "print('code version 2', flush=True)\n");
  server.datasetVersionLagMs = 2500;
  try {
    const second = await runCli(["fit", "versioned", "--entry", "train.py", ...FAST], { cwd, env });
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stderr, /code version 2/, "the kernel ran the new code");
    assert.doesNotMatch(second.stderr, /code version 1/);
    const asked = server.requests.filter((r) => r.method === "GetDataset" && r.body.datasetSlug === "versioned-code");
    assert.ok(asked.length >= 2, "the version number was asked before and after the upload");
  } finally {
    server.datasetVersionLagMs = 0;
  }
});

test("Kaggle API test server: the test server holds the client to the published request shapes", async () => {
  const api = new KaggleApi({ kind: "token", token: USER.token, source: "test" }, server.url, 0);
  await assert.rejects(
    api.call("kernels.KernelsApiService", "GetKernelSessionStatus", { userName: "tester", kernelSlug: "x", kernelSlugs: "typo" }),
    /kernelSlugs: unknown field/,
  );
  await assert.rejects(
    api.call("kernels.KernelsApiService", "ListKernelSessionOutput", { userName: "tester", kernelSlug: "x", pageSize: "20" }),
    /pageSize: expected an integer/,
  );
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

test("Kaggle API test server: a SageMaker-style argparse script gets its hyperparameters as arguments on Kaggle too", async () => {
  const dir = project("sklearn", { "train.py": ARGPARSE_SCRIPT, "requirements.txt": "" });
  const { env } = kaggleEnv();
  const result = await runCli(["fit", "train.py", ...FAST, ...ARGPARSE_HYPERPARAMETERS, "--json"], { cwd: dir, env });
  assert.equal(result.code, 0, result.stderr);
  const job = JSON.parse(result.stdout);
  const fetched = await runCli(["fetch", job.name, "--to", "m"], { cwd: dir, env });
  assert.equal(fetched.code, 0, fetched.stderr);
  const seen = JSON.parse(fs.readFileSync(path.join(dir, "m", "seen.json"), "utf8"));
  assert.deepEqual(seen.argv, ARGPARSE_ARGV);
  assert.deepEqual({ ...seen.args, model_dir: undefined, train: undefined }, { ...ARGPARSE_EXPECTED, model_dir: undefined, train: undefined });
  assert.equal(seen.env["SM_HP_N-ESTIMATORS"], "7");
  assert.equal(JSON.parse(seen.env.SM_TRAINING_ENV).job_name, job.name);
});

test("Kaggle API test server: fit --dry-run makes no request at all and shows the SaveKernel request it would send", async () => {
  const dir = copyExample("iris");
  const { env } = kaggleEnv({ KAGGLE_USERNAME: USER.username, KAGGLE_KEY: "never-sent-key" });
  const before = server.requests.length;
  const result = await runCli(["fit", "train.py", ...FAST, "--hyperparameter.C=0.5", "--dry-run", "--json"], { cwd: dir, env });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(server.requests.length, before, "Kaggle was not asked anything");
  const plan = JSON.parse(result.stdout);
  assert.equal(plan.backend, "kaggle");
  assert.deepEqual(plan.files, ["train.py"]);
  assert.deepEqual(
    plan.requests.map((r: { operation: string }) => r.operation),
    ["SaveKernel"],
  );
  assert.equal(plan.requests[0].request.slug, `${USER.username}/iris-train`);
  assert.doesNotMatch(result.stdout + result.stderr, /never-sent-key/);
});

test("Kaggle API test server: the dry run of a folder lists what ships, and no secret file", async () => {
  const dir = project("secretive", {
    "train.py": "import helper\n",
    "helper.py": "x = 1\n",
    ".env": "HF_TOKEN=hf_canary\n",
    "kaggle.json": '{"username": "me", "key": "canary"}\n',
    ".ssh/id_rsa": "-----BEGIN RSA PRIVATE KEY-----\nx\n-----END RSA PRIVATE KEY-----\n",
    "credentials.json": "{}\n",
  });
  const { env } = kaggleEnv({ KAGGLE_USERNAME: USER.username, KAGGLE_KEY: USER.key });
  const result = await runCli(["fit", ".", "--entry", "train.py", ...FAST, "--dry-run", "--json"], { cwd: dir, env });
  assert.equal(result.code, 0, result.stderr);
  const plan = JSON.parse(result.stdout);
  assert.deepEqual(plan.files, ["helper.py", "train.py"]);
  assert.deepEqual(
    plan.requests.map((r: { operation: string }) => r.operation),
    ["CreateDataset", "SaveKernel"],
  );
  assert.match(result.stderr, /Not shipping \.env:/);
});
