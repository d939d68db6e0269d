"""The job's whole process tree is the job's: the runtime is its init (a child subreaper, or PID 1 of a container or
sandbox), SIGTERM reaches every process, and what the script leaves running when it ends is stopped too."""

import io
import os
import signal
import sys
import time


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


def fork_script(entry, args, env):
    """Run the script `entry` with `args` and `env` as `python -u ENTRY ARGS` would, in a child of this interpreter (no
    second interpreter to start: ~20 ms of every job's start-up, and site's): (pid, its stderr as text), as `start` gives.

    The child is made to look like a fresh interpreter's start (tests/test_in_process.py compares them) and never returns:
    it ends as Python ends a script, with a normal finalization (threads joined, atexit, files flushed). Needs an
    interpreter started with site (not -S) and no other thread (fork keeps only the calling one)."""
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()  # what this process printed is not printed again by the child
    read, write = os.pipe()
    try:
        pid = os.fork()
    except BaseException:
        os.close(read)
        os.close(write)
        raise
    if pid == 0:
        _become_script(entry, list(args), env, write)  # never returns: raises SystemExit or the script's exception
    os.close(write)
    return pid, os.fdopen(read, "r", errors="replace")


RUNTIME_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _become_script(entry, args, env, errors):
    """The forked child becomes `python -u ENTRY ARGS` (Python's own start-up: Modules/main.c pymain_run_file,
    Python/pythonrun.c _PyRun_SimpleFileObject, Python/pathconfig.c for sys.path[0]). Called with no handler above it
    in the init (its SystemExit or exception reaches the interpreter's top level, as a script's does)."""
    try:
        os.dup2(errors, 2)  # as posix_spawn's file action did: the init reads the script's stderr
        for name in os.listdir("/dev/fd"):
            if int(name) > 2:
                try:
                    os.close(int(name))  # fork keeps close-on-exec descriptors (the pipe's ends, bwrap's info fd)
                except OSError:
                    pass  # the descriptor listdir itself had open
        # Signal handlers are left as Python's start-up made them, which is how it makes them for the script: SIGINT's
        # default_int_handler (or SIG_IGN kept, where the init was started with it ignored, as a shell's background job
        # is), SIGPIPE and SIGXFSZ ignored, the rest as inherited. The init installs its own only after the fork.
        os.environ.clear()
        os.environ.update(env)  # through putenv/unsetenv: C code (and a library's getenv) sees the script's variables
        read_env = not sys.flags.ignore_environment
        sys.dont_write_bytecode = bool(read_env and env.get("PYTHONDONTWRITEBYTECODE"))
        # -X pycache_prefix is the init's (its own compiled modules), not the script's: PYTHONPYCACHEPREFIX is.
        sys.pycache_prefix = (read_env and env.get("PYTHONPYCACHEPREFIX")) or None
        sys._xoptions.pop("pycache_prefix", None)
        # As Python takes the script's path: __file__ made absolute (not normalised), sys.path[0] its real folder.
        path = entry if os.path.isabs(entry) else os.path.join(os.getcwd(), entry)
        runtime = os.path.realpath(RUNTIME_DIR)
        sys.path[:] = [folder for folder in sys.path if os.path.realpath(folder or ".") != runtime]
        if not getattr(sys.flags, "safe_path", False):
            sys.path.insert(0, os.path.dirname(os.path.realpath(path)))
        sys.argv[:] = [entry, *args]
        if hasattr(sys, "orig_argv"):
            sys.orig_argv = [sys.executable, "-u", entry, *args]
        for name in [name for name in sys.modules if name.split(".")[0] in ("alekseylearn_runtime", "alekseylearn_entrypoint")]:
            del sys.modules[name]
        import builtins

        try:
            from _frozen_importlib_external import SourceFileLoader  # the import system's own: importlib costs ~1 ms
        except ImportError:
            from importlib.machinery import SourceFileLoader

        main = type(sys)("__main__")
        if sys.version_info < (3, 14):
            main.__annotations__ = {}  # made with the __main__ module before PEP 649
        main.__builtins__ = builtins
        main.__file__ = path
        main.__cached__ = None
        main.__loader__ = SourceFileLoader("__main__", path)
        sys.modules["__main__"] = main  # for good: multiprocessing's spawn and pickle read the script's classes there
    except BaseException:
        import traceback

        traceback.print_exc()
        os._exit(1)  # the script never started: nothing of it to finalize, and the init's code must not run here
    try:
        with io.open_code(path) as handle:
            source = handle.read()
    except OSError as error:
        sys.stderr.write("%s: can't open file %r: [Errno %d] %s\n" % (sys.executable, path, error.errno, error.strerror))
        raise SystemExit(2) from None
    try:
        exec(compile(source, path, "exec", dont_inherit=True), main.__dict__)
    except SystemExit:
        raise  # ends as the script's own: its code, or its message on stderr and 1
    except BaseException as error:
        # The interpreter prints it (and exits 1, or by SIGINT for KeyboardInterrupt) once it reaches the top level, through
        # sys.excepthook: handed the traceback from the script's own frame on (none for a syntax error: compile's own).
        script = error.__traceback__.tb_next
        hook = sys.excepthook

        def display(kind, value, _):
            sys.excepthook = hook
            hook(kind, value.with_traceback(script), script)  # Python prints the exception's own __traceback__

        sys.excepthook = display
        raise
    raise SystemExit


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
