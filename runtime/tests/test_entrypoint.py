"""alekseylearn_entrypoint.py run as an image runs it (`train --KEY VALUE ...`), in a child Python, with folders under
tmp_path standing in for /opt/ml (SAGEMAKER_BASE_DIR), Cloud Storage FUSE's /gcs, /kaggle and /etc/hosts (with_roots.py).

Vertex AI: cloud.google.com/vertex-ai/docs/training/code-requirements (AIP_MODEL_DIR as gs://, read and written
through /gcs), …/training/distributed-training (CLUSTER_SPEC), …/training/understanding-training-service (a worker that
exits non-zero is restarted in the same VM). SageMaker: it writes /opt/ml/input/config itself and shows
/opt/ml/output/failure as the job's FailureReason."""

import json
import tarfile

from .helpers import listing, write

SCRIPT = """import json, os, sys
seen = {
    "argv": sys.argv[1:],
    "hps": json.loads(os.environ["SM_HPS"]),
    "channels": json.loads(os.environ["SM_CHANNELS"]),
    "train": sorted(os.listdir(os.environ["SM_CHANNEL_TRAIN"])),
    "one": sorted(os.listdir(os.environ["SM_CHANNEL_ONE"])),
    "host": os.environ["SM_CURRENT_HOST"],
    "type": os.environ["SM_CURRENT_INSTANCE_TYPE"],
    "hosts": json.loads(os.environ["SM_HOSTS"]),
    "checkpoints": sorted(os.listdir("/".join([os.environ["SM_MODEL_DIR"], "..", "checkpoints"]))),
    "master": [os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"]],
    "private": [name for name in os.environ if name in ("ALEKSEYLEARN_INPUTS", "ALEKSEYLEARN_SANDBOXED")],
}
open(os.path.join(os.environ["SM_MODEL_DIR"], "seen.json"), "w").write(json.dumps(seen))
open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "metrics.txt"), "w").write("ok")
"""

CLUSTER = {
    "cluster": {"workerpool0": ["10.0.0.1:2222"], "workerpool1": ["10.0.0.2:2222", "10.0.0.3:2222"]},
    "task": {"type": "workerpool0", "index": 0},
}


def vertex_job(tmp_path, roots, script=SCRIPT):
    """A Vertex chief's job: its code, its inputs and checkpoints in Cloud Storage (under the gcs root), its variables."""
    gcs = roots.gcs
    write(tmp_path / "code" / "train.py", script)
    write(gcs / "data" / "train" / "a.csv", "1\n")
    write(gcs / "data" / "train" / "b.csv", "2\n")
    write(gcs / "data" / "one.csv", "3\n")
    write(gcs / "ckpt" / "step-1", "saved")
    return {
        "ALEKSEYLEARN_ENTRY": "train.py",
        "ALEKSEYLEARN_KIND": "script",
        "TRAINING_JOB_NAME": "j",
        "ALEKSEYLEARN_MACHINE_TYPE": "n1-standard-4",
        "ALEKSEYLEARN_OUTPUT_DIR": str(gcs / "bucket" / "runs" / "j" / "output"),
        "ALEKSEYLEARN_INPUTS": json.dumps({"train": str(gcs / "data" / "train"), "one": str(gcs / "data" / "one.csv")}),
        "ALEKSEYLEARN_CHECKPOINTS": str(gcs / "ckpt"),
        "AIP_MODEL_DIR": "gs://bucket/runs/j/model/",
        "CLOUD_ML_JOB_ID": "123",
        "CLUSTER_SPEC": json.dumps(CLUSTER),
    }


def members(archive):
    with tarfile.open(str(archive)) as tar:
        return sorted(tar.getnames())


