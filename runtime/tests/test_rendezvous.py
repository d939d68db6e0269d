"""The rendezvous every host of a multi-host job gets, per platform: torch.distributed's env:// variables
(pytorch.org/docs/stable/distributed.html, "Environment variable initialization": MASTER_ADDR, MASTER_PORT, WORLD_SIZE,
RANK) with NODE_RANK and LOCAL_RANK, SageMaker SDK v3's SM_MASTER_ADDR/SM_MASTER_PORT (github:aws/sagemaker-python-sdk,
sagemaker-train/src/sagemaker/train/container_drivers/scripts/environment.py; common/utils.py's is_master_node compares
SM_CURRENT_HOST with SM_MASTER_ADDR), and the torchrun launch (pytorch.org/docs/stable/elastic/run.html)."""

import json
import sys

import pytest

from alekseylearn_runtime import job as jobs
from alekseylearn_runtime import toolkit
from alekseylearn_runtime.platforms import LocalPlatform, SageMakerPlatform, VertexPlatform

from .helpers import make_platform, write

JOB = {"ALEKSEYLEARN_ENTRY": "train.py", "TRAINING_JOB_NAME": "j"}


def is_master_node(env):
    """SDK v3's is_master_node (container_drivers/common/utils.py), on the variables a host's script gets."""
    return env["SM_CURRENT_HOST"] == env["SM_MASTER_ADDR"]


def rendezvous(env):
    names = ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK", "NODE_RANK", "LOCAL_RANK", "SM_MASTER_ADDR", "SM_MASTER_PORT")
    return {name: env.get(name) for name in names}


def test_one_local_host_meets_itself_on_the_default_port(roots):
    env, _ = jobs.prepare(make_platform(LocalPlatform, roots, JOB))
    assert rendezvous(env) == {
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": "7777",
        "WORLD_SIZE": "1",
        "RANK": "0",
        "NODE_RANK": "0",
        "LOCAL_RANK": "0",
        "SM_MASTER_ADDR": "algo-1",
        "SM_MASTER_PORT": "7777",
    }
    assert is_master_node(env)


def test_local_hosts_in_a_sandbox_meet_at_algo_1_by_name_on_the_jobs_port(roots):
    more = {"ALEKSEYLEARN_HOSTS": "algo-1,algo-2", "ALEKSEYLEARN_CURRENT_HOST": "algo-2", "ALEKSEYLEARN_MASTER_PORT": "41234"}
    env, _ = jobs.prepare(make_platform(LocalPlatform, roots, {**JOB, "ALEKSEYLEARN_SANDBOXED": "1", **more}))
    assert rendezvous(env) == {
        "MASTER_ADDR": "algo-1",
        "MASTER_PORT": "41234",
        "WORLD_SIZE": "2",
        "RANK": "1",
        "NODE_RANK": "1",
        "LOCAL_RANK": "0",
        "SM_MASTER_ADDR": "algo-1",
        "SM_MASTER_PORT": "41234",
    }
    assert env["SM_HOSTS"] == '["algo-1","algo-2"]'
    assert env["SM_CURRENT_HOST"] == "algo-2"
    assert not is_master_node(env)
    resource = json.loads((roots.ml / "input" / "config" / "resourceconfig.json").read_text())
    assert (resource["current_host"], resource["hosts"]) == ("algo-2", ["algo-1", "algo-2"])


def test_local_hosts_without_a_sandbox_meet_at_127_0_0_1(roots):
    more = {"ALEKSEYLEARN_HOSTS": "algo-1,algo-2", "ALEKSEYLEARN_CURRENT_HOST": "algo-1", "ALEKSEYLEARN_MASTER_PORT": "41234"}
    env, _ = jobs.prepare(make_platform(LocalPlatform, roots, {**JOB, **more}))
    assert (env["MASTER_ADDR"], env["RANK"], env["WORLD_SIZE"]) == ("127.0.0.1", "0", "2")
    assert is_master_node(env)


def sagemaker_hosts(roots, current):
    """resourceconfig.json as SageMaker writes it for a three-instance job."""
    names = ["algo-1", "algo-2", "algo-3"]
    config = {
        "current_host": current,
        "current_instance_type": "ml.g5.xlarge",
        "current_group_name": "homogeneousCluster",
        "hosts": names,
        "instance_groups": [{"instance_group_name": "homogeneousCluster", "instance_type": "ml.g5.xlarge", "hosts": names}],
        "network_interface_name": "eth0",
    }
    write(roots.ml / "input" / "config" / "resourceconfig.json", json.dumps(config))


def test_sagemaker_hosts_meet_at_algo_1_on_sdk_v3s_port(roots):
    sagemaker_hosts(roots, "algo-3")
    env, _ = jobs.prepare(make_platform(SageMakerPlatform, roots, JOB))
    assert rendezvous(env) == {
        "MASTER_ADDR": "algo-1",
        "MASTER_PORT": "7777",
        "WORLD_SIZE": "3",
        "RANK": "2",
        "NODE_RANK": "2",
        "LOCAL_RANK": "0",
        "SM_MASTER_ADDR": "algo-1",
        "SM_MASTER_PORT": "7777",
    }
    assert (env["SM_HOST_COUNT"], env["SM_CURRENT_HOST_RANK"]) == ("3", "2")
    assert not is_master_node(env)


def test_sagemakers_first_host_is_sdk_v3s_master_node(roots):
    sagemaker_hosts(roots, "algo-1")
    env, _ = jobs.prepare(make_platform(SageMakerPlatform, roots, JOB))
    assert is_master_node(env)
    assert env["RANK"] == "0"


