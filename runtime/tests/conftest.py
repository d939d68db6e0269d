"""Shared fixtures. Every test works under its own tmp_path: the contracts' roots (/opt/ml, /gcs, /kaggle, /etc/hosts) are
folders there, so no test touches this machine's real ones and none needs the network."""

import json
import os
import subprocess
import sys
import types

import pytest

from alekseylearn_runtime.platforms import base

from .helpers import ENTRYPOINT, WITH_ROOTS


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
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    return run
