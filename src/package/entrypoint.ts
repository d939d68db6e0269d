/**
 * The entrypoint of a training job: SageMaker's training toolkit in
 * miniature, in Python so that any base image with Python runs it. The image
 * runs it as `docker run IMAGE train`; the local runner runs it the same way
 * with this machine's Python, and it then replaces itself with the script.
 */
import { TOOLKIT_SOURCE } from "./toolkit.js";

/**
 * The entrypoint. It reads /opt/ml/input/config (or `$SAGEMAKER_BASE_DIR`,
 * as the toolkit does), sets the SM_* variables, and runs the script with the
 * hyperparameters as arguments (a notebook with the variables only). With
 * `ALEKSEYLEARN_EXEC=1` it execs the script (the local runner owns signals and
 * failure reasons); otherwise it forwards SIGTERM to the job and writes the
 * failure reason SageMaker shows. `ALEKSEYLEARN_HYPERPARAMETER_ARGS=false`
 * turns the arguments off.
 */
export const ENTRYPOINT_SOURCE =
  String.raw`"""Entrypoint of an alekseylearn training job: ` +
  "`docker run IMAGE train`" +
  String.raw`."""
import signal
import subprocess
import sys
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


def main():
    if sys.argv[1:2] != ["train"]:
        print("usage: IMAGE train  (this image runs a training job, as SageMaker starts it)", file=sys.stderr)
        return 2
    base = _al_os.environ.get("SAGEMAKER_BASE_DIR", "/opt/ml")
    for sub in ("model", "output/data", "input/config", "checkpoints"):
        _al_os.makedirs(_al_os.path.join(base, sub), exist_ok=True)
    command, env = job_command(base)
    child_env = dict(_al_os.environ)
    child_env.pop("ALEKSEYLEARN_EXEC", None)
    child_env.update(env)
    if _al_os.environ.get("ALEKSEYLEARN_EXEC") == "1":
        sys.stdout.flush()
        sys.stderr.flush()
        _al_os.execve(command[0], command, child_env)
    child = subprocess.Popen(command, env=child_env, stderr=subprocess.PIPE, text=True, errors="replace")
    # SageMaker stops a job with SIGTERM; the job gets it too, and its time to save a checkpoint.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: child.send_signal(signum))
    tail = []
    for line in child.stderr:
        sys.stderr.write(line)
        sys.stderr.flush()
        tail = (tail + [line.rstrip("\n")])[-10:]
    code = child.wait()
    if code != 0:
        # SageMaker shows this file's text as the job's FailureReason.
        reason = next((line for line in reversed(tail) if line.strip()), "exit code %d" % code)
        try:
            with open(_al_os.path.join(base, "output", "failure"), "w") as f:
                f.write(reason.strip()[:1000] + "\n")
        except OSError:
            pass
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
`;
