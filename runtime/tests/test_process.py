"""How the init starts the job's script (process.start, posix_spawn): as subprocess.Popen starts a child, which the init
used before (docs.python.org/3/library/subprocess.html: close_fds=True closes every descriptor but 0, 1 and 2;
restore_signals=True gives SIGPIPE, SIGXFZ and SIGXFSZ their default action back, Python having ignored them)."""

import os
import signal
import sys

from alekseylearn_runtime import process


def run(code, env=None):
    pid, errors = process.start([sys.executable, "-c", code], dict(os.environ, **(env or {})))
    text = errors.read()
    errors.close()
    return process.wait(pid), text


def test_the_scripts_stderr_reaches_the_init_and_its_exit_code_is_returned():
    code, text = run("import sys; sys.stderr.write('loading data\\nValueError: bad\\n'); sys.exit(3)")
    assert (code, text) == (3, "loading data\nValueError: bad\n")


def test_a_script_ended_by_a_signal_is_minus_the_signal():
    code, _ = run("import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    assert code == -signal.SIGKILL


def test_undecodable_bytes_on_stderr_are_replaced_not_fatal():
    _, text = run("import os; os.write(2, b'caf\\xe9\\n')")
    assert text == "caf\ufffd\n"


def test_the_script_inherits_no_descriptor_the_init_was_given():
    read, write = os.pipe()
    os.set_inheritable(write, True)  # as a descriptor the init's own parent handed it
    try:
        code, text = run("import os, sys; sys.stderr.write(' '.join(sorted(os.listdir('/dev/fd'), key=int)))")
    finally:
        os.close(read)
        os.close(write)
    assert code == 0
    # 0, 1 and 2, and the descriptor listdir itself has open; never the inherited pipe's.
    assert str(write) not in text.split()[:-1] and text.split()[:3] == ["0", "1", "2"]


def test_the_script_gets_sigpipe_back_at_its_default():
    # Python ignores SIGPIPE in itself (so a Python child would ignore it again): a shell shows what the init handed over.
    pid, errors = process.start(["/bin/sh", "-c", "grep SigIgn /proc/$$/status >&2"], dict(os.environ))
    text = errors.read()
    errors.close()
    assert process.wait(pid) == 0
    ignored = int(text.split()[1], 16)
    assert not ignored & (1 << (signal.SIGPIPE - 1))