def test_on_vertex_the_script_sees_sagemakers_contract_built_from_the_arguments_and_cluster_spec(tmp_path, roots, entrypoint):
    env = vertex_job(tmp_path, roots)
    run = entrypoint(["train", "--epochs", "3", "--lr", "0.1"], env, tmp_path / "code", gcs_mounted=True)
    assert run.returncode == 0, run.stderr
    seen = json.loads((roots.ml / "model" / "seen.json").read_text())
    assert seen["argv"] == ["--epochs", "3", "--lr", "0.1"]
    assert seen["hps"] == {"epochs": 3, "lr": 0.1}
    assert seen["channels"] == ["one", "train"]
    assert seen["train"] == ["a.csv", "b.csv"], "a folder in /gcs is the channel"
    assert seen["one"] == ["one.csv"], "a single object lands as a file inside its channel's folder"
    assert seen["host"] == "algo-1"
    assert seen["type"] == "n1-standard-4"
    assert seen["hosts"] == ["algo-1", "algo-2", "algo-3"]
    assert seen["master"] == ["10.0.0.1", "2222"], "the chief's CLUSTER_SPEC address is the rendezvous"
    assert seen["private"] == [], "the runtime's own variables are not the script's"
    assert seen["checkpoints"] == ["step-1"], "the checkpoints were restored before the script ran"


def test_on_vertex_the_config_files_are_written_from_the_arguments(tmp_path, roots, entrypoint):
    env = vertex_job(tmp_path, roots)
    run = entrypoint(["train", "--epochs", "3", "--lr", "0.1"], env, tmp_path / "code", gcs_mounted=True)
    assert run.returncode == 0, run.stderr
    config = roots.ml / "input" / "config"
    assert json.loads((config / "hyperparameters.json").read_text()) == {"epochs": "3", "lr": "0.1"}
    resource = json.loads((config / "resourceconfig.json").read_text())
    assert resource["hosts"] == ["algo-1", "algo-2", "algo-3"]
    assert resource["current_host"] == "algo-1"
    assert resource["current_instance_type"] == "n1-standard-4"
    assert sorted(json.loads((config / "inputdataconfig.json").read_text())) == ["one", "train"]


def test_on_vertex_the_model_is_packed_to_the_output_prefix_and_copied_to_aip_model_dir(tmp_path, roots, entrypoint):
    env = vertex_job(tmp_path, roots)
    run = entrypoint(["train"], env, tmp_path / "code", gcs_mounted=True)
    assert run.returncode == 0, run.stderr
    out = roots.gcs / "bucket" / "runs" / "j" / "output"
    assert members(out / "model.tar.gz") == ["seen.json"]
    assert "metrics.txt" in members(out / "output.tar.gz")
    assert listing(roots.gcs / "bucket" / "runs" / "j" / "model") == ["seen.json"], "the model folder is in $AIP_MODEL_DIR too"
    assert not (out / "failure").exists()


def test_on_vertex_algo_names_are_added_to_the_hosts_file(tmp_path, roots, entrypoint):
    write(roots.hosts, "127.0.0.1\tlocalhost\n")
    run = entrypoint(["train"], vertex_job(tmp_path, roots), tmp_path / "code", gcs_mounted=True)
    assert run.returncode == 0, run.stderr
    assert roots.hosts.read_text() == "127.0.0.1\tlocalhost\n10.0.0.1\talgo-1\n10.0.0.2\talgo-2\n10.0.0.3\talgo-3\n"


def test_on_vertex_without_gcs_mounted_the_job_fails_naming_gcs_before_the_script_runs(tmp_path, roots, entrypoint):
    # The gcs root here is a plain folder, not a mount point: as on a machine where Cloud Storage FUSE is missing
    # (github:GoogleCloudPlatform/gcsfuse#4333).
    env = vertex_job(tmp_path, roots, script="open('ran', 'w').write('yes')\n")
    run = entrypoint(["train"], env, tmp_path / "code")
    assert run.returncode == 1
    failure = (roots.ml / "output" / "failure").read_text()
    assert "Cloud Storage FUSE is not mounted at %s" % roots.gcs in failure
    assert not (tmp_path / "code" / "ran").exists(), "the script did not run"


