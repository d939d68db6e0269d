"""The job's init: `train [--KEY VALUE ...]`. It reads the job's description, lets the platform's adapter lay out every
contract (SageMaker's, Vertex AI's, Kaggle's), runs the script or notebook with the arguments and variables the
SageMaker toolkit would give it, keeps its whole process tree, writes its failure reason in its own words, and hands the
finished job back as the platform expects."""

import os
import sys

# Only what runs before the script starts is imported at the top, and only what costs next to nothing: the init's start-up
# is the job's (a local run waits on it). re, shutil, subprocess and threading are imported where they are used, once the
# script is running or ending; JSON is jsontext's (json's import pulls re, enum, functools and collections: ~10 ms), and
# signals are _signal's (signal.py imports enum for its IntEnums; the numbers and signal() are the same).
from . import contract, jsontext, platforms, process, toolkit
from .contract import JobFailure
from .process import signal  # _signal where CPython has it, as process.py chooses

#: The variables a job's description is handed in (set by alekseylearn on each backend; some by the image's ENV).
ENTRY, KIND, PLATFORM = "ALEKSEYLEARN_ENTRY", "ALEKSEYLEARN_KIND", "ALEKSEYLEARN_PLATFORM"
INPUTS, OUTPUT_DIR, CHECKPOINTS = "ALEKSEYLEARN_INPUTS", "ALEKSEYLEARN_OUTPUT_DIR", "ALEKSEYLEARN_CHECKPOINTS"
HYPERPARAMETER_ARGS, HYPERPARAMETER_FORMAT = "ALEKSEYLEARN_HYPERPARAMETER_ARGS", "ALEKSEYLEARN_HYPERPARAMETER_FORMAT"
MACHINE_TYPE, SANDBOXED = "ALEKSEYLEARN_MACHINE_TYPE", "ALEKSEYLEARN_SANDBOXED"
SUPERVISED, STOP_TIMEOUT, CHECKPOINT_SYNC = "ALEKSEYLEARN_SUPERVISED", "ALEKSEYLEARN_STOP_TIMEOUT", "ALEKSEYLEARN_CHECKPOINT_SYNC"
DISTRIBUTION, PROCESSES_PER_HOST = "ALEKSEYLEARN_DISTRIBUTION", "ALEKSEYLEARN_PROCESSES_PER_HOST"
#: The local backend's hosts of a multi-host job (their names, comma-separated) and this one's name, and the job's free port.
HOSTS, CURRENT_HOST, MASTER_PORT = "ALEKSEYLEARN_HOSTS", "ALEKSEYLEARN_CURRENT_HOST", "ALEKSEYLEARN_MASTER_PORT"
#: Read by the runtime alone: the job's script never sees them.
PRIVATE = (SUPERVISED, STOP_TIMEOUT, INPUTS, SANDBOXED, "ALEKSEYLEARN_RESOLVE_TIMEOUT", HOSTS, CURRENT_HOST, MASTER_PORT)


class Job:
    """A job's description: what runs, with which hyperparameters (as typed) and channels, and where its results go."""

    def __init__(self, environ, argv=()):
        self.entry = environ.get(ENTRY, "")
        self.kind = environ.get(KIND, "script")
        self.name = environ.get("TRAINING_JOB_NAME") or "job"
        # The image's arguments after `train`, --KEY VALUE as the job was submitted (SageMaker passes none: it writes the file).
        self.hyperparameters = {argv[i][2:]: argv[i + 1] for i in range(0, len(argv) - 1, 2) if argv[i].startswith("--")}
        self.channels = jsontext.loads(environ.get(INPUTS) or "{}")
        self.hyperparameter_args = environ.get(HYPERPARAMETER_ARGS, "true").lower() != "false"
        self.hyperparameter_format = environ.get(HYPERPARAMETER_FORMAT) or "toolkit"
        self.output_dir = environ.get(OUTPUT_DIR)
        self.checkpoints = environ.get(CHECKPOINTS)
        self.machine_type = environ.get(MACHINE_TYPE)
        self.sandboxed = environ.get(SANDBOXED) == "1"
        self.supervised = environ.get(SUPERVISED) == "1"
        self.stop_timeout = float(environ.get(STOP_TIMEOUT) or 0)
        self.checkpoint_sync = float(environ.get(CHECKPOINT_SYNC) or 60)
        self.distribution = environ.get(DISTRIBUTION) or "none"
        self.processes_per_host = int(environ.get(PROCESSES_PER_HOST) or 0)


