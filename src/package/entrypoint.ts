/**
 * The entrypoint of a training job: SageMaker's training toolkit in
 * miniature, in Python so that any base image with Python runs it. The image
 * runs it as `docker run IMAGE train`; the local runner runs it the same way
 * with this machine's Python.
 */
import { TOOLKIT_SOURCE } from "./toolkit.js";

/**
 * The entrypoint. It reads /opt/ml/input/config (or `$SAGEMAKER_BASE_DIR`,
 * as the toolkit does), sets the SM_* variables, and runs the script with the
 * hyperparameters as arguments (a notebook with the variables only). It is
 * the job's init: every process the job starts stays below it (a child
 * subreaper, or PID 1 of the container or sandbox), SIGTERM reaches all of
 * them, and when the script ends what it left gets SIGTERM and, 2 s later,
 * SIGKILL. It writes the failure reason SageMaker shows, unless the local
 * runner watches the job (`ALEKSEYLEARN_SUPERVISED=1`, with
 * `ALEKSEYLEARN_STOP_TIMEOUT` seconds of grace after a stop).
 * `ALEKSEYLEARN_HYPERPARAMETER_ARGS=false` turns the arguments off.
 */
export const ENTRYPOINT_SOURCE =
  String.raw`"""Entrypoint of an alekseylearn training job: ` +
  "`docker run IMAGE train`" +
  String.raw`."""
import shutil
import signal
import subprocess
import sys
import threading
import time
` +
  TOOLKIT_SOURCE +
  String.raw`

def job_command(base):
    """The command that runs the artifact, and the SM_* variables it gets."""
    entry = _al_os.environ["ALEKSEYLEARN_ENTRY"]
    notebook = _al_os.environ.get("ALEKSEYLEARN_KIND") == "notebook"
    env, args = training_environment(base, _al_os.getcwd(), entry, _al_os.environ.get("TRAINING_JOB_NAME"))
    if notebook:
        # A notebook's kernel has its own argv: it gets the variables, not arguments.
        runner = _al_os.path.join(_al_os.path.dirname(_al_os.path.abspath(__file__)), "alekseylearn_run_notebook.py")
        executed = _al_os.path.join(base, "output", "data", _al_os.path.basename(entry))
        return [sys.executable, "-u", runner, entry, executed], env
    if _al_os.environ.get("ALEKSEYLEARN_HYPERPARAMETER_ARGS", "true").lower() == "false":
        args = []
    return [sys.executable, "-u", entry] + args, env


def become_subreaper():
    """Orphans of the job (a helper whose parent exited) are re-parented here, not to the machine's init: none escapes."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def descendants(alive_only=False):
    """Every process below this one, from the parent links in /proc (a PID namespace or container has its own)."""
    children = {}
    for entry in _al_os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as handle:
                stat = handle.read()
            fields = stat[stat.rindex(")") + 2:].split()
        except (OSError, ValueError):
            continue
        if alive_only and fields[0] == "Z":
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [_al_os.getpid()]
    while todo:
        for pid in children.get(todo.pop(), []):
            found.append(pid)
            todo.append(pid)
    return found


def signal_all(sig):
    for pid in descendants():
        try:
            _al_os.kill(pid, sig)
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
            if _al_os.waitpid(-1, _al_os.WNOHANG)[0] == 0 and not descendants():
                break
        except ChildProcessError:
            break
        time.sleep(0.01)


SKIPPED = {".git", "__pycache__", ".ipynb_checkpoints", "node_modules", ".venv", "venv"}


def working_snapshot(root):
    """Each file under the working folder, with its size and time (caches and environments left out)."""
    files = {}
    for folder, dirs, names in _al_os.walk(root):
        dirs[:] = [d for d in dirs if d not in SKIPPED]
        for name in names:
            full = _al_os.path.join(folder, name)
            try:
                stat = _al_os.lstat(full)
            except OSError:
                continue
            if not name.endswith(".pyc") and not _al_os.path.islink(full):
                files[_al_os.path.relpath(full, root)] = (stat.st_size, stat.st_mtime_ns)
    return files


def keep_working_files(root, before, base):
    """What the job left in its working folder goes to output.tar.gz under working/ (SageMaker keeps only /opt/ml/model and /opt/ml/output)."""
    after = working_snapshot(root)
    left = sorted(name for name, stamp in after.items() if before.get(name) != stamp)
    for name in left:
        target = _al_os.path.join(base, "output", "data", "working", name)
        try:
            _al_os.makedirs(_al_os.path.dirname(target), exist_ok=True)
            shutil.copy2(_al_os.path.join(root, name), target)
        except OSError:
            pass
    if left:
        print("[alekseylearn] the job wrote %d file(s) into its working folder (%s); they are kept in output.tar.gz under working/" % (len(left), ", ".join(left[:10])), file=sys.stderr, flush=True)


def vertex_hosts():
    """Vertex's CLUSTER_SPEC as SageMaker's hosts: pool 0's one replica is algo-1, pool 1's follow; this replica's index in them."""
    try:
        spec = _al_json.loads(_al_os.environ.get("CLUSTER_SPEC") or "{}")
    except ValueError:
        spec = {}
    cluster = spec.get("cluster") or {}
    chief = len(cluster.get("workerpool0") or ["one"])
    workers = len(cluster.get("workerpool1") or [])
    task = spec.get("task") or {}
    index = 0 if task.get("type", "workerpool0") == "workerpool0" else chief + int(task.get("index", 0))
    return ["algo-%d" % (i + 1) for i in range(chief + workers)], index


def prepare_vertex(base, argv):
    """On Vertex AI nothing writes /opt/ml/input/config: write it as SageMaker does, from the image's arguments (--KEY VALUE, as the
    job was submitted) and its variables; lay the inputs (under /gcs, Cloud Storage FUSE) out as channels; restore the checkpoints."""
    config = _al_os.path.join(base, "input", "config")
    hyperparameters = {argv[i][2:]: argv[i + 1] for i in range(0, len(argv) - 1, 2) if argv[i].startswith("--")}
    channels = _al_json.loads(_al_os.environ.get("ALEKSEYLEARN_INPUTS") or "{}")
    hosts, index = vertex_hosts()
    machine = _al_os.environ.get("ALEKSEYLEARN_MACHINE_TYPE", "vertex")
    files = {
        "hyperparameters.json": hyperparameters,
        "resourceconfig.json": {
            "current_host": hosts[index],
            "current_instance_type": machine,
            "current_group_name": "homogeneousCluster",
            "hosts": hosts,
            "instance_groups": [{"instance_group_name": "homogeneousCluster", "instance_type": machine, "hosts": hosts}],
            "network_interface_name": "eth0",
        },
        "inputdataconfig.json": {
            channel: {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"} for channel in sorted(channels)
        },
    }
    for name, content in files.items():
        with open(_al_os.path.join(config, name), "w") as handle:
            _al_json.dump(content, handle)
    for channel, source in channels.items():
        target = _al_os.path.join(base, "input", "data", channel)
        _al_os.makedirs(_al_os.path.dirname(target), exist_ok=True)
        if _al_os.path.isdir(source):
            _al_os.symlink(source, target)
        else:
            # A single object lands as a file inside its channel's folder, as SageMaker puts it.
            _al_os.makedirs(target, exist_ok=True)
            _al_os.symlink(source, _al_os.path.join(target, _al_os.path.basename(source)))
    checkpoints = _al_os.environ.get("ALEKSEYLEARN_CHECKPOINTS")
    if checkpoints and _al_os.path.isdir(checkpoints):
        shutil.copytree(checkpoints, _al_os.path.join(base, "checkpoints"), dirs_exist_ok=True)
    return index == 0


def pack(folder, archive):
    """folder's contents as archive (tar.gz, names relative to it, as SageMaker packs model.tar.gz), written whole or not at all."""
    import tarfile
    partial = archive + ".partial"
    with tarfile.open(partial, "w:gz") as tar:
        for name in sorted(_al_os.listdir(folder)):
            tar.add(_al_os.path.join(folder, name), arcname=name)
    _al_os.replace(partial, archive)


def sync_checkpoints(source, target):
    """Copy the files of source that changed since they were last copied (by size and time) to target, as SageMaker syncs
    /opt/ml/checkpoints to checkpoint_s3_uri while the job runs; a file being written may fail and is copied next time."""
    for root, _, files in _al_os.walk(source):
        for name in files:
            local = _al_os.path.join(root, name)
            remote = _al_os.path.join(target, _al_os.path.relpath(local, source))
            try:
                mine = _al_os.stat(local)
                theirs = _al_os.stat(remote) if _al_os.path.exists(remote) else None
                if theirs and theirs.st_size == mine.st_size and int(theirs.st_mtime) >= int(mine.st_mtime):
                    continue
                _al_os.makedirs(_al_os.path.dirname(remote), exist_ok=True)
                shutil.copy2(local, remote)
            except OSError:
                pass


def keep_syncing_checkpoints(base):
    """While the job runs, its checkpoints reach checkpoint_uri every ALEKSEYLEARN_CHECKPOINT_SYNC seconds (60), so a preempted
    Spot VM resumes from the last ones rather than from the start."""
    target = _al_os.environ.get("ALEKSEYLEARN_CHECKPOINTS")
    if not target:
        return
    every = float(_al_os.environ.get("ALEKSEYLEARN_CHECKPOINT_SYNC") or 60)

    def loop():
        while True:
            time.sleep(every)
            sync_checkpoints(_al_os.path.join(base, "checkpoints"), target)

    threading.Thread(target=loop, daemon=True).start()


def aip_model_dir():
    """$AIP_MODEL_DIR as this machine sees it: a gs:// URI through Vertex's Cloud Storage FUSE mount at /gcs; empty when unset."""
    aip = _al_os.environ.get("AIP_MODEL_DIR") or ""
    return "/gcs/" + aip[len("gs://"):] if aip.startswith("gs://") else aip


def model_folder(base):
    """The folder that holds the model: /opt/ml/model, or $AIP_MODEL_DIR when a script written for Vertex AI saved its
    model there and left /opt/ml/model empty."""
    model = _al_os.path.join(base, "model")
    local = aip_model_dir()
    if not _al_os.listdir(model) and local and _al_os.path.isdir(local) and _al_os.listdir(local):
        return local
    return model


def finish_vertex(base, chief):
    """Save the checkpoints; on the chief, pack the model and output data to OUTPUT_PATH/JOB/output (through /gcs) as SageMaker
    does, and copy the model folder to $AIP_MODEL_DIR, where Vertex's model registry looks for it."""
    checkpoints = _al_os.environ.get("ALEKSEYLEARN_CHECKPOINTS")
    if checkpoints:
        sync_checkpoints(_al_os.path.join(base, "checkpoints"), checkpoints)
    if not chief:
        return
    out = _al_os.environ["ALEKSEYLEARN_OUTPUT_DIR"]
    _al_os.makedirs(out, exist_ok=True)
    model = model_folder(base)
    pack(model, _al_os.path.join(out, "model.tar.gz"))
    data = _al_os.path.join(base, "output", "data")
    if any(files for _, _, files in _al_os.walk(data)):
        pack(data, _al_os.path.join(out, "output.tar.gz"))
    failure = _al_os.path.join(base, "output", "failure")
    if _al_os.path.exists(failure):
        shutil.copy(failure, _al_os.path.join(out, "failure"))
    local = aip_model_dir()
    if local and _al_os.path.abspath(local) != _al_os.path.abspath(model):
        shutil.copytree(model, local, dirs_exist_ok=True)


def main():
    if sys.argv[1:2] != ["train"]:
        print("usage: IMAGE train  (this image runs a training job, as SageMaker starts it)", file=sys.stderr)
        return 2
    base = _al_os.environ.get("SAGEMAKER_BASE_DIR", "/opt/ml")
    for sub in ("model", "output/data", "input/config", "checkpoints"):
        _al_os.makedirs(_al_os.path.join(base, sub), exist_ok=True)
    # On Vertex AI (the job names its output folder under /gcs) the entrypoint does what SageMaker does around the script.
    vertex = "ALEKSEYLEARN_OUTPUT_DIR" in _al_os.environ
    chief = prepare_vertex(base, sys.argv[2:]) if vertex else False
    if vertex:
        keep_syncing_checkpoints(base)
    command, env = job_command(base)
    child_env = dict(_al_os.environ)
    for name in ("ALEKSEYLEARN_SUPERVISED", "ALEKSEYLEARN_STOP_TIMEOUT"):
        child_env.pop(name, None)
    child_env.update(env)
    # Run locally, alekseylearn watches the job from outside (its log, its failure reason) and gives it stop_timeout to stop.
    supervised = _al_os.environ.get("ALEKSEYLEARN_SUPERVISED") == "1"
    grace = float(_al_os.environ.get("ALEKSEYLEARN_STOP_TIMEOUT") or 0)
    become_subreaper()
    # Run locally, alekseylearn itself watches the job's folder; in an image, this does.
    before = None if supervised else working_snapshot(_al_os.getcwd())
    child = subprocess.Popen(command, env=child_env, stderr=None if supervised else subprocess.PIPE, text=True, errors="replace")
    stopping = []

    def stop(signum, frame):
        # SageMaker stops a job with SIGTERM: the whole job gets it (the script, a notebook's kernel, its helpers), and time to save.
        if not stopping and grace:
            timer = threading.Timer(grace, signal_all, args=(signal.SIGKILL,))
            timer.daemon = True
            timer.start()
        stopping.append(signum)
        signal_all(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)
    tail = []

    def read_errors():
        for line in child.stderr:
            sys.stderr.write(line)
            sys.stderr.flush()
            tail[:] = (tail + [line.rstrip("\n")])[-10:]

    # Read in a thread: a helper that keeps the job's stderr open must not keep the job from ending.
    reader = None if supervised else threading.Thread(target=read_errors, daemon=True)
    if reader:
        reader.start()
    # A blocking wait (signals are still handled while it waits): the job's end is seen at once.
    code = child.wait()
    # The job ends when its main process ends; nothing it started outlives it.
    end_leftovers()
    if reader:
        reader.join(timeout=1)
    if before is not None:
        keep_working_files(_al_os.getcwd(), before, base)
    failure = _al_os.path.join(base, "output", "failure")
    if code != 0 and not supervised and not _al_os.path.exists(failure):
        # SageMaker shows this file's text as the job's FailureReason (the script may have written its own).
        reason = next((line for line in reversed(tail) if line.strip()), "exit code %d" % code)
        try:
            with open(failure, "w") as f:
                f.write(reason.strip()[:1000] + "\n")
        except OSError:
            pass
    if vertex:
        finish_vertex(base, chief)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
`;
