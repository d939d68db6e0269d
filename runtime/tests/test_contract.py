"""contract.py: Vertex AI's CLUSTER_SPEC and TF_CONFIG (cloud.google.com/vertex-ai/docs/training/distributed-training),
and how channels are laid out at /opt/ml/input/data/NAME (SageMaker copies a folder's objects into the channel's folder,
and a single object into it too)."""

import os

import pytest

from alekseylearn_runtime import contract
from alekseylearn_runtime.contract import Host, JobFailure

from .helpers import write

HOSTS = [Host("algo-1", "10.0.0.1"), Host("algo-2", "10.0.0.2"), Host("algo-3", "10.0.0.3")]


def test_cluster_spec_puts_the_chief_alone_in_workerpool0_and_the_others_in_workerpool1():
    # distributed-training: "workerpool0" holds the primary replica, "workerpool1" the workers; every address HOST:2222.
    spec = contract.cluster_spec(HOSTS, 2)
    assert spec == {
        "cluster": {"workerpool0": ["10.0.0.1:2222"], "workerpool1": ["10.0.0.2:2222", "10.0.0.3:2222"]},
        "environment": "cloud",
        "task": {"type": "workerpool1", "index": 1},
    }


def test_tf_config_names_the_pools_as_vertex_does():
    # distributed-training: TF_CONFIG's cluster has chief (workerpool0), worker (1), ps (2), evaluator (3).
    spec = {
        "cluster": {"workerpool0": ["a:2222"], "workerpool1": ["b:2222"], "workerpool2": ["c:2222"], "workerpool3": ["d:2222"]},
        "task": {"type": "workerpool2", "index": 0},
    }
    assert contract.tf_config(spec) == {
        "cluster": {"chief": ["a:2222"], "worker": ["b:2222"], "ps": ["c:2222"], "evaluator": ["d:2222"]},
        "task": {"type": "ps", "index": 0},
        "environment": "cloud",
    }


def test_cluster_spec_hosts_are_named_algo_n_in_pool_order():
    # Pools in order 0..3 whatever order the JSON lists them in; this replica's index counted across the pools.
    spec = {"cluster": {"workerpool1": ["b:2222", "c:2222"], "workerpool0": ["a:2222"]}, "task": {"type": "workerpool1", "index": 1}}
    hosts, current, addresses = contract.hosts_from_cluster_spec(spec)
    assert hosts == [Host("algo-1", "a"), Host("algo-2", "b"), Host("algo-3", "c")]
    assert current == 2
    assert addresses == ["a:2222", "b:2222", "c:2222"]


def test_no_cluster_spec_is_one_local_host():
    hosts, current, addresses = contract.hosts_from_cluster_spec({})
    assert hosts == [Host("algo-1", "localhost")]
    assert current == 0
    assert addresses == ["localhost:2222"]


def test_a_folder_channel_is_the_channel_itself(tmp_path):
    source = tmp_path / "data"
    write(source / "a.csv", "1\n")
    target = tmp_path / "ml" / "input" / "data" / "train"
    contract.lay_channel(str(source), str(target))
    assert sorted(os.listdir(target)) == ["a.csv"]


def test_a_single_file_channel_lands_inside_the_channels_folder(tmp_path):
    # As SageMaker copies one S3 object into /opt/ml/input/data/NAME/.
    source = write(tmp_path / "one.csv", "3\n")
    target = tmp_path / "ml" / "input" / "data" / "one"
    contract.lay_channel(str(source), str(target))
    assert os.listdir(target) == ["one.csv"]
    assert (target / "one.csv").read_text() == "3\n"


def test_a_channel_source_that_is_neither_folder_nor_file_fails_the_job_naming_it(tmp_path):
    missing = tmp_path / "nowhere" / "train"
    with pytest.raises(JobFailure) as failure:
        contract.lay_channel(str(missing), str(tmp_path / "ml" / "input" / "data" / "train"))
    assert str(missing) in str(failure.value)
    assert "input channel train" in str(failure.value)


def test_a_link_made_again_replaces_the_old_one(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    target = tmp_path / "links" / "x"
    contract.link(str(first), str(target))
    contract.link(str(second), str(target))
    assert os.readlink(target) == str(second)


def test_vertex_variables_are_gs_uris_only_where_gcs_is_the_jobs_own():
    # code-requirements: AIP_MODEL_DIR etc. are gs:// URIs a script may turn into /gcs/ paths.
    folders = {"AIP_MODEL_DIR": ("model", "/opt/ml/model")}
    assert contract.vertex_variables("j", folders, True) == {"AIP_MODEL_DIR": "gs://alekseylearn-job/j/model/"}
    assert contract.vertex_variables("j", folders, False) == {"AIP_MODEL_DIR": "/opt/ml/model"}