def prepare(platform):
    """Lay out every contract for the job; returns the variables and arguments its script gets. Raises JobFailure."""
    job, base = platform.job, platform.base
    for sub in ("model", "output/data", "input/config", "input/data", "checkpoints"):
        os.makedirs(os.path.join(base, sub), exist_ok=True)
    failure = os.path.join(base, "output", "failure")
    if os.path.exists(failure):
        os.unlink(failure)  # a worker restarted in the same machine starts without the last run's reason
    platform.prepare()
    hosts, current = platform.hosts(), platform.current_host()
    if platform.writes_config:
        files = contract.config_files(job.hyperparameters, job.channels, hosts, current, platform.instance_type())
        contract.write_config(base, files)
    for name, source in platform.channel_sources().items():
        contract.lay_channel(source, os.path.join(base, "input", "data", name))
    if job.distribution not in contract.DISTRIBUTIONS:
        raise JobFailure("unknown distribution %r (known: %s)" % (job.distribution, ", ".join(contract.DISTRIBUTIONS)))
    if job.distribution == "torchrun" and job.kind == "notebook":
        raise JobFailure("distribution torchrun launches a script; a notebook runs in one kernel")
    env, args = toolkit.training_environment(base, platform.code_dir(), job.entry, job.name, job.hyperparameter_format)
    env.update(platform.contract_variables(hosts, current))
    env.update(platform.rendezvous(hosts, current))
    env["TRAINING_JOB_NAME"] = job.name
    if not job.hyperparameter_args:
        args = []
    return env, args


def command_for(job, base, args, env=None, platform=None):
    """The command that runs the artifact: the script with its arguments (through torchrun with distribution torchrun,
    meeting at the job's MASTER_ADDR:MASTER_PORT), or a notebook through the runner (a kernel has its own argv: it gets
    the variables only)."""
    if job.distribution == "torchrun" and platform is not None:
        hosts, current = platform.hosts(), platform.current_host()
        address, port = env["MASTER_ADDR"], env["MASTER_PORT"]
        return contract.torchrun_command(
            sys.executable, job.entry, args, hosts, current, processes=platform.processes(), address=address, port=port
        )
    if job.kind == "notebook":
        runner = os.path.join(os.path.dirname(os.path.abspath(__file__)), "notebook.py")
        executed = os.path.join(base, "output", "data", os.path.basename(job.entry))
        return [sys.executable, "-u", runner, job.entry, executed, os.path.join(base, "output", "failure")]
    return [sys.executable, "-u", job.entry, *args]


TRACEBACK = "Traceback (most recent call last):"
ANSI = r"\x1b\[[0-9;?]*[ -/]*[@-~]"


def failure_reason(tail, code):
    """The job's own words for its failure: the last traceback's closing line (the exception's type and message), else
    the last line it printed, else its exit code."""
    import re

    lines = [re.sub(ANSI, "", line).rstrip() for line in tail]
    if TRACEBACK in lines:
        after = lines[len(lines) - 1 - lines[::-1].index(TRACEBACK) + 1 :]
        closing = [line for line in after if line.strip() and not line.startswith((" ", "\t"))]
        if closing:
            return closing[-1].strip()
    last = next((line for line in reversed(lines) if line.strip()), None)
    return last.strip() if last else "the training process exited with code %d" % code


SKIPPED = {".git", "__pycache__", ".ipynb_checkpoints", "node_modules", ".venv", "venv"}


