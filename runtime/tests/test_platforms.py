"""Each platform's adapter, prepared in this process (job.prepare: the contract laid out, nothing run) with every root
under tmp_path. Vertex AI: cloud.google.com/vertex-ai/docs/training/code-requirements (AIP_* variables, /gcs),
…/training/distributed-training (CLUSTER_SPEC); Kaggle: github:Kaggle/docker-python (/kaggle/input, /kaggle/working);
SageMaker: docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo-running-container.html."""

import json
import os
import tarfile

import pytest

from alekseylearn_runtime import job as jobs
from alekseylearn_runtime.platforms import ContainerPlatform, LocalPlatform, SageMakerPlatform, VertexPlatform
from alekseylearn_runtime.platforms import vertex as vertex_module

from .helpers import make_platform, write


def resolves_to(link, folder):
    return os.path.realpath(str(link)) == os.path.realpath(str(folder))


@pytest.fixture
def data(tmp_path):
    folder = tmp_path / "data"
    write(folder / "a.csv", "1\n")
    return folder


def local_job(data, **more):
    return {"ALEKSEYLEARN_ENTRY": "train.py", "TRAINING_JOB_NAME": "j", "ALEKSEYLEARN_INPUTS": json.dumps({"train": str(data)}), **more}


# --- local -----------------------------------------------------------------------------------------------------------


def test_local_sandboxed_names_gs_uris_whose_gcs_paths_lead_to_the_jobs_folders(roots, data):
    platform = make_platform(LocalPlatform, roots, local_job(data, ALEKSEYLEARN_SANDBOXED="1"))
    env, _ = jobs.prepare(platform)
    assert env["AIP_MODEL_DIR"] == "gs://alekseylearn-job/j/model/"
    assert env["AIP_CHECKPOINT_DIR"] == "gs://alekseylearn-job/j/checkpoints/"
    assert env["AIP_TENSORBOARD_LOG_DIR"] == "gs://alekseylearn-job/j/logs/"
    assert resolves_to(roots.gcs / "alekseylearn-job" / "j" / "model", roots.ml / "model")
    assert resolves_to(roots.gcs / "alekseylearn-job" / "j" / "checkpoints", roots.ml / "checkpoints")
    assert resolves_to(roots.gcs / "alekseylearn-job" / "j" / "logs", roots.ml / "output" / "data" / "logs")


def test_local_sandboxed_gives_kaggles_folders(roots, data):
    platform = make_platform(LocalPlatform, roots, local_job(data, ALEKSEYLEARN_SANDBOXED="1"))
    jobs.prepare(platform)
    assert resolves_to(roots.kaggle / "input" / "train", data)
    assert sorted(os.listdir(roots.kaggle / "input" / "train")) == ["a.csv"]
    assert resolves_to(roots.kaggle / "working", roots.ml / "model")


def test_local_without_a_sandbox_names_the_jobs_own_folders_and_touches_no_root(roots, data):
    platform = make_platform(LocalPlatform, roots, local_job(data))
    env, _ = jobs.prepare(platform)
    assert env["AIP_MODEL_DIR"] == str(roots.ml / "model")
    assert env["AIP_CHECKPOINT_DIR"] == str(roots.ml / "checkpoints")
    assert env["AIP_TENSORBOARD_LOG_DIR"] == str(roots.ml / "output" / "data" / "logs")
    assert not roots.gcs.exists()
    assert not roots.kaggle.exists()


def test_local_writes_the_config_files_and_lays_the_channels_out(roots, data):
    platform = make_platform(LocalPlatform, roots, local_job(data), ["--lr", "0.10"])
    env, args = jobs.prepare(platform)
    config = roots.ml / "input" / "config"
    assert json.loads((config / "hyperparameters.json").read_text()) == {"lr": "0.10"}
    assert sorted(json.loads((config / "inputdataconfig.json").read_text())) == ["train"]
    assert os.listdir(roots.ml / "input" / "data" / "train") == ["a.csv"]
    assert args == ["--lr", "0.1"]
    assert env["SM_CHANNEL_TRAIN"] == str(roots.ml / "input" / "data" / "train")
    assert env["TRAINING_JOB_NAME"] == "j"
    assert json.loads(env["CLUSTER_SPEC"])["cluster"] == {"workerpool0": ["127.0.0.1:2222"]}
    assert json.loads(env["TF_CONFIG"])["task"] == {"type": "chief", "index": 0}


