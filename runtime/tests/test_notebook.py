"""notebook.py, the headless notebook runner: a failed cell's reason is `cell N: Type: message`, without the terminal
colour codes IPython puts in its tracebacks. The full run needs nbclient and ipykernel, which `npm test` installs beside pytest."""

import json
import subprocess
import sys

from alekseylearn_runtime import notebook
from alekseylearn_runtime.notebook import cell_failure

from .helpers import write


def test_a_failed_cells_reason_names_the_cell_and_the_exception():
    assert cell_failure(3, "ValueError", "bad") == "cell 3: ValueError: bad"


def test_a_failed_cells_reason_has_no_terminal_colour_codes():
    assert cell_failure(3, "\x1b[0;31mValueError\x1b[0m", "\x1b[1mbad\x1b[0m\n") == "cell 3: ValueError: bad"


def test_a_failed_cells_reason_without_a_message_is_the_type_alone():
    assert cell_failure(1, "KeyboardInterrupt", "") == "cell 1: KeyboardInterrupt"
    assert cell_failure(2, None, None) == "cell 2: Error"


def code_cell(source):
    return {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": source}


def test_a_notebook_whose_third_cell_raises_fails_with_that_cell_named(tmp_path):
    cells = [
        code_cell("x = 1"),
        {"cell_type": "markdown", "metadata": {}, "source": "# a heading counts as a cell"},
        code_cell("raise ValueError('bad')"),
        code_cell("print('never')"),
    ]
    nb = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 4}
    source = write(tmp_path / "train.ipynb", json.dumps(nb))
    executed, failure = tmp_path / "out" / "train.ipynb", tmp_path / "failure"
    run = subprocess.run(
        [sys.executable, notebook.__file__, str(source), str(executed), str(failure)],
        cwd=str(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 1, run.stderr
    assert failure.read_text() == "cell 3: ValueError: bad\n"
    assert executed.exists(), "the executed copy is saved even when a cell fails"


def test_a_notebook_job_through_the_entrypoint_writes_the_cells_reason_and_keeps_the_executed_copy(tmp_path, roots, entrypoint):
    nb = {
        "cells": [code_cell("import os\nassert os.environ['SM_HP_LR'] == '0.1'"), code_cell("1 / 0")],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 4,
    }
    write(tmp_path / "code" / "train.ipynb", json.dumps(nb))
    env = {"ALEKSEYLEARN_ENTRY": "train.ipynb", "ALEKSEYLEARN_KIND": "notebook", "ALEKSEYLEARN_PLATFORM": "local"}
    run = entrypoint(["train", "--lr", "0.10"], env, tmp_path / "code", timeout=120)
    assert run.returncode == 1, run.stderr
    assert (roots.ml / "output" / "failure").read_text() == "cell 2: ZeroDivisionError: division by zero\n"
    assert (roots.ml / "output" / "data" / "train.ipynb").exists()


def test_the_runner_is_quiet_a_notebook_without_cell_ids_runs_without_jupyters_or_nbformats_warnings(tmp_path):
    # nbformat 4.5 made cell ids required: an older notebook saved as 4.5 without them gets MissingIDFieldWarning, and every
    # kernel started over local TCP gets jupyter_client's "Kernel is running over TCP without encryption" warning.
    nb = {"cells": [code_cell("print('trained')")], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    source = write(tmp_path / "train.ipynb", json.dumps(nb))
    executed, failure = tmp_path / "out" / "train.ipynb", tmp_path / "failure"
    run = subprocess.run(
        [sys.executable, notebook.__file__, str(source), str(executed), str(failure)],
        cwd=str(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "trained" in run.stdout + run.stderr
    assert "MissingIDFieldWarning" not in run.stderr
    assert "without encryption" not in run.stderr
    assert "Warning" not in run.stderr, run.stderr
