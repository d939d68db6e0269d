"""The Slurm adapter: hostlist expansion as `scontrol show hostnames` does it (slurm.schedmd.com/scontrol.html; checked
against Slurm 22.05.8's own `scontrol show hostnames 'node[1-3,5]'` → node1 node2 node3 node5), NodeAddr read from
`scontrol show node -o` (the line below is that command's real output on the test cluster, shortened), the rendezvous on
the first node's address, and a job folder per node by SLURM_NODEID."""

import os

import pytest

from alekseylearn_runtime import job as jobs
from alekseylearn_runtime.platforms import adapter, select, slurm

SCONTROL = (
    "NodeName=node1 Arch=x86_64 CoresPerSocket=1  CPUAlloc=0 CPUEfctv=2 NodeAddr=10.0.0.7 NodeHostName=vm Port=16818"
    " Version=22.05.8 OS=Linux 6.18.44 #1 SMP PREEMPT_DYNAMIC @0  RealMemory=1 State=IDLE Partitions=debug\n"
    "NodeName=node2 Arch=x86_64 CoresPerSocket=1  CPUAlloc=0 CPUEfctv=2 NodeAddr=10.0.0.8 NodeHostName=vm Port=16819"
    " Version=22.05.8 OS=Linux 6.18.44 #1 SMP PREEMPT_DYNAMIC @0  RealMemory=1 State=IDLE Partitions=debug\n"
)


@pytest.mark.parametrize(
    "text, names",
    [
        ("node1", ["node1"]),
        ("node[1-3,5]", ["node1", "node2", "node3", "node5"]),
        ("gpu[08-10],login", ["gpu08", "gpu09", "gpu10", "login"]),
        ("a[1-2]-b[1-2]", ["a1-b1", "a1-b2", "a2-b1", "a2-b2"]),
        ("x,y[3]", ["x", "y3"]),
    ],
)
def test_expand_hostlist_as_scontrol_show_hostnames(text, names):
    assert slurm.expand_hostlist(text) == names


def test_node_addresses_from_scontrol_show_node():
    assert slurm.node_addresses(SCONTROL) == {"node1": "10.0.0.7", "node2": "10.0.0.8"}


def fake_scontrol(tmp_path, monkeypatch, text):
    """An `scontrol` on PATH that prints `text` (the real one's output, above)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    program = bin_dir / "scontrol"
    program.write_text("#!/bin/sh\ncat <<'END'\n%sEND\n" % text)
    program.chmod(0o755)
    monkeypatch.setenv("PATH", "%s%s%s" % (bin_dir, os.pathsep, os.environ.get("PATH", "")))


def slurm_environ(tmp_path, node):
    return {
        "ALEKSEYLEARN_PLATFORM": "slurm",
        "ALEKSEYLEARN_ENTRY": "train.py",
        "TRAINING_JOB_NAME": "j",
        "ALEKSEYLEARN_SLURM_JOB_DIR": str(tmp_path / "job"),
        "SLURM_JOB_ID": "1234567",
        "SLURM_JOB_NODELIST": "node[1-2]",
        "SLURM_NODEID": str(node),
    }


def test_second_node_meets_the_first_nodes_address_on_a_port_from_the_job_id(tmp_path, monkeypatch):
    fake_scontrol(tmp_path, monkeypatch, SCONTROL)
    environ = slurm_environ(tmp_path, 1)
    platform = select(jobs.Job(environ), environ)
    assert isinstance(platform, adapter("slurm"))
    hosts = platform.hosts()
    assert [tuple(host) for host in hosts] == [("node1", "10.0.0.7"), ("node2", "10.0.0.8")]
    assert platform.current_host() == 1
    variables = platform.rendezvous(hosts, platform.current_host())
    assert variables["MASTER_ADDR"] == "10.0.0.7"
    assert variables["MASTER_PORT"] == str(15000 + 4567)
    assert (variables["WORLD_SIZE"], variables["RANK"], variables["NODE_RANK"], variables["LOCAL_RANK"]) == ("2", "1", "1", "0")
    assert variables["SM_MASTER_ADDR"] == "node1"


def test_each_node_has_its_own_job_folder(tmp_path, monkeypatch):
    fake_scontrol(tmp_path, monkeypatch, SCONTROL)
    bases = [select(jobs.Job(slurm_environ(tmp_path, n)), slurm_environ(tmp_path, n)).base for n in (0, 1)]
    assert bases == [str(tmp_path / "job" / "nodes" / "0" / "ml"), str(tmp_path / "job" / "nodes" / "1" / "ml")]


def test_a_node_name_is_its_address_when_scontrol_cannot_say(tmp_path, monkeypatch):
    fake_scontrol(tmp_path, monkeypatch, "")
    environ = slurm_environ(tmp_path, 0)
    platform = select(jobs.Job(environ), environ)
    assert [host.address for host in platform.hosts()] == ["node1", "node2"]