def test_local_supervised_leaves_the_working_folder_to_alekseylearn(roots, data):
    assert make_platform(LocalPlatform, roots, local_job(data)).keeps_working_files is True
    assert make_platform(LocalPlatform, roots, local_job(data, ALEKSEYLEARN_SUPERVISED="1")).keeps_working_files is False


def test_a_missing_channel_source_fails_the_job_naming_it(roots, tmp_path):
    missing = tmp_path / "gone"
    platform = make_platform(LocalPlatform, roots, local_job(missing))
    with pytest.raises(jobs.JobFailure, match=str(missing)):
        jobs.prepare(platform)


# --- container -------------------------------------------------------------------------------------------------------


def test_a_container_owns_gcs_and_kaggle(roots, data):
    platform = make_platform(ContainerPlatform, roots, local_job(data))
    env, _ = jobs.prepare(platform)
    assert env["AIP_MODEL_DIR"] == "gs://alekseylearn-job/j/model/"
    assert resolves_to(roots.gcs / "alekseylearn-job" / "j" / "model", roots.ml / "model")
    assert resolves_to(roots.kaggle / "input" / "train", data)
    assert resolves_to(roots.kaggle / "working", roots.ml / "model")
    assert (roots.ml / "input" / "config" / "hyperparameters.json").exists()


# --- sagemaker -------------------------------------------------------------------------------------------------------


def sagemaker_config(roots, current="algo-2"):
    """resourceconfig.json as SageMaker writes it for a two-instance job."""
    config = {
        "current_host": current,
        "current_instance_type": "ml.m5.xlarge",
        "current_group_name": "homogeneousCluster",
        "hosts": ["algo-1", "algo-2"],
        "instance_groups": [{"instance_group_name": "homogeneousCluster", "instance_type": "ml.m5.xlarge", "hosts": ["algo-1", "algo-2"]}],
        "network_interface_name": "eth0",
    }
    write(roots.ml / "input" / "config" / "resourceconfig.json", json.dumps(config))
    write(roots.ml / "input" / "config" / "hyperparameters.json", '{"lr": "0.5"}')


def test_sagemaker_hosts_come_from_resourceconfig(roots):
    sagemaker_config(roots)
    env, args = jobs.prepare(make_platform(SageMakerPlatform, roots, {"ALEKSEYLEARN_ENTRY": "train.py"}))
    assert env["SM_CURRENT_HOST"] == "algo-2"
    assert env["SM_HOSTS"] == '["algo-1","algo-2"]'
    assert env["SM_CURRENT_INSTANCE_TYPE"] == "ml.m5.xlarge"
    assert json.loads(env["CLUSTER_SPEC"]) == {
        "cluster": {"workerpool0": ["algo-1:2222"], "workerpool1": ["algo-2:2222"]},
        "environment": "cloud",
        "task": {"type": "workerpool1", "index": 0},
    }
    assert args == ["--lr", "0.5"]


def test_sagemaker_config_files_are_left_as_sagemaker_wrote_them(roots, data):
    sagemaker_config(roots)
    before = {p.name: p.read_text() for p in (roots.ml / "input" / "config").iterdir()}
    platform = make_platform(SageMakerPlatform, roots, local_job(data), ["--lr", "0.1"])
    jobs.prepare(platform)
    after = {p.name: p.read_text() for p in (roots.ml / "input" / "config").iterdir()}
    assert after == before
    assert os.listdir(roots.ml / "input" / "data") == [], "SageMaker downloads the channels itself"


# --- vertex ----------------------------------------------------------------------------------------------------------

SPEC = {
    # Listed out of order on purpose: the pools' order is 0, 1, 2, 3 whatever the JSON's.
    "cluster": {"workerpool2": ["10.0.0.4:2222"], "workerpool1": ["10.0.0.2:2222", "10.0.0.3:2222"], "workerpool0": ["10.0.0.1:2222"]},
    "environment": "cloud",
    "task": {"type": "workerpool1", "index": 1},
}


def vertex(roots, channels=None, spec=SPEC, **more):
    environ = {"ALEKSEYLEARN_ENTRY": "train.py", "TRAINING_JOB_NAME": "j", "CLUSTER_SPEC": json.dumps(spec), **more}
    if channels:
        environ["ALEKSEYLEARN_INPUTS"] = json.dumps({name: str(path) for name, path in channels.items()})
    return make_platform(VertexPlatform, roots, environ)