def test_a_vertex_worker_restarted_after_a_failure_succeeds_without_the_old_reason(tmp_path, roots, entrypoint):
    # understanding-training-service: a replica that exits non-zero is restarted in the same VM, so /opt/ml is the same.
    script = (
        "import os\n"
        "if not os.path.exists('tried'):\n"
        "    open('tried', 'w').close()\n"
        "    raise SystemExit('first try fails')\n"
        "open(os.path.join(os.environ['SM_MODEL_DIR'], 'm'), 'w').write('x')\n"
    )
    env = vertex_job(tmp_path, roots, script=script)
    out = roots.gcs / "bucket" / "runs" / "j" / "output"
    first = entrypoint(["train"], env, tmp_path / "code", gcs_mounted=True)
    assert first.returncode == 1
    assert (roots.ml / "output" / "failure").read_text() == "first try fails\n"
    assert (out / "failure").read_text() == "first try fails\n"
    second = entrypoint(["train"], env, tmp_path / "code", gcs_mounted=True)
    assert second.returncode == 0, second.stderr
    assert not (roots.ml / "output" / "failure").exists()
    assert not (out / "failure").exists()
    assert members(out / "model.tar.gz") == ["m"]


def test_on_sagemaker_no_config_is_written_and_the_model_stays_in_opt_ml_model(tmp_path, roots, entrypoint):
    # SageMaker writes /opt/ml/input/config itself and uploads /opt/ml/model; without Vertex's variables the runtime does neither.
    write(tmp_path / "code" / "train.py", "import os\nopen(os.path.join(os.environ['SM_MODEL_DIR'], 'm'), 'w').write('x')\n")
    run = entrypoint(["train"], {"ALEKSEYLEARN_ENTRY": "train.py", "ALEKSEYLEARN_KIND": "script"}, tmp_path / "code")
    assert run.returncode == 0, run.stderr
    assert listing(roots.ml / "input" / "config") == []
    assert listing(roots.ml / "model") == ["m"]
    assert not (roots.ml / "model.tar.gz").exists()


def test_a_failing_script_writes_its_exception_as_the_failure_reason(tmp_path, roots, entrypoint):
    write(tmp_path / "code" / "train.py", "print('starting')\nimport alekseylearn_no_such_module\n")
    env = {"ALEKSEYLEARN_ENTRY": "train.py", "ALEKSEYLEARN_PLATFORM": "local"}
    run = entrypoint(["train"], env, tmp_path / "code")
    assert run.returncode == 1
    assert "Traceback (most recent call last):" in run.stderr, "the job's log keeps the whole traceback"
    reason = (roots.ml / "output" / "failure").read_text()
    assert reason == "ModuleNotFoundError: No module named 'alekseylearn_no_such_module'\n"


def test_a_script_that_writes_its_own_failure_reason_keeps_it(tmp_path, roots, entrypoint):
    # SageMaker: the algorithm may write its own reason to /opt/ml/output/failure.
    script = "import os, sys\nopen(os.path.join(os.environ['SM_OUTPUT_DIR'], 'failure'), 'w').write('bad data')\nsys.exit(2)\n"
    write(tmp_path / "code" / "train.py", script)
    run = entrypoint(["train"], {"ALEKSEYLEARN_ENTRY": "train.py", "ALEKSEYLEARN_PLATFORM": "local"}, tmp_path / "code")
    assert run.returncode == 2
    assert (roots.ml / "output" / "failure").read_text() == "bad data"


