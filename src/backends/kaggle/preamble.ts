/**
 * The small Python preamble that makes the /opt/ml contract hold on Kaggle:
 * /opt/ml/model and /opt/ml/output lead into /kaggle/working (what Kaggle
 * keeps as output), hyperparameters and SM_* variables are where the contract
 * puts them, requirements are installed when the kernel has internet, and the
 * code (embedded, or from the attached code dataset) runs unchanged.
 */
import { contractConfigFiles } from "../../package/contract.js";
import { TOOLKIT_SOURCE } from "../../package/toolkit.js";
import type { ConfigValue } from "../../spec/values.js";

/** What the preamble needs to know, all of it plain data. */
export interface PreambleSpec {
  hyperparameters: Record<string, ConfigValue>;
  /** Channel name → dataset reference (OWNER/SLUG) attached to the kernel. */
  channels: Record<string, string>;
  /** requirements.txt content, when there is one. */
  requirements?: string;
  enableInternet: boolean;
  /** The entry's path within the code folder (a notebook's name), as SM_USER_ENTRY_POINT names it. */
  program: string;
  /** The job's name (TRAINING_JOB_NAME, the toolkit's job_name). */
  jobName?: string;
  /** Pass the hyperparameters to a script as command-line arguments, as SageMaker's toolkit does. */
  hyperparameterArgs: boolean;
  /** For scripts: the entry's path within the code folder, and its source when it is sent inline. */
  entry?: string;
  source?: string;
  /** The dataset slug holding code.tar.gz, when the artifact is a folder. */
  codeDataset?: string;
}