def test_vertex_hosts_come_from_cluster_spec_in_pool_order(roots):
    env, _ = jobs.prepare(vertex(roots, ALEKSEYLEARN_MACHINE_TYPE="a2-highgpu-1g"))
    assert env["SM_HOSTS"] == '["algo-1","algo-2","algo-3","algo-4"]'
    assert env["SM_CURRENT_HOST"] == "algo-3"
    assert env["SM_CURRENT_INSTANCE_TYPE"] == "a2-highgpu-1g"
    resource = json.loads((roots.ml / "input" / "config" / "resourceconfig.json").read_text())
    assert resource["current_host"] == "algo-3"


def test_vertex_master_addr_and_port_are_the_chiefs(roots):
    env, _ = jobs.prepare(vertex(roots))
    assert env["MASTER_ADDR"] == "10.0.0.1"
    assert env["MASTER_PORT"] == "2222"
    assert "CLUSTER_SPEC" not in env, "Vertex sets CLUSTER_SPEC and TF_CONFIG itself"


def test_vertex_adds_the_algo_names_to_the_hosts_file_once(roots):
    write(roots.hosts, "127.0.0.1\tlocalhost\n")
    jobs.prepare(vertex(roots))
    jobs.prepare(vertex(roots))
    assert roots.hosts.read_text() == "127.0.0.1\tlocalhost\n10.0.0.1\talgo-1\n10.0.0.2\talgo-2\n10.0.0.3\talgo-3\n10.0.0.4\talgo-4\n"


def test_vertex_keeps_a_hosts_files_last_line_without_a_newline_whole(roots):
    write(roots.hosts, "127.0.0.1\tlocalhost")
    jobs.prepare(vertex(roots))
    assert roots.hosts.read_text().splitlines()[:2] == ["127.0.0.1\tlocalhost", "10.0.0.1\talgo-1"]


def test_vertex_waits_for_a_peer_whose_name_does_not_resolve_yet(roots, monkeypatch, capsys):
    # understanding-training-service: replicas start in parallel and each runs its code as soon as its machine is up, so a
    # peer's CLUSTER_SPEC name (cmle-training-workerpool1-…-0) may resolve only once that peer has started.
    spec = {"cluster": {"workerpool0": ["chief-host:2222"], "workerpool1": ["late-host:2222"]}, "task": {"type": "workerpool1", "index": 0}}
    tries = {"late-host": 0}

    def resolve(name):
        if name == "late-host":
            tries[name] += 1
            if tries[name] < 3:
                raise OSError("Name or service not known")
            return "10.1.0.2"
        return {"chief-host": "10.1.0.1"}[name]

    monkeypatch.setattr(vertex_module.socket, "gethostbyname", resolve)
    write(roots.hosts, "127.0.0.1\tlocalhost\n")
    platform = vertex(roots, CLUSTER_SPEC=json.dumps(spec))
    platform.resolve_interval, platform.resolve_notice = 0.01, 0.0
    jobs.prepare(platform)
    assert tries["late-host"] == 3
    assert roots.hosts.read_text() == "127.0.0.1\tlocalhost\n10.1.0.1\talgo-1\n10.1.0.2\talgo-2\n"
    assert "waiting for algo-2 (late-host) to resolve" in capsys.readouterr().err


def test_vertex_gives_up_on_a_name_that_never_resolves_and_says_so(roots, monkeypatch, capsys):
    spec = {"cluster": {"workerpool0": ["10.1.0.1:2222"], "workerpool1": ["never-host:2222"]}, "task": {"type": "workerpool0", "index": 0}}
    real = vertex_module.socket.gethostbyname

    def resolve(name):
        if name == "never-host":
            raise OSError("Name or service not known")
        return real(name)

    monkeypatch.setattr(vertex_module.socket, "gethostbyname", resolve)
    write(roots.hosts, "127.0.0.1\tlocalhost\n")
    platform = vertex(roots, CLUSTER_SPEC=json.dumps(spec), ALEKSEYLEARN_RESOLVE_TIMEOUT="0.05")
    platform.resolve_interval = 0.01
    env, _ = jobs.prepare(platform)
    assert roots.hosts.read_text() == "127.0.0.1\tlocalhost\n10.1.0.1\talgo-1\n"
    assert "algo-2 (never-host in CLUSTER_SPEC) did not resolve within 0.05s" in capsys.readouterr().err
    assert env["SM_HOSTS"] == '["algo-1","algo-2"]'