SPEC = {
    "cluster": {"workerpool0": ["10.0.0.1:2222"], "workerpool1": ["10.0.0.2:2222", "10.0.0.3:2222"]},
    "environment": "cloud",
    "task": {"type": "workerpool1", "index": 1},
}


def test_vertex_hosts_meet_at_the_chiefs_cluster_spec_address(roots):
    env, _ = jobs.prepare(make_platform(VertexPlatform, roots, {**JOB, "CLUSTER_SPEC": json.dumps(SPEC)}))
    assert rendezvous(env) == {
        "MASTER_ADDR": "10.0.0.1",
        "MASTER_PORT": "2222",
        "WORLD_SIZE": "3",
        "RANK": "2",
        "NODE_RANK": "2",
        "LOCAL_RANK": "0",
        "SM_MASTER_ADDR": "algo-1",
        "SM_MASTER_PORT": "2222",
    }


def test_what_the_platform_set_itself_is_left_as_it_is(roots):
    # Vertex AI's prebuilt PyTorch containers set MASTER_ADDR and MASTER_PORT themselves (ai-platform/training/docs/distributed-pytorch).
    environ = {**JOB, "CLUSTER_SPEC": json.dumps(SPEC), "MASTER_ADDR": "cmle-master-0", "MASTER_PORT": "23456", "RANK": "2"}
    platform = make_platform(VertexPlatform, roots, environ)
    env, _ = jobs.prepare(platform)
    assert "MASTER_ADDR" not in env and "MASTER_PORT" not in env and "RANK" not in env
    assert env["SM_MASTER_PORT"] == "23456", "the rendezvous is the platform's"
    assert env["WORLD_SIZE"] == "3"


def test_an_adapter_names_its_own_rendezvous_through_master(roots):
    class Cluster(LocalPlatform):
        def master(self, hosts):
            return "10.9.9.9", 4242

    env, _ = jobs.prepare(make_platform(Cluster, roots, {**JOB, "ALEKSEYLEARN_HOSTS": "algo-1,algo-2"}))
    assert (env["MASTER_ADDR"], env["MASTER_PORT"], env["SM_MASTER_PORT"]) == ("10.9.9.9", "4242", "4242")


# --- torchrun --------------------------------------------------------------------------------------------------------


def test_torchrun_launches_the_script_with_the_hosts_and_the_rendezvous(roots):
    sagemaker_hosts(roots, "algo-2")
    platform = make_platform(
        SageMakerPlatform, roots, {**JOB, "ALEKSEYLEARN_DISTRIBUTION": "torchrun", "ALEKSEYLEARN_PROCESSES_PER_HOST": "2"}
    )
    env, args = jobs.prepare(platform)
    assert (env["WORLD_SIZE"], env["RANK"], env["NODE_RANK"]) == ("6", "2", "1")
    command = jobs.command_for(platform.job, platform.base, ["--lr", "0.1"], env, platform)
    assert command == [
        sys.executable,
        "-u",
        "-m",
        "torch.distributed.run",
        "--nnodes",
        "3",
        "--node_rank",
        "1",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "algo-1",
        "--master_port",
        "7777",
        "train.py",
        "--lr",
        "0.1",
    ]


@pytest.mark.parametrize("gpus, expected", [(0, "1"), (4, "4")])
def test_torchrun_runs_one_process_per_gpu_by_default_else_one(roots, monkeypatch, gpus, expected):
    monkeypatch.setattr(toolkit, "num_gpus", lambda: gpus)
    platform = make_platform(LocalPlatform, roots, {**JOB, "ALEKSEYLEARN_DISTRIBUTION": "torchrun"})
    env, _ = jobs.prepare(platform)
    command = jobs.command_for(platform.job, platform.base, [], env, platform)
    assert command[command.index("--nproc_per_node") + 1] == expected
    assert env["WORLD_SIZE"] == expected


def test_without_torchrun_one_process_per_host_whatever_processes_per_host_says(roots):
    platform = make_platform(LocalPlatform, roots, {**JOB, "ALEKSEYLEARN_PROCESSES_PER_HOST": "4"})
    env, _ = jobs.prepare(platform)
    assert env["WORLD_SIZE"] == "1"
    assert jobs.command_for(platform.job, platform.base, [], env, platform) == [sys.executable, "-u", "train.py"]


def test_an_unknown_distribution_fails_the_job_naming_it(roots):
    with pytest.raises(jobs.JobFailure, match="unknown distribution 'mpi'"):
        jobs.prepare(make_platform(LocalPlatform, roots, {**JOB, "ALEKSEYLEARN_DISTRIBUTION": "mpi"}))


def test_torchrun_refuses_a_notebook(roots):
    with pytest.raises(jobs.JobFailure, match="notebook"):
        jobs.prepare(make_platform(LocalPlatform, roots, {**JOB, "ALEKSEYLEARN_KIND": "notebook", "ALEKSEYLEARN_DISTRIBUTION": "torchrun"}))


def test_a_vertex_worker_says_its_model_folder_is_not_kept(roots, capsys):
    # Vertex keeps nothing of a replica's disk; the chief packs the job's model (platforms/vertex.py finish).
    platform = make_platform(VertexPlatform, roots, {**JOB, "CLUSTER_SPEC": json.dumps(SPEC)})
    jobs.prepare(platform)
    write(roots.ml / "model" / "model.pt", "w")
    platform.finish(0)
    assert "algo-3's model folder is not kept: on Vertex AI the job's model is algo-1's" in capsys.readouterr().err