def test_json_format_hands_the_script_sdk_v3_arguments(tmp_path, roots, entrypoint):
    # sagemaker-python-sdk v3 hyperparameters_to_cli_args: json.dumps of decoded values, strings as they are, file order.
    write(tmp_path / "code" / "train.py", "import sys\nprint(repr(sys.argv[1:]))\n")
    env = {"ALEKSEYLEARN_ENTRY": "train.py", "ALEKSEYLEARN_PLATFORM": "local", "ALEKSEYLEARN_HYPERPARAMETER_FORMAT": "json"}
    run = entrypoint(["train", "--flag", "true", "--lr", "0.10", "--d", '{"a":1}', "--name", "x"], env, tmp_path / "code")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == repr(["--flag", "true", "--lr", "0.1", "--d", '{"a": 1}', "--name", "x"])


def test_hyperparameter_args_false_gives_the_script_no_arguments_but_the_variables(tmp_path, roots, entrypoint):
    write(tmp_path / "code" / "train.py", "import os, sys\nprint(repr(sys.argv[1:]), os.environ['SM_HP_LR'])\n")
    env = {"ALEKSEYLEARN_ENTRY": "train.py", "ALEKSEYLEARN_PLATFORM": "local", "ALEKSEYLEARN_HYPERPARAMETER_ARGS": "false"}
    run = entrypoint(["train", "--lr", "0.10"], env, tmp_path / "code")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[] 0.1"


def test_preview_prints_the_contract_as_json_and_makes_nothing_under_gcs_or_kaggle(tmp_path, roots, entrypoint):
    # A container owns /gcs and /kaggle, so `train` would make links there; `preview` (fit --dry-run) must not.
    (tmp_path / "code").mkdir()
    env = {"ALEKSEYLEARN_ENTRY": "train.py", "ALEKSEYLEARN_PLATFORM": "container", "TRAINING_JOB_NAME": "j"}
    run = entrypoint(["preview", "--lr", "0.10"], env, tmp_path / "code")
    assert run.returncode == 0, run.stderr
    shown = json.loads(run.stdout)
    assert shown["args"] == ["--lr", "0.1"]
    assert shown["env"]["SM_HP_LR"] == "0.1"
    assert shown["env"]["AIP_MODEL_DIR"] == "gs://alekseylearn-job/j/model/"
    assert shown["files"]["hyperparameters.json"] == {"lr": "0.10"}
    assert sorted(shown["files"]) == ["hyperparameters.json", "inputdataconfig.json", "resourceconfig.json"]
    assert not roots.gcs.exists()
    assert not roots.kaggle.exists()


def test_an_unknown_command_is_refused_with_usage(tmp_path, roots, entrypoint):
    run = entrypoint(["serve"], {}, tmp_path)
    assert run.returncode == 2
    assert "usage" in run.stderr


def test_files_the_job_leaves_in_its_working_folder_are_kept_under_output_data_working(tmp_path, roots, entrypoint):
    # SageMaker keeps only /opt/ml/model and /opt/ml/output; what a script saves beside itself would be lost.
    write(tmp_path / "code" / "train.py", "open('results.csv', 'w').write('1')\n")
    write(tmp_path / "code" / "unchanged.txt", "x")
    run = entrypoint(["train"], {"ALEKSEYLEARN_ENTRY": "train.py", "ALEKSEYLEARN_PLATFORM": "local"}, tmp_path / "code")
    assert run.returncode == 0, run.stderr
    assert listing(roots.ml / "output" / "data" / "working") == ["results.csv"]
    assert "results.csv" in run.stderr


def test_a_vertex_worker_that_is_not_the_chief_packs_nothing(tmp_path, roots, entrypoint):
    env = vertex_job(tmp_path, roots)
    env["CLUSTER_SPEC"] = json.dumps({**CLUSTER, "task": {"type": "workerpool1", "index": 0}})
    run = entrypoint(["train"], env, tmp_path / "code", gcs_mounted=True)
    assert run.returncode == 0, run.stderr
    assert json.loads((roots.ml / "model" / "seen.json").read_text())["host"] == "algo-2"
    assert not (roots.gcs / "bucket" / "runs" / "j" / "output").exists()
