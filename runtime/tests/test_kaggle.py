"""Kaggle Kernels: the runtime runs inside the kernel from its first cell (kaggle_bootstrap.py). Attached datasets are under
/kaggle/input and /kaggle/working is what Kaggle keeps (github:Kaggle/docker-python; kaggle.com/docs/notebooks). Here the
roots (/kaggle, /opt/ml, /gcs) are folders under tmp_path."""

import base64
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import zlib

import pytest

from alekseylearn_runtime.platforms import kaggle

from .helpers import RUNTIME, write

PACKAGE = RUNTIME / "alekseylearn_runtime"
ROOTS_LINE = 'ML_ROOT, GCS_ROOT, KAGGLE_ROOT = "/opt/ml", "/gcs", "/kaggle"'


def spec(**more):
    """What alekseylearn puts in the first cell (src/package/runtime.ts KaggleSetup)."""
    return {
        "program": "train.py",
        "jobName": "k",
        "hyperparameters": {"lr": "0.10", "epochs": "3"},
        "channels": {},
        "requirements": None,
        "internet": False,
        "args": True,
        "format": "toolkit",
        "entry": "train.py",
        "source": "print('hello')\n",
        "codeDataset": None,
        **more,
    }


@pytest.fixture
def kernel(roots, tmp_path, monkeypatch):
    """setup() changes the process as a kernel's first cell must (variables, working folder, sys.path, sys.argv): all of
    it is put back after the test. tempfile's folders go under tmp_path."""
    saved = dict(os.environ)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    monkeypatch.setattr(sys, "path", list(sys.path))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    yield roots
    os.environ.clear()
    os.environ.update(saved)


def test_an_attached_dataset_is_found_owner_qualified_first(tmp_path):
    root = tmp_path / "kaggle"
    for folder in ("input/datasets/alice/cifar", "input/alice/cifar", "input/cifar"):
        (root / folder).mkdir(parents=True)
    assert kaggle.attached(str(root), "alice/cifar") == str(root / "input" / "datasets" / "alice" / "cifar")


def test_an_attached_dataset_is_found_under_owner_slug_before_slug(tmp_path):
    root = tmp_path / "kaggle"
    for folder in ("input/alice/cifar", "input/cifar"):
        (root / folder).mkdir(parents=True)
    assert kaggle.attached(str(root), "alice/cifar") == str(root / "input" / "alice" / "cifar")


def test_an_attached_dataset_is_found_under_its_slug_alone(tmp_path):
    root = tmp_path / "kaggle"
    (root / "input" / "cifar").mkdir(parents=True)
    assert kaggle.attached(str(root), "alice/cifar") == str(root / "input" / "cifar")
    assert kaggle.attached(str(root), "bob/mnist") is None


def test_setup_writes_the_inline_entry_and_returns_its_path(kernel):
    entry = kaggle.setup(spec())
    assert os.path.basename(entry) == "train.py"
    with open(entry) as handle:
        assert handle.read() == "print('hello')\n"
    assert os.getcwd() == os.path.dirname(entry)
    assert sys.argv == [entry, "--epochs", "3", "--lr", "0.1"], "argparse sees the hyperparameters as the toolkit passes them"


def test_setup_lays_attached_datasets_out_as_channels(kernel):
    write(kernel.kaggle / "input" / "datasets" / "alice" / "cifar" / "a.csv", "1\n")
    kaggle.setup(spec(channels={"train": "alice/cifar"}))
    assert os.environ["SM_CHANNEL_TRAIN"] == str(kernel.ml / "input" / "data" / "train")
    assert os.listdir(os.environ["SM_CHANNEL_TRAIN"]) == ["a.csv"]


def test_setup_leads_opt_ml_model_into_kaggle_working(kernel):
    kaggle.setup(spec())
    assert os.environ["SM_MODEL_DIR"] == str(kernel.ml / "model")
    assert os.path.realpath(str(kernel.ml / "model")) == os.path.realpath(str(kernel.kaggle / "working" / "model"))
    assert os.path.realpath(str(kernel.ml / "output")) == os.path.realpath(str(kernel.kaggle / "working" / "output"))


