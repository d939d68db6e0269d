/**
 * The entrypoint of a training image: SageMaker's training toolkit in
 * miniature, in Python so that any base image with Python runs it.
 */

/** The entrypoint: SageMaker's training toolkit in miniature (the SM_* variables, then the artifact), in Python so any base image with Python runs it. */
export const ENTRYPOINT_SOURCE = String.raw`"""Entrypoint of an alekseylearn training image: ` + "`docker run IMAGE train`" + String.raw`."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys

ML = "/opt/ml"


def read_json(name, default):
    try:
        with open(os.path.join(ML, "input", "config", name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def env_key(key):
    return re.sub(r"[^A-Z0-9_]", "_", key.upper())


def count_gpus():
    if not shutil.which("nvidia-smi"):
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


def contract_env():
    """The SM_* variables, as SageMaker's training toolkit sets them."""
    hps = read_json("hyperparameters.json", {})
    channels = sorted(read_json("inputdataconfig.json", {}).keys())
    resources = read_json("resourceconfig.json", {"current_host": "algo-1", "hosts": ["algo-1"]})
    parsed = {}
    for key, value in hps.items():
        try:
            parsed[key] = json.loads(value)
        except (TypeError, ValueError):
            parsed[key] = value
    env = {
        "SM_MODEL_DIR": ML + "/model",
        "SM_OUTPUT_DIR": ML + "/output",
        "SM_OUTPUT_DATA_DIR": ML + "/output/data",
        "SM_INPUT_DIR": ML + "/input",
        "SM_INPUT_CONFIG_DIR": ML + "/input/config",
        "SM_CHANNELS": json.dumps(channels),
        "SM_HPS": json.dumps(parsed),
        "SM_NUM_CPUS": str(os.cpu_count() or 1),
        "SM_NUM_GPUS": str(count_gpus()),
        "SM_CURRENT_HOST": resources.get("current_host", "algo-1"),
        "SM_HOSTS": json.dumps(resources.get("hosts", ["algo-1"])),
    }
    for channel in channels:
        env["SM_CHANNEL_" + env_key(channel)] = ML + "/input/data/" + channel
    for key, value in hps.items():
        env["SM_HP_" + env_key(key)] = value if isinstance(value, str) else json.dumps(value)
    return env


def main():
    if sys.argv[1:2] != ["train"]:
        print("usage: IMAGE train  (this image runs a training job, as SageMaker starts it)", file=sys.stderr)
        return 2
    for sub in ("model", "output/data", "input/config", "checkpoints"):
        os.makedirs(os.path.join(ML, sub), exist_ok=True)
    entry = os.environ["ALEKSEYLEARN_ENTRY"]
    if os.environ.get("ALEKSEYLEARN_KIND") == "notebook":
        executed = os.path.join(ML, "output", "data", os.path.basename(entry))
        command = [sys.executable, "-u", "/opt/alekseylearn/alekseylearn_run_notebook.py", entry, executed]
    else:
        command = [sys.executable, "-u", entry]
    child = subprocess.Popen(command, env={**os.environ, **contract_env()}, stderr=subprocess.PIPE, text=True, errors="replace")
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
            with open(os.path.join(ML, "output", "failure"), "w") as f:
                f.write(reason.strip()[:1000] + "\n")
        except OSError:
            pass
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
`;