def test_vertex_without_gcs_mounted_writes_nothing_through_gcs_when_it_finishes(roots):
    out = roots.gcs / "bucket" / "j" / "output"
    platform = vertex(roots, {"train": roots.gcs / "bucket" / "data"}, ALEKSEYLEARN_OUTPUT_DIR=str(out))
    platform.spec, platform._current = {}, 0  # the chief, which packs the model
    with pytest.raises(jobs.JobFailure):
        jobs.prepare(platform)
    platform.finish(1)
    assert not out.exists(), "a model packed into an unmounted /gcs would stay in the machine"


def test_vertex_without_gcs_mounted_fails_naming_gcs(roots):
    # The gcs root is a plain folder under tmp_path, not a mount point: Cloud Storage FUSE is missing.
    inputs = roots.gcs / "bucket" / "data"
    inputs.mkdir(parents=True)
    with pytest.raises(jobs.JobFailure) as failure:
        jobs.prepare(vertex(roots, {"train": inputs}))
    assert "Cloud Storage FUSE is not mounted at %s" % roots.gcs in str(failure.value)
    assert str(inputs) in str(failure.value)


def test_vertex_with_nothing_in_gcs_does_not_need_the_mount(roots, tmp_path):
    data = tmp_path / "local-data"
    data.mkdir()
    env, _ = jobs.prepare(vertex(roots, {"train": data}))
    assert env["SM_CHANNELS"] == '["train"]'


def test_vertex_lays_gcs_inputs_out_as_channels_and_kaggle_links(roots, monkeypatch):
    monkeypatch.setattr(VertexPlatform, "gcs_mounted", lambda self: True)
    write(roots.gcs / "bucket" / "train" / "a.csv", "1\n")
    write(roots.gcs / "bucket" / "one.csv", "3\n")
    jobs.prepare(vertex(roots, {"train": roots.gcs / "bucket" / "train", "one": roots.gcs / "bucket" / "one.csv"}))
    assert os.listdir(roots.ml / "input" / "data" / "train") == ["a.csv"]
    assert os.listdir(roots.ml / "input" / "data" / "one") == ["one.csv"]
    assert resolves_to(roots.kaggle / "input" / "train", roots.gcs / "bucket" / "train")
    assert resolves_to(roots.kaggle / "working", roots.ml / "model")


def test_vertex_job_prepared_twice_in_one_machine_starts_clean(roots, monkeypatch):
    # understanding-training-service: a worker that exits non-zero is restarted in the same VM: /opt/ml is still there.
    monkeypatch.setattr(VertexPlatform, "gcs_mounted", lambda self: True)
    write(roots.gcs / "bucket" / "train" / "a.csv", "1\n")
    write(roots.gcs / "bucket" / "one.csv", "3\n")
    channels = {"train": roots.gcs / "bucket" / "train", "one": roots.gcs / "bucket" / "one.csv"}
    jobs.prepare(vertex(roots, channels))
    write(roots.ml / "output" / "failure", "the first run's reason\n")
    env, _ = jobs.prepare(vertex(roots, channels))
    assert not (roots.ml / "output" / "failure").exists()
    assert os.listdir(roots.ml / "input" / "data" / "train") == ["a.csv"]
    assert os.listdir(roots.ml / "input" / "data" / "one") == ["one.csv"]
    assert resolves_to(roots.kaggle / "input" / "train", roots.gcs / "bucket" / "train")
    assert resolves_to(roots.kaggle / "working", roots.ml / "model")
    assert env["SM_CHANNELS"] == '["one","train"]'


def test_vertex_finish_uses_aip_model_dir_when_the_script_saved_its_model_there(roots, monkeypatch):
    # code-requirements: a script written for Vertex saves to $AIP_MODEL_DIR (through /gcs); that is the model then.
    monkeypatch.setattr(VertexPlatform, "gcs_mounted", lambda self: True)
    out = roots.gcs / "bucket" / "j" / "output"
    chief = {"cluster": {"workerpool0": ["10.0.0.1:2222"]}, "task": {"type": "workerpool0", "index": 0}}
    platform = vertex(roots, spec=chief, AIP_MODEL_DIR="gs://bucket/j/model/", ALEKSEYLEARN_OUTPUT_DIR=str(out))
    jobs.prepare(platform)
    write(roots.gcs / "bucket" / "j" / "model" / "saved_model.pb", "m")
    platform.finish(0)
    with tarfile.open(str(out / "model.tar.gz")) as tar:
        assert tar.getnames() == ["saved_model.pb"]
