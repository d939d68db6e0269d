"""Kaggle Kernels. The runtime runs inside the kernel itself (a notebook's cells must run in its own kernel), from the
preamble alekseylearn puts first (kaggle_bootstrap.py): /opt/ml/model and /opt/ml/output lead into /kaggle/working,
which Kaggle keeps as the kernel's output; attached datasets are found under /kaggle/input and laid out as channels;
requirements are installed when the kernel has internet; the code (inline, or from the attached code dataset) runs
unchanged. Sources: github:Kaggle/docker-python (/kaggle/input, /kaggle/working), kaggle.com/docs/notebooks."""

import json
import os
import subprocess
import sys
import tarfile
import tempfile

from .. import contract
from .. import job as jobs
from . import base as roots
from .base import Platform

WORKING = "working"


class KagglePlatform(Platform):
    name = "kaggle"

    def __init__(self, job, environ, base=None, code=None):
        super().__init__(job, environ, base)
        self.code = code or os.getcwd()

    def owns_roots(self):
        return False  # /kaggle is Kaggle's own; /gcs is made below only where the kernel may make it

    def code_dir(self):
        return self.code

    def contract_variables(self, hosts, current):
        folders = self.vertex_folders()
        for _, folder in folders.values():
            os.makedirs(folder, exist_ok=True)
        owns_gcs = not self.dry and make_root(self.gcs)
        if owns_gcs:
            contract.gcs_links(self.gcs, self.job.name, folders)
        variables = contract.vertex_variables(self.job.name, folders, owns_gcs)
        spec = contract.cluster_spec(hosts, current)
        variables["CLUSTER_SPEC"] = json.dumps(spec)
        variables["TF_CONFIG"] = json.dumps(contract.tf_config(spec))
        return variables


def make_root(path):
    """True when `path` is (now) an empty folder of this kernel's own: made here, never taken over when it holds anything."""
    try:
        os.makedirs(path, exist_ok=True)
        return not os.listdir(path) or os.path.isdir(os.path.join(path, contract.LOCAL_BUCKET))
    except OSError:
        return False


def attached(kaggle, ref):
    """Where Kaggle mounts an attached dataset OWNER/SLUG, most specific first: /kaggle/input/datasets/OWNER/SLUG
    (owner-qualified, reported since 2026), /kaggle/input/OWNER/SLUG (when two attached inputs share a slug),
    /kaggle/input/SLUG. Looked up directly: walking every input is slow on image datasets and can find a same-named folder
    inside another input."""
    owner, _, name = ref.rpartition("/")
    candidates = [os.path.join(kaggle, "input", "datasets", owner, name), os.path.join(kaggle, "input", owner, name)] if owner else []
    for candidate in [*candidates, os.path.join(kaggle, "input", name)]:
        if os.path.isdir(candidate):
            return candidate
    return None


def ml_root(work, preferred=None):
    """/opt/ml with model and output leading into /kaggle/working; a private folder where /opt/ml cannot be made."""
    for choice in (preferred or roots.ML_ROOT, None):
        root = choice or tempfile.mkdtemp(prefix="opt-ml-")
        try:
            for sub in ("input/data", "input/config"):
                os.makedirs(os.path.join(root, sub), exist_ok=True)
            for name in ("model", "output"):
                if not os.path.lexists(os.path.join(root, name)):
                    os.symlink(os.path.join(work, name), os.path.join(root, name))
            return root
        except OSError:
            continue
    raise OSError("no folder for /opt/ml")


def fetch_code(spec, kaggle):
    """The job's code in a folder of its own: the attached code dataset unpacked, or the inline entry written out."""
    code = tempfile.mkdtemp(prefix="code-")
    if spec.get("codeDataset"):
        folder = attached(kaggle, spec["codeDataset"])
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
    if spec.get("source") is not None:
        target = os.path.join(code, spec["entry"])
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w") as handle:
            handle.write(spec["source"])
    return code


def install_requirements(spec):
    if not spec.get("requirements"):
        return
    if not spec.get("internet"):
        print("[alekseylearn] warning: the kernel has no internet, so requirements.txt was not installed", file=sys.stderr, flush=True)
        return
    requirements = os.path.join(tempfile.mkdtemp(), "requirements.txt")
    with open(requirements, "w") as handle:
        handle.write(spec["requirements"])
    print("[alekseylearn] installing requirements.txt", file=sys.stderr, flush=True)
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", "-r", requirements])


def setup(spec, kaggle=None):
    """Lay out the contracts in this kernel and prepare the entry to run here; returns the script's path (None for a notebook,
    whose own cells follow). `spec` is what the preamble carries: the program, job name, hyperparameters as typed,
    channel → attached dataset, requirements, internet, the inline entry or the code dataset. The roots (/kaggle, /opt/ml,
    /gcs) are base's, read when called, as every adapter reads them."""
    kaggle = kaggle or roots.KAGGLE_ROOT
    work = os.path.join(kaggle, WORKING)
    for sub in ("model", "output/data"):
        os.makedirs(os.path.join(work, sub), exist_ok=True)
    root = ml_root(work)
    channels = {}
    for channel, slug in spec.get("channels", {}).items():
        found = attached(kaggle, slug)
        if found is None:
            print("[alekseylearn] input %s: dataset %s is not attached at %s/input" % (channel, slug, kaggle), file=sys.stderr, flush=True)
        else:
            channels[channel] = found
    install_requirements(spec)
    code = fetch_code(spec, kaggle)
    environ = {
        jobs.ENTRY: spec["program"],
        jobs.KIND: "script" if spec.get("entry") else "notebook",
        jobs.INPUTS: json.dumps(channels),
        jobs.HYPERPARAMETER_ARGS: "true" if spec.get("args", True) else "false",
        jobs.HYPERPARAMETER_FORMAT: spec.get("format") or "toolkit",
        "TRAINING_JOB_NAME": spec.get("jobName") or "kernel",
    }
    argv = [item for key, value in sorted(spec.get("hyperparameters", {}).items()) for item in ("--" + key, value)]
    platform = KagglePlatform(jobs.Job(environ, argv), os.environ, root, code)
    env, args = jobs.prepare(platform)
    os.environ.update(env)
    os.chdir(code)
    entry = spec.get("entry")
    # As `python path/to/entry.py --KEY VALUE` does: the entry's own folder comes first on sys.path, and argparse sees the hyperparameters.
    sys.path.insert(0, os.path.dirname(os.path.join(code, entry)) if entry else code)
    if entry:
        sys.argv = [os.path.join(code, entry), *args]
        return os.path.join(code, entry)
    return None
