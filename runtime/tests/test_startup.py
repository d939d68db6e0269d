"""The job's init reaches its script's start without importing what it does not need there: every local run waits on that
start-up (json alone, with re, enum, functools and collections, is ~10 ms of it). Checked by the modules loaded when the
init is about to start the script, in a fresh Python started as alekseylearn starts it (`python -S`); no timing."""

import json
import subprocess
import sys

from .helpers import ENTRYPOINT, RUNTIME, write

#: Modules the start path does without (threading comes once the script runs; re, shutil, subprocess where they are used).
HEAVY = ["json", "re", "enum", "functools", "collections", "importlib", "subprocess", "threading", "shutil", "signal"]

#: Runs the init's `train` up to the script's start, then prints the script's command (after the interpreter) and which of
#: the modules in argv[2] are loaded, as JSON (imported only then), and stops.
PROBE = """import os, sys
sys.path.insert(0, sys.argv[1])
from alekseylearn_runtime import job, process

def start(command, env):
    loaded = [name for name in sys.argv[2].split(",") if name in sys.modules]
    import json
    os.write(1, json.dumps([command[1:], loaded]).encode())
    os._exit(0)

process.start = start
sys.exit(job.main(sys.argv[3:]))
"""


def modules_at_start(tmp_path, modules, extra_env=None, argv=()):
    """(the script's command after the interpreter, which of `modules` the init had loaded when it was about to start it)."""
    write(tmp_path / "code" / "train.py", "print('hi')\n")
    env = {
        "PATH": "/usr/bin:/bin",
        "ALEKSEYLEARN_ENTRY": "train.py",
        "ALEKSEYLEARN_KIND": "script",
        "ALEKSEYLEARN_PLATFORM": "local",
        "ALEKSEYLEARN_SUPERVISED": "1",
        "TRAINING_JOB_NAME": "j",
        "SAGEMAKER_BASE_DIR": str(tmp_path / "ml"),
        **(extra_env or {}),
    }
    command = [sys.executable, "-S", "-c", PROBE, str(RUNTIME), ",".join(modules), "train", *argv]
    done = subprocess.run(command, cwd=tmp_path / "code", env=env, capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout)


def test_a_plain_local_script_starts_without_the_heavy_modules(tmp_path):
    command, loaded = modules_at_start(tmp_path, HEAVY)
    assert command == ["-u", "train.py"]
    assert loaded == []


def test_hyperparameters_and_channels_are_read_without_them_too(tmp_path):
    data = write(tmp_path / "data" / "a.csv", "1\n").parent
    inputs = {"ALEKSEYLEARN_INPUTS": json.dumps({"train": str(data)})}
    command, loaded = modules_at_start(tmp_path, HEAVY, inputs, ["--lr", "0.1", "--optimizer", "adam", "--layers", "[1,2]"])
    assert command == ["-u", "train.py", "--layers", "[1, 2]", "--lr", "0.1", "--optimizer", "adam"]
    assert loaded == []
    config = json.loads((tmp_path / "ml" / "input" / "config" / "inputdataconfig.json").read_text())
    assert sorted(config) == ["train"]


def test_the_probe_sees_a_module_that_is_loaded(tmp_path):
    # The check can fail: modules the init does load at its start are reported.
    _, loaded = modules_at_start(tmp_path, ["os", "alekseylearn_runtime.jsontext", "json"])
    assert loaded == ["os", "alekseylearn_runtime.jsontext"]


def test_modules_python_imported_before_the_entrypoint_are_kept_compiled_in_its_prefix(tmp_path):
    # Under PYTHONDONTWRITEBYTECODE, what Python imports before the entrypoint runs (encodings) is compiled from source and,
    # with -X pycache_prefix, looked for nowhere but the prefix: the entrypoint writes it there once for the later starts.
    write(tmp_path / "code" / "train.py", "print('hi')\n")
    prefix = tmp_path / "pyc"
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONDONTWRITEBYTECODE": "1",
        "ALEKSEYLEARN_ENTRY": "train.py",
        "ALEKSEYLEARN_PLATFORM": "local",
        "SAGEMAKER_BASE_DIR": str(tmp_path / "ml"),
    }
    python = [sys.executable, "-S", "-X", "pycache_prefix=%s" % prefix]
    cached = (
        "import os, sys; spec = sys.modules['encodings'].__spec__; print(spec.cached.startswith(sys.argv[1]), os.path.exists(spec.cached))"
    )
    before = subprocess.run([*python, "-c", cached, str(prefix)], env=env, capture_output=True, text=True, check=True)
    assert before.stdout.split() == ["True", "False"]
    subprocess.run([*python, str(ENTRYPOINT), "preview"], cwd=tmp_path / "code", env=env, capture_output=True, check=True, timeout=60)
    after = subprocess.run([*python, "-c", cached, str(prefix)], env=env, capture_output=True, text=True, check=True)
    assert after.stdout.split() == ["True", "True"]