def test_setup_makes_gcs_lead_to_the_jobs_folders_where_the_kernel_may(kernel):
    kaggle.setup(spec())
    assert os.environ["AIP_MODEL_DIR"] == "gs://alekseylearn-job/k/model/"
    assert os.path.realpath(str(kernel.gcs / "alekseylearn-job" / "k" / "model")) == os.path.realpath(str(kernel.ml / "model"))


def test_setup_leaves_a_gcs_that_holds_something_alone(kernel):
    write(kernel.gcs / "someone-else" / "file", "x")
    kaggle.setup(spec())
    assert os.environ["AIP_MODEL_DIR"] == str(kernel.ml / "model")
    assert os.listdir(kernel.gcs) == ["someone-else"]


def test_setup_reports_a_dataset_that_is_not_attached(kernel, capsys):
    kaggle.setup(spec(channels={"train": "alice/missing"}))
    assert "dataset alice/missing is not attached" in capsys.readouterr().err
    assert json.loads(os.environ["SM_CHANNELS"]) == []


def test_setup_for_a_notebook_returns_no_entry(kernel):
    assert kaggle.setup(spec(entry=None, source=None, program="train.ipynb")) is None
    assert os.environ["SM_USER_ENTRY_POINT"] == "train.ipynb"


def code_archive(files):
    """code.tar.gz's bytes, as alekseylearn packs the code dataset."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_setup_unpacks_the_attached_code_dataset(kernel):
    archive = kernel.kaggle / "input" / "alice" / "job-code" / "code.tar.gz"
    archive.parent.mkdir(parents=True)
    archive.write_bytes(code_archive({"src/train.py": "import helper\n", "src/helper.py": ""}))
    entry = kaggle.setup(spec(entry="src/train.py", program="src/train.py", source=None, codeDataset="alice/job-code"))
    assert sorted(os.listdir(os.path.dirname(entry))) == ["helper.py", "train.py"]
    assert sys.path[0] == os.path.dirname(entry), "the entry's own folder comes first, as `python src/train.py` has it"


def test_the_bootstrap_cell_runs_the_entry_with_the_contract_laid_out(tmp_path):
    """kaggle_bootstrap.py as src/package/runtime.ts kaggleBootstrap makes it: "ALEKSEYLEARN_PAYLOAD" replaced by base64 zlib-deflated JSON
    holding the setup fields and "runtime" (each .py of the package by its path). The payload's base.py has its roots
    moved under tmp_path, the one change from the files that ship."""
    root = tmp_path
    files = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        if path.name == "base.py" and path.parent.name == "platforms":
            assert ROOTS_LINE in text
            text = text.replace(
                ROOTS_LINE, "ML_ROOT, GCS_ROOT, KAGGLE_ROOT = %r, %r, %r" % (str(root / "ml"), str(root / "gcs"), str(root / "kaggle"))
            )
        files[str(path.relative_to(RUNTIME))] = text
    write(root / "kaggle" / "input" / "cifar" / "a.csv", "1\n")
    entry = (
        "import json, os, sys\n"
        "print(json.dumps({'name': __name__, 'argv': sys.argv[1:], 'train': os.listdir(os.environ['SM_CHANNEL_TRAIN']),"
        " 'model': os.environ['SM_MODEL_DIR'], 'cwd': os.getcwd()}))\n"
    )
    setup = spec(channels={"train": "alice/cifar"}, source=entry)
    payload = base64.b64encode(zlib.compress(json.dumps({**setup, "runtime": files}).encode())).decode()
    cell = (RUNTIME / "kaggle_bootstrap.py").read_text()
    assert cell.count('"ALEKSEYLEARN_PAYLOAD"') == 1
    write(root / "cell.py", cell.replace('"ALEKSEYLEARN_PAYLOAD"', json.dumps(payload)))
    (root / "tmp").mkdir()
    env = {"PATH": os.environ.get("PATH", ""), "TMPDIR": str(root / "tmp"), "PYTHONDONTWRITEBYTECODE": "1"}
    run = subprocess.run(
        [sys.executable, str(root / "cell.py")], cwd=str(root), env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen["name"] == "__main__"
    assert seen["argv"] == ["--epochs", "3", "--lr", "0.1"]
    assert seen["train"] == ["a.csv"]
    assert seen["model"] == str(root / "ml" / "model")
    assert seen["cwd"].startswith(str(root / "tmp"))
    assert os.path.islink(str(root / "ml" / "model"))
    assert (root / "kaggle" / "working" / "model").is_dir()