def working_snapshot(root):
    """Each file under the working folder, with its size and time (caches and environments left out)."""
    files = {}
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d not in SKIPPED]
        for name in names:
            full = os.path.join(folder, name)
            try:
                stat = os.lstat(full)
            except OSError:
                continue
            if not name.endswith(".pyc") and not os.path.islink(full):
                files[os.path.relpath(full, root)] = (stat.st_size, stat.st_mtime_ns)
    return files


def keep_working_files(root, before, base):
    """What the job left in its working folder goes to output.tar.gz under working/ (SageMaker keeps only /opt/ml/model and
    /opt/ml/output)."""
    import shutil

    after = working_snapshot(root)
    left = sorted(name for name, stamp in after.items() if before.get(name) != stamp)
    for name in left:
        target = os.path.join(base, "output", "data", "working", name)
        try:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copy2(os.path.join(root, name), target)
        except OSError:
            pass
    if left:
        shown = ", ".join(left[:10])
        print(
            "[alekseylearn] the job wrote %d file(s) into its working folder (%s); "
            "they are kept in output.tar.gz under working/" % (len(left), shown),
            file=sys.stderr,
            flush=True,
        )


def write_failure(base, reason):
    try:
        with open(os.path.join(base, "output", "failure"), "w") as handle:
            handle.write(reason.strip()[:1000] + "\n")
    except OSError:
        pass


def run(platform):
    """Run the job to its end on `platform`; its exit status."""
    job, base = platform.job, platform.base
    try:
        env, args = prepare(platform)
    except JobFailure as failure:
        print("[alekseylearn] %s" % failure, file=sys.stderr, flush=True)
        write_failure(base, str(failure))
        platform.finish(1)
        return 1
    child_env = {name: value for name, value in os.environ.items() if name not in PRIVATE}
    child_env.update(env)
    process.become_subreaper()
    before = working_snapshot(os.getcwd()) if platform.keeps_working_files else None
    pid, errors = process.start(command_for(job, base, args, child_env, platform), child_env)
    import threading

    stopping = []

    def stop(signum, frame):
        # SageMaker stops a job with SIGTERM: the whole job gets it (the script, a notebook's kernel, its helpers), and time to save.
        if not stopping and job.stop_timeout:
            timer = threading.Timer(job.stop_timeout, process.signal_all, args=(signal.SIGKILL,))
            timer.daemon = True
            timer.start()
        stopping.append(signum)
        process.signal_all(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)
    tail = []

    def read_errors():
        for line in errors:
            sys.stderr.write(line)
            sys.stderr.flush()
            tail[:] = [*tail, line.rstrip("\n")][-40:]

    # Read in a thread: a helper that keeps the job's stderr open must not keep the job from ending.
    reader = threading.Thread(target=read_errors, daemon=True)
    reader.start()
    # A blocking wait (signals are still handled while it waits): the job's end is seen at once.
    code = process.wait(pid)
    process.end_leftovers()
    reader.join(timeout=1)
    platform.tidy()
    if before is not None:
        keep_working_files(os.getcwd(), before, base)
    if code != 0 and not stopping and not os.path.exists(os.path.join(base, "output", "failure")):
        # SageMaker shows this file's text as the job's FailureReason (the script may have written its own).
        write_failure(base, failure_reason(tail, code))
    platform.finish(code)
    return code if code >= 0 else 128 - code


def preview(platform):
    """What the job would get, as JSON on stdout, without running it or touching /gcs or /kaggle (`fit --dry-run`)."""
    platform.dry = True
    env, args = prepare(platform)
    config = os.path.join(platform.base, "input", "config")
    files = {name: toolkit.read_json(os.path.join(config, name), None) for name in sorted(os.listdir(config))}
    print(jsontext.dumps({"env": env, "args": args, "files": files}))
    return 0


def main(argv):
    if argv[:1] not in (["train"], ["preview"]):
        print("usage: IMAGE train  (this image runs a training job, as SageMaker starts it)", file=sys.stderr)
        return 2
    platform = platforms.select(Job(os.environ, argv[1:]), os.environ)
    return run(platform) if argv[0] == "train" else preview(platform)
