"""Helpers the tests share: where the runtime is, adapters with every root under tmp_path, files."""

import sys
from pathlib import Path

RUNTIME = Path(__file__).resolve().parents[1]
ENTRYPOINT = RUNTIME / "alekseylearn_entrypoint.py"
WITH_ROOTS = Path(__file__).resolve().parent / "with_roots.py"

if str(RUNTIME) not in sys.path:
    sys.path.insert(0, str(RUNTIME))

from alekseylearn_runtime import job as jobs  # noqa: E402


def make_platform(cls, roots, environ, argv=()):
    """An adapter for the job `environ` and `argv` describe, with every root under tmp_path."""
    environ = dict(environ)
    platform = cls(jobs.Job(environ, list(argv)), environ, str(roots.ml))
    platform.gcs = str(roots.gcs)
    platform.kaggle = str(roots.kaggle)
    if hasattr(platform, "hosts_file"):
        platform.hosts_file = str(roots.hosts)
    return platform


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
