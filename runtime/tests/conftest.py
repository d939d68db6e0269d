"""Shared fixtures. Every test works under its own tmp_path: the contracts' roots (/opt/ml, /gcs, /kaggle, /etc/hosts) are
folders there, so no test touches this machine's real ones and none needs the network."""

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

RUNTIME = Path(__file__).resolve().parents[1]
ENTRYPOINT = RUNTIME / "alekseylearn_entrypoint.py"
WITH_ROOTS = Path(__file__).resolve().parent / "with_roots.py"

sys.path.insert(0, str(RUNTIME))

from alekseylearn_runtime import job as jobs  # noqa: E402
from alekseylearn_runtime.platforms import base  # noqa: E402


@pytest.fixture
def roots(tmp_path, monkeypatch):
    """The contracts' roots as folders under tmp_path (not made: a test sees whether the runtime made them). base's module
    globals point there too, for the code that reads them when it runs (platforms built in-process, kaggle.setup)."""
    found = types.SimpleNamespace(
        ml=tmp_path / "ml",
        gcs=tmp_path / "gcs",
        kaggle=tmp_path / "kaggle",
        hosts=tmp_path / "hosts",
    )
    monkeypatch.setattr(base, "ML_ROOT", str(found.ml))
    monkeypatch.setattr(base, "GCS_ROOT", str(found.gcs))
    monkeypatch.setattr(base, "KAGGLE_ROOT", str(found.kaggle))
    return found


def make_platform(cls, roots, environ, argv=()):
    """An adapter for the job `environ` and `argv` describe, with every root under tmp_path."""
    environ = dict(environ)
    platform = cls(jobs.Job(environ, list(argv)), environ, str(roots.ml))
    platform.gcs = str(roots.gcs)
    platform.kaggle = str(roots.kaggle)
    if hasattr(platform, "hosts_file"):
        platform.hosts_file = str(roots.hosts)
    return platform


@pytest.fixture
def entrypoint(roots):
    """Run alekseylearn_entrypoint.py as a job's image runs it, in a child Python, with the roots under tmp_path:
    entrypoint(args, env=..., cwd=..., gcs_mounted=False) → CompletedProcess (text)."""

    def run(args, env, cwd, gcs_mounted=False, timeout=60):
        settings = {
            "ml": str(roots.ml),
            "gcs": str(roots.gcs),
            "kaggle": str(roots.kaggle),
            "hosts": str(roots.hosts),
            "gcs_mounted": gcs_mounted,
            "entrypoint": str(ENTRYPOINT),
        }
        child_env = {"PATH": os.environ.get("PATH", ""), "PYTHONDONTWRITEBYTECODE": "1", "SAGEMAKER_BASE_DIR": str(roots.ml)}
        child_env.update(env)
        return subprocess.run(
            [sys.executable, str(WITH_ROOTS), json.dumps(settings), *args],
            cwd=str(cwd),
            env=child_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            universal_newlines=True,
            timeout=timeout,
            check=False,
        )

    return run


def write(path, text=""):
    """A file with `text`, its folders made; its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def listing(folder):
    """Every file under folder, relative and sorted (following links, as a script would see it)."""
    folder = Path(folder)
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
