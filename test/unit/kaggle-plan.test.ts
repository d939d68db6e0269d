/** The Kaggle request, planned from a spec without a network. */
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { buildSpecFor } from "../../src/jobs/spec.js";
import { kaggleBackend } from "../../src/backends/kaggle/index.js";
import { acceleratorFields, kernelName, saveKernelRequest } from "../../src/backends/kaggle/plan.js";
import { parseStatus } from "../../src/backends/kaggle/api.js";
import { LineAssembler, logLines } from "../../src/backends/kaggle/index.js";
import { outputDestination } from "../../src/backends/kaggle/outputs.js";
import { UserError } from "../../src/errors.js";
import { writeTree } from "../helpers/tree.js";
import { fileTimeLimit } from "../helpers/limit.js";

fileTimeLimit(3, import.meta.url);

function spec(
  config: Record<string, string> = {},
  inputs: Record<string, string> = {},
  files: Record<string, string> = { "iris/train.py": "print(1)\n", "iris/requirements.txt": "joblib\n" },
  artifact = "iris/train.py",
) {
  const root = writeTree(files);
  return buildSpecFor(kaggleBackend, { artifact: path.join(...artifact.split("/")), config, inputs }, root);
}

test("the kernel is named after the artifact's folder and file; slug and title agree", () => {
  assert.deepEqual(kernelName(spec()), { title: "iris train", slug: "iris-train", problems: [] });
  assert.deepEqual(kernelName(spec({ slug: "my-iris-run" })), { title: "my iris run", slug: "my-iris-run", problems: [] });
  assert.deepEqual(kernelName(spec({}, {}, { "ab/x.py": "" }, "ab/x.py")), { title: "ab x training", slug: "ab-x-training", problems: [] });
});

test("a slug that is not the slugified title, and a short title, are refused before anything is pushed", () => {
  assert.throws(
    () => spec({ title: "Iris Run", slug: "other" }),
    (err: unknown) => err instanceof UserError && /config\.slug "other" must equal the slugified title "iris-run"/.test(err.message),
  );
  assert.throws(() => spec({ title: "abc" }), /config\.title must be 5 to 50 characters/);
});

test("accelerators map to the SaveKernel hardware fields", () => {
  assert.deepEqual(acceleratorFields("none"), { enableGpu: false, enableTpu: false });
  assert.deepEqual(acceleratorFields("gpu"), { enableGpu: true, enableTpu: false });
  assert.deepEqual(acceleratorFields("tpu"), { enableGpu: false, enableTpu: true });
  assert.deepEqual(acceleratorFields("NvidiaTeslaT4"), { enableGpu: true, enableTpu: false, machineShape: "NvidiaTeslaT4" });
  assert.deepEqual(acceleratorFields("TpuV6E8"), { enableGpu: false, enableTpu: true, machineShape: "TpuV6E8" });
  assert.equal(acceleratorFields("a100"), undefined);
  assert.throws(() => spec({ accelerator: "a100" }), /config\.accelerator must be none, gpu, tpu or a machine shape/);
});

test("the backend says accelerator gpu or an Nvidia machine shape asks for a GPU; tpu and none do not", () => {
  assert.equal(kaggleBackend.wantsGpu(spec().settings), false, "the default: none");
  assert.equal(kaggleBackend.wantsGpu(spec({ accelerator: "gpu" }).settings), true);
  assert.equal(kaggleBackend.wantsGpu(spec({ accelerator: "NvidiaTeslaT4" }).settings), true);
  assert.equal(kaggleBackend.wantsGpu(spec({ accelerator: "tpu" }).settings), false);
  assert.equal(kaggleBackend.wantsGpu(spec({ accelerator: "TpuV6E8" }).settings), false);
});

test("the SaveKernel request: defaults, sources, inputs as attached datasets", () => {
  const request = saveKernelRequest(spec({ competition_sources: "titanic" }, { train: "kaggle://tester/iris-data" }), "tester", { text: "print(1)\n" });
  assert.equal(request.slug, "tester/iris-train");
  assert.equal(request.isPrivate, true);
  assert.equal(request.enableInternet, true);
  assert.deepEqual(request.datasetDataSources, ["tester/iris-data"]);
  assert.deepEqual(request.competitionDataSources, ["titanic"]);
  assert.equal(request.sessionTimeoutSeconds, undefined);
  assert.ok(!("dockerImagePinningType" in request));
});

test("what Kaggle cannot run is said at once: local inputs, environment.yml, several instances", () => {
  assert.throws(
    () => spec({ instance_count: "2" }, { train: "data" }, { "iris/train.py": "", "iris/environment.yml": "dependencies: [python]\n", "data/x": "" }),
    (err: unknown) =>
      err instanceof UserError &&
      err.details.length === 3 &&
      /runs on one machine/.test(err.details.join()) &&
      /cannot build an environment\.yml/.test(err.details.join()) &&
      /kaggle:\/\/OWNER\/DATASET/.test(err.details.join()),
  );
  assert.throws(() => spec({ output_path: "./out" }), /config\.output_path is not a setting of the kaggle backend/);
});

test("statuses in both API spellings, and the session log format", () => {
  assert.equal(parseStatus("COMPLETE"), "COMPLETE");
  assert.equal(parseStatus("complete"), "COMPLETE");
  assert.equal(parseStatus("KernelWorkerStatus.RUNNING"), "RUNNING");
  // kagglesdk's EnumSerializer decodes camelCase and prefixed names too (kaggle_object.py, `_from_str`).
  assert.equal(parseStatus("cancelAcknowledged"), "CANCEL_ACKNOWLEDGED");
  assert.equal(parseStatus("cancel_acknowledged"), "CANCEL_ACKNOWLEDGED");
  assert.equal(parseStatus("KERNEL_WORKER_STATUS_NEW_SCRIPT"), "NEW_SCRIPT");
  assert.equal(parseStatus("cancelled"), undefined);
  assert.deepEqual(
    logLines(
      JSON.stringify([
        { stream_name: "stdout", time: 0.1, data: "a\nb" },
        { stream_name: "stderr", time: 0.2, data: "c\n" },
      ]),
    ),
    ["a", "bc"],
  );
  assert.deepEqual(logLines("plain\ntext\n"), ["plain", "text"]);
});

test("output files land in the same layout as every backend's, and unsafe names are refused", () => {
  assert.equal(outputDestination("model/model.joblib"), "model.joblib");
  assert.equal(outputDestination("model/sub/w.bin"), "sub/w.bin");
  assert.equal(outputDestination("output/data/report.txt"), "output/report.txt");
  assert.equal(outputDestination("__notebook__.ipynb"), "output/__notebook__.ipynb");
  assert.equal(outputDestination("../escape"), undefined);
  assert.equal(outputDestination("/etc/passwd"), undefined);
});

test("log events (chunks of output) become whole lines, a line given once its end has come", () => {
  const lines = new LineAssembler();
  assert.deepEqual(lines.push({ data: "epoch 1" }), []);
  assert.deepEqual(lines.push({ data: " done\nepoch 2 done\nepo" }), ["epoch 1 done", "epoch 2 done"]);
  assert.deepEqual(lines.push({ stream_name: "stderr" }), []);
  assert.deepEqual(lines.flush(), ["epo"]);
  assert.deepEqual(lines.flush(), []);
});