/** Python that sets up the contract; for a script it ends by running the entry with runpy, so its line numbers and __future__ imports stay its own. */
export function preamble(spec: PreambleSpec): string {
  const channels = Object.keys(spec.channels);
  const payload = {
    toolkit: TOOLKIT_SOURCE,
    program: spec.program,
    jobName: spec.jobName ?? null,
    args: spec.hyperparameterArgs,
    config: contractConfigFiles({ hyperparameters: spec.hyperparameters, channels }),
    channels: spec.channels,
    requirements: spec.requirements ?? null,
    internet: spec.enableInternet,
    entry: spec.entry ?? null,
    source: spec.source ?? null,
    codeDataset: spec.codeDataset ?? null,
  };
  const data = Buffer.from(JSON.stringify(payload)).toString("base64");
  return `# Added by alekseylearn: the /opt/ml contract on Kaggle, then the training code, unchanged.
def _alekseylearn_setup(payload):
    import base64, json, os, subprocess, sys, tarfile, tempfile
    spec = json.loads(base64.b64decode(payload))
    work = "/kaggle/working"
    for sub in ("model", "output/data"):
        os.makedirs(os.path.join(work, sub), exist_ok=True)
    root = "/opt/ml"
    try:
        os.makedirs(os.path.join(root, "input", "data"), exist_ok=True)
        os.makedirs(os.path.join(root, "input", "config"), exist_ok=True)
        for name in ("model", "output"):
            if not os.path.lexists(os.path.join(root, name)):
                os.symlink(os.path.join(work, name), os.path.join(root, name))
    except OSError:
        root = tempfile.mkdtemp(prefix="opt-ml-")
        os.makedirs(os.path.join(root, "input", "data"))
        os.makedirs(os.path.join(root, "input", "config"))
        os.symlink(os.path.join(work, "model"), os.path.join(root, "model"))
        os.symlink(os.path.join(work, "output"), os.path.join(root, "output"))
    for name, content in spec["config"].items():
        with open(os.path.join(root, "input", "config", name), "w") as handle:
            json.dump(content, handle)

    def attached(ref):
        # Where Kaggle mounts an attached dataset OWNER/SLUG, most specific first: /kaggle/input/datasets/OWNER/SLUG
        # (owner-qualified, reported since 2026), /kaggle/input/OWNER/SLUG (when two attached inputs share a slug),
        # /kaggle/input/SLUG. Looked up directly: walking every input is slow on image datasets and can find a
        # same-named folder inside another input.
        owner, _, name = ref.rpartition("/")
        candidates = [os.path.join("/kaggle/input", "datasets", owner, name), os.path.join("/kaggle/input", owner, name)] if owner else []
        for candidate in candidates + [os.path.join("/kaggle/input", name)]:
            if os.path.isdir(candidate):
                return candidate
        return None

    for channel, slug in spec["channels"].items():
        found = attached(slug)
        if found is None:
            print("[alekseylearn] input %s: dataset %s is not attached at /kaggle/input" % (channel, slug), file=sys.stderr, flush=True)
        elif not os.path.lexists(os.path.join(root, "input", "data", channel)):
            os.symlink(found, os.path.join(root, "input", "data", channel))

    if spec["requirements"]:
        if spec["internet"]:
            requirements = os.path.join(tempfile.mkdtemp(), "requirements.txt")
            with open(requirements, "w") as handle:
                handle.write(spec["requirements"])
            print("[alekseylearn] installing requirements.txt", file=sys.stderr, flush=True)
            subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", "-r", requirements])
        else:
            print("[alekseylearn] warning: the kernel has no internet, so requirements.txt was not installed", file=sys.stderr, flush=True)

    code = tempfile.mkdtemp(prefix="code-")
    if spec["codeDataset"]:
        folder = attached(spec["codeDataset"])
        archive = os.path.join(folder, "code.tar.gz") if folder else None
        if archive and os.path.exists(archive):
            with tarfile.open(archive) as bundle:
                try:
                    bundle.extractall(code, filter="data")
                except TypeError:  # a Python without extraction filters
                    bundle.extractall(code)
        elif folder:
            subprocess.check_call(["cp", "-a", folder + "/.", code])
        else:
            raise SystemExit("alekseylearn: the code dataset %s is not attached" % spec["codeDataset"])
    if spec["source"] is not None:
        os.makedirs(os.path.dirname(os.path.join(code, spec["entry"])), exist_ok=True)
        with open(os.path.join(code, spec["entry"]), "w") as handle:
            handle.write(spec["source"])
    # The SM_* variables and arguments, from the files above, by the same toolkit code as in every image.
    toolkit = {}
    exec(spec["toolkit"], toolkit)
    env, args = toolkit["training_environment"](root, code, spec["program"], spec["jobName"])
    os.environ.update(env)
    if spec["jobName"]:
        os.environ["TRAINING_JOB_NAME"] = spec["jobName"]
    os.chdir(code)
    # As \`python path/to/entry.py --KEY VALUE\` does: the entry's own folder comes first on sys.path, and argparse sees the hyperparameters.
    sys.path.insert(0, os.path.dirname(os.path.join(code, spec["entry"])) if spec["entry"] else code)
    if spec["entry"]:
        sys.argv = [os.path.join(code, spec["entry"])] + (args if spec["args"] else [])
    return spec["entry"]


_alekseylearn_entry = _alekseylearn_setup("${data}")
`;
}

/** A script kernel's text: the preamble, then the entry run as __main__. */
export function scriptKernel(spec: PreambleSpec): string {
  return `${preamble(spec)}import runpy as _alekseylearn_runpy\n_alekseylearn_runpy.run_path(_alekseylearn_entry, run_name="__main__")\n`;
}

/** A notebook kernel's text: the user's notebook with its outputs stripped and the preamble as its first cell. */
export function notebookKernel(notebookJson: string, spec: PreambleSpec): string {
  const notebook = JSON.parse(notebookJson) as {
    cells?: Array<{ cell_type?: string; source?: string | string[]; outputs?: unknown[]; execution_count?: number | null }>;
  };
  const cells = (notebook.cells ?? []).map((cell) => {
    // Kaggle wants each cell's source as one string, and the outputs of a previous run stripped.
    const source = Array.isArray(cell.source) ? cell.source.join("") : (cell.source ?? "");
    return cell.cell_type === "code" ? { ...cell, source, outputs: [], execution_count: null } : { ...cell, source };
  });
  const first = { cell_type: "code", metadata: { tags: ["alekseylearn-preamble"] }, execution_count: null, outputs: [], source: preamble(spec) };
  return JSON.stringify({ ...notebook, cells: [first, ...cells] });
}
