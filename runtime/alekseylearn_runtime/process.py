"""The job's whole process tree is the job's: the runtime is its init (a child subreaper, or PID 1 of a container or
sandbox), SIGTERM reaches every process, and what the script leaves running when it ends is stopped too."""

import os
import time

try:
    import _signal as signal  # signal.py's import (enum, for its IntEnums) would cost every job's start-up: same numbers
except ImportError:  # pragma: no cover - CPython has it
    import signal


def start(command, env):
    """Start `command` (its first word an absolute path) with `env`, its stderr a pipe to this process: (pid, the pipe as text).

    posix_spawn rather than subprocess: subprocess's import (threading, selectors, locale) would cost every job's start-up
    before its script runs. As subprocess.Popen does, the child gets default SIGPIPE and SIGXFSZ (Python ignores them) and
    no descriptor but 0, 1 and 2 (Python opens its own close-on-exec; those this process was given are made so here)."""
    for name in os.listdir("/dev/fd"):
        if int(name) > 2:
            try:
                os.set_inheritable(int(name), False)
            except OSError:
                pass  # the descriptor listdir itself had open
    read, write = os.pipe()
    try:
        resets = [sig for sig in (getattr(signal, "SIGPIPE", None), getattr(signal, "SIGXFSZ", None)) if sig is not None]
        pid = os.posix_spawn(command[0], command, env, file_actions=[(os.POSIX_SPAWN_DUP2, write, 2)], setsigdef=resets)
    except BaseException:
        os.close(read)
        raise
    finally:
        os.close(write)
    return pid, os.fdopen(read, "r", errors="replace")


def wait(pid):
    """The exit status of child `pid` once it ends, as subprocess gives it: the code, or -N when signal N ended it."""
    status = os.waitpid(pid, 0)[1]
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def become_subreaper():
    """Orphans of the job (a helper whose parent exited) are re-parented here, not to the machine's init: none escapes."""
    if os.getpid() == 1:
        return  # PID 1 of a sandbox or container already gets every orphan (and ctypes costs its start-up a few ms)
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def descendants(alive_only=False, proc="/proc"):
    """Every process below this one, from the parent links in /proc (a PID namespace or container has its own)."""
    children = {}
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        try:
            with open(os.path.join(proc, entry, "stat")) as handle:
                stat = handle.read()
            fields = stat[stat.rindex(")") + 2 :].split()
        except (OSError, ValueError):
            continue
        if alive_only and fields[0] == "Z":
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [os.getpid()]
    while todo:
        for pid in children.get(todo.pop(), []):
            found.append(pid)
            todo.append(pid)
    return found


def signal_all(sig):
    for pid in descendants():
        try:
            os.kill(pid, sig)
        except OSError:
            pass


def has_children():
    """Whether this process still has a child, reaping those that have ended. Without children it has no descendants: what
    the script left running is re-parented here (this is its subreaper or PID 1) before the script's own end is seen."""
    while True:
        try:
            pid = os.waitpid(-1, os.WNOHANG)[0]
        except ChildProcessError:
            return False
        if pid == 0:
            return True


def end_leftovers(grace=2.0):
    """What the job left running when its main process ended gets SIGTERM, then SIGKILL after grace seconds; all of it is reaped."""
    if not has_children():
        return  # the common end: nothing left, and no scan of /proc (~2 ms on a machine with a few dozen processes)
    if descendants(alive_only=True):
        signal_all(signal.SIGTERM)
        deadline = time.monotonic() + grace
        while descendants(alive_only=True) and time.monotonic() < deadline:
            time.sleep(0.05)
        signal_all(signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0 and not descendants():
                break
        except ChildProcessError:
            break
        time.sleep(0.01)
