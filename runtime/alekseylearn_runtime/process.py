"""The job's whole process tree is the job's: the runtime is its init (a child subreaper, or PID 1 of a container or
sandbox), SIGTERM reaches every process, and what the script leaves running when it ends is stopped too."""

import os
import signal
import time


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


def end_leftovers(grace=2.0):
    """What the job left running when its main process ended gets SIGTERM, then SIGKILL after grace seconds; all of it is reaped."""
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
