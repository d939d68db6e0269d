"""A plain script runs in a fork of the init's interpreter (process.fork_script), not in a second one: it must not be
able to tell. Each test runs the same script through the entrypoint (as a job runs it) and directly with `python -u`,
and compares what the script sees and how it ends (Python's own start-up: docs.python.org/3/using/cmdline.html, sys.path
and __main__ for `python script.py`; docs.python.org/3/library/sys.html#sys.exit for how SystemExit ends it)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from .helpers import SIGINT_IGNORED, WITH_ROOTS, write

LOCAL = {"ALEKSEYLEARN_ENTRY": "train.py", "ALEKSEYLEARN_PLATFORM": "local", "ALEKSEYLEARN_SANDBOXED": "1"}

PROBE = """import json, os, signal, sys
seen = {
    "argv": sys.argv,
    "orig_argv": getattr(sys, "orig_argv", None),
    "path": sys.path,
    "main": [__name__, __file__, __spec__, __package__, __cached__, sorted(globals())],
    "loader": [type(__loader__).__name__, __loader__.name, __loader__.path],
    "main_module": sys.modules["__main__"].__dict__ is globals(),
    "flags": list(sys.flags),
    "pycache_prefix": sys.pycache_prefix,
    "xoptions": sys._xoptions,
    "dont_write_bytecode": sys.dont_write_bytecode,
    "signals": {s.name: repr(signal.getsignal(s)) for s in signal.Signals if s not in (signal.SIGKILL, signal.SIGSTOP)},
    "fds": sorted(int(fd) for fd in os.listdir("/proc/self/fd")),
    "runtime": sorted(name for name in sys.modules if name.startswith("alekseylearn")),
}
print(json.dumps(seen))
"""


def direct(code, args=(), ignore_sigint=False):
    """The script run as `python -u train.py ARGS` in `code`, with the environment the harness gives the init."""
    child_env = {"PATH": os.environ.get("PATH", ""), "PYTHONDONTWRITEBYTECODE": "1"}
    command = [*(SIGINT_IGNORED if ignore_sigint else []), sys.executable, "-u", "train.py", *args]
    return subprocess.run(command, cwd=str(code), env=child_env, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("ignore_sigint", [False, True], ids=["plain", "sigint-ignored"])
def test_the_script_sees_the_interpreter_as_python_u_script_gives_it(tmp_path, roots, entrypoint, ignore_sigint):
    code = tmp_path / "code"
    write(code / "train.py", PROBE)
    job = entrypoint(["train", "--epochs", "3"], LOCAL, code, ignore_sigint=ignore_sigint)
    assert job.returncode == 0, job.stderr
    itself = direct(code, ["--epochs", "3"], ignore_sigint=ignore_sigint)
    assert itself.returncode == 0, itself.stderr
    seen, expected = json.loads(job.stdout), json.loads(itself.stdout)
    assert seen == expected
    assert seen["path"][0] == str(code)
    assert seen["runtime"] == []
    assert seen["fds"][:3] == [0, 1, 2] and len(seen["fds"]) == 4, "0, 1, 2 and listdir's own"


def test_a_notebook_and_torchrun_are_started_as_commands_of_their_own():
    import types

    from alekseylearn_runtime import job as jobs

    assert not jobs.runs_in_process(types.SimpleNamespace(kind="notebook", distribution="none"))
    assert not jobs.runs_in_process(types.SimpleNamespace(kind="script", distribution="torchrun"))


def test_the_script_runs_in_the_inits_own_process(tmp_path, roots, entrypoint):
    code = tmp_path / "code"
    # A fork shows the init's command line (/proc/PID/cmdline) where a started command shows its own.
    write(code / "train.py", "import json\nprint(json.dumps(open('/proc/self/cmdline').read().split(chr(0))))\n")
    job = entrypoint(["train"], LOCAL, code)
    assert job.returncode == 0, job.stderr
    assert str(WITH_ROOTS) in json.loads(job.stdout)


def test_the_scripts_variables_reach_c_code_and_the_runtimes_own_do_not(tmp_path, roots, entrypoint):
    code = tmp_path / "code"
    script = "import ctypes, os\nlibc = ctypes.CDLL(None)\nlibc.getenv.restype = ctypes.c_char_p\n"
    script += "print([libc.getenv(name.encode()) is not None for name in ('SM_MODEL_DIR', 'ALEKSEYLEARN_SANDBOXED')])\n"
    write(code / "train.py", script)
    job = entrypoint(["train"], LOCAL, code)
    assert job.returncode == 0, job.stderr
    assert job.stdout.strip() == "[True, False]"


def test_an_uncaught_exception_is_printed_from_the_scripts_frame_on(tmp_path, roots, entrypoint):
    code = tmp_path / "code"
    write(code / "train.py", "def load():\n    raise ValueError('bad value')\n\n\nload()\n")
    job = entrypoint(["train"], LOCAL, code)
    itself = direct(code)
    assert (job.returncode, itself.returncode) == (1, 1)
    assert itself.stderr.startswith("Traceback (most recent call last):\n")
    assert itself.stderr in job.stderr, job.stderr
    assert "alekseylearn_runtime" not in job.stderr
    assert (roots.ml / "output" / "failure").read_text() == "ValueError: bad value\n"


def test_a_syntax_error_is_printed_as_python_prints_it(tmp_path, roots, entrypoint):
    code = tmp_path / "code"
    write(code / "train.py", "x = (\n")
    job = entrypoint(["train"], LOCAL, code)
    itself = direct(code)
    assert (job.returncode, itself.returncode) == (1, 1)
    assert itself.stderr in job.stderr, job.stderr
    assert "Traceback" not in job.stderr


def test_sys_exit_ends_the_job_as_it_ends_python(tmp_path, roots, entrypoint):
    code = tmp_path / "code"
    for script, status in (("import sys\nsys.exit('stopped early')\n", 1), ("import sys\nsys.exit(3)\n", 3)):
        write(code / "train.py", script)
        job = entrypoint(["train"], LOCAL, code)
        itself = direct(code)
        assert (job.returncode, itself.returncode) == (status, status)
        assert itself.stderr in job.stderr


def test_keyboard_interrupt_ends_the_script_by_sigint_as_python_does(tmp_path, roots, entrypoint):
    code = tmp_path / "code"
    write(code / "train.py", "def train():\n    raise KeyboardInterrupt\n\n\ntrain()\n")
    job = entrypoint(["train"], LOCAL, code)
    itself = direct(code)
    assert itself.returncode == -signal.SIGINT
    assert job.returncode == 128 + signal.SIGINT, "the init tells a script ended by signal N as 128+N"
    assert itself.stderr in job.stderr, job.stderr


def test_the_script_ends_with_pythons_finalization(tmp_path, roots, entrypoint):
    # An unclosed file is flushed, a non-daemon thread is waited for (it writes once the main thread has ended), atexit runs.
    script = (
        "import atexit, threading\n"
        "unclosed = open('unclosed.txt', 'w')\n"
        "unclosed.write('kept')\n"
        "def after_main():\n"
        "    threading.main_thread().join()\n"
        "    open('thread.txt', 'w').write('waited for')\n"
        "threading.Thread(target=after_main).start()\n"
        "atexit.register(lambda: open('atexit.txt', 'w').write('ran'))\n"
    )
    code = tmp_path / "code"
    write(code / "train.py", script)
    job = entrypoint(["train"], LOCAL, code)
    assert job.returncode == 0, job.stderr
    assert (code / "unclosed.txt").read_text() == "kept"
    assert (code / "thread.txt").read_text() == "waited for"
    assert (code / "atexit.txt").read_text() == "ran"


def test_multiprocessing_spawn_runs_a_function_defined_in_the_script(tmp_path, roots, entrypoint):
    script = (
        "import multiprocessing\n"
        "def square(x):\n"
        "    return x * x\n"
        "if __name__ == '__main__':\n"
        "    with multiprocessing.get_context('spawn').Pool(1) as pool:\n"
        "        print(pool.map(square, [1, 2, 3]))\n"
    )
    code = tmp_path / "code"
    write(code / "train.py", script)
    job = entrypoint(["train"], LOCAL, code)
    assert job.returncode == 0, job.stderr
    assert job.stdout.strip() == "[1, 4, 9]"


def test_sigterm_to_the_init_reaches_the_script(tmp_path, roots, entrypoint):
    script = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: (open('stopped', 'w').write('saved'), sys.exit(0)))\n"
        "open('ready', 'w').close()\n"
        "while True:\n"
        "    time.sleep(0.05)\n"
    )
    code = tmp_path / "code"
    write(code / "train.py", script)
    init = entrypoint(["train"], LOCAL, code, wait=False)
    try:
        deadline = time.monotonic() + 60
        while not (code / "ready").exists() and init.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert (code / "ready").exists(), init.communicate()[1]
        init.send_signal(signal.SIGTERM)
        _, errors = init.communicate(timeout=30)
    finally:
        init.kill()
    assert init.returncode == 0, errors
    assert (code / "stopped").read_text() == "saved"
