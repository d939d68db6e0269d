"""What a job is told, on every platform: SageMaker's /opt/ml/input/config files, Vertex AI's variables and Kaggle's
folders, built from the job's description and its hosts. Each function here is pure or touches only the paths it is given."""

import os

# jsontext, not json: json's import (re, enum, functools, collections) would cost every job's start-up; same text.
from . import jsontext


class JobFailure(Exception):
    """The job cannot run or finish as asked; the message is its failure reason, as the platform shows it."""


class Host(tuple):
    """One machine of the job: the name the contract gives it (SageMaker's algo-N) and an address that reaches it.

    collections.namedtuple("Host", "name address") written out: collections' import would cost every job's start-up."""

    __slots__ = ()

    def __new__(cls, name, address):
        return tuple.__new__(cls, (name, address))

    @property
    def name(self):
        return self[0]

    @property
    def address(self):
        return self[1]

    def __repr__(self):
        return "Host(name=%r, address=%r)" % self

    def __getnewargs__(self):
        return tuple(self)


GROUP = "homogeneousCluster"
#: The port Vertex AI names in CLUSTER_SPEC for every replica (cloud.google.com/vertex-ai/docs/training/distributed-training).
VERTEX_PORT = 2222
#: The rendezvous port where a platform names none: SageMaker SDK v3's (github:aws/sagemaker-python-sdk,
#: sagemaker-train/src/sagemaker/train/container_drivers/scripts/environment.py: SM_MASTER_PORT = 7777).
MASTER_PORT = 7777
#: What a job's processes are launched with: the script itself once per host, or torchrun's workers.
DISTRIBUTIONS = ("none", "torchrun")
#: The bucket the Vertex AI variables name where the job is not on Vertex; /gcs/BUCKET leads to the job's own folders.
LOCAL_BUCKET = "alekseylearn-job"


def config_files(hyperparameters, channels, hosts, current, instance_type):
    """The files SageMaker writes under /opt/ml/input/config, by name, as it writes them for a File-mode job."""
    names = [host.name for host in hosts]
    return {
        "hyperparameters.json": dict(hyperparameters),
        "resourceconfig.json": {
            "current_host": names[current],
            "current_instance_type": instance_type,
            "current_group_name": GROUP,
            "hosts": names,
            "instance_groups": [{"instance_group_name": GROUP, "instance_type": instance_type, "hosts": names}],
            "network_interface_name": "eth0",
        },
        "inputdataconfig.json": {
            channel: {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"}
            for channel in sorted(channels)
        },
    }


def write_config(base, files):
    config = os.path.join(base, "input", "config")
    os.makedirs(config, exist_ok=True)
    for name, content in files.items():
        with open(os.path.join(config, name), "w") as handle:
            handle.write(jsontext.dumps(content, indent=2) + "\n")


def cluster_spec(hosts, current, port=VERTEX_PORT):
    """CLUSTER_SPEC in Vertex AI's documented layout: the chief alone in workerpool0, the other hosts in workerpool1."""
    addresses = ["%s:%d" % (host.address, port) for host in hosts]
    cluster = {"workerpool0": addresses[:1]}
    if len(addresses) > 1:
        cluster["workerpool1"] = addresses[1:]
    task = {"type": "workerpool0", "index": 0} if current == 0 else {"type": "workerpool1", "index": current - 1}
    return {"cluster": cluster, "environment": "cloud", "task": task}


def tf_config(spec):
    """TF_CONFIG as Vertex AI sets it from CLUSTER_SPEC: workerpool0 is the chief, workerpool1 the workers."""
    roles = {"workerpool0": "chief", "workerpool1": "worker", "workerpool2": "ps", "workerpool3": "evaluator"}
    cluster = {roles[pool]: list(addresses) for pool, addresses in spec["cluster"].items() if pool in roles}
    task = spec["task"]
    return {"cluster": cluster, "task": {"type": roles.get(task["type"], task["type"]), "index": task["index"]}, "environment": "cloud"}


def hosts_from_cluster_spec(spec):
    """Vertex's CLUSTER_SPEC as SageMaker's hosts: pool 0's replica is algo-1, then pool 1's, 2's and 3's in order; each
    with its address (the host part of HOST:PORT); and this replica's index among them."""
    cluster = spec.get("cluster") or {}
    addresses, offsets = [], {}
    for pool in ("workerpool0", "workerpool1", "workerpool2", "workerpool3"):
        offsets[pool] = len(addresses)
        addresses += list(cluster.get(pool) or [])
    if not addresses:
        addresses = ["localhost:%d" % VERTEX_PORT]
    hosts = [Host("algo-%d" % (i + 1), address.rsplit(":", 1)[0]) for i, address in enumerate(addresses)]
    task = spec.get("task") or {}
    current = offsets.get(task.get("type", "workerpool0"), 0) + int(task.get("index", 0))
    return hosts, min(current, len(hosts) - 1), addresses


def rendezvous_variables(hosts, current, address, port, processes=1):
    """What a multi-host script needs to meet its peers, one process per host (torchrun gives each of its workers its own
    RANK, LOCAL_RANK and WORLD_SIZE): torch.distributed's env:// variables (pytorch.org/docs/stable/distributed.html,
    "Environment variable initialization"), and SageMaker SDK v3's (container_drivers/scripts/environment.py sets
    SM_MASTER_ADDR to the first host's NAME, algo-1, and common/utils.py's is_master_node compares it with
    SM_CURRENT_HOST; SM_HOST_COUNT, SM_CURRENT_HOST_RANK beside them)."""
    return {
        "MASTER_ADDR": address,
        "MASTER_PORT": str(port),
        "WORLD_SIZE": str(len(hosts) * processes),
        "RANK": str(current * processes),
        "NODE_RANK": str(current),
        "LOCAL_RANK": "0",
        "SM_MASTER_ADDR": hosts[0].name,
        "SM_MASTER_PORT": str(port),
        "SM_HOST_COUNT": str(len(hosts)),
        "SM_CURRENT_HOST_RANK": str(current),
    }


def torchrun_command(python, entry, args, hosts, current, *, processes, address, port):
    """torchrun (torch.distributed.run, in the job's own Python) launching `processes` workers on this host, the
    rendezvous on the first host (pytorch.org/docs/stable/elastic/run.html: --nnodes, --node_rank, --nproc_per_node,
    --master_addr, --master_port)."""
    return [
        python,
        "-u",
        "-m",
        "torch.distributed.run",
        "--nnodes",
        str(len(hosts)),
        "--node_rank",
        str(current),
        "--nproc_per_node",
        str(processes),
        "--master_addr",
        address,
        "--master_port",
        str(port),
        entry,
        *args,
    ]


def vertex_variables(job_name, folders, owns_gcs):
    """AIP_MODEL_DIR, AIP_CHECKPOINT_DIR and AIP_TENSORBOARD_LOG_DIR where Vertex does not set them: gs:// URIs whose /gcs
    paths lead to the job's own folders when /gcs is the job's own, else those folders' paths (so a script's gs:// → /gcs/
    conversion never fires on a machine whose /gcs is not the job's)."""
    variables = {}
    for name, (sub, folder) in folders.items():
        variables[name] = "gs://%s/%s/%s/" % (LOCAL_BUCKET, job_name, sub) if owns_gcs else folder
    return variables


def gcs_links(gcs, job_name, folders):
    """/gcs/BUCKET/JOB/SUB → the job's folder, for each variable vertex_variables names, so writes through /gcs land there."""
    for sub, folder in folders.values():
        link(folder, os.path.join(gcs, LOCAL_BUCKET, job_name, sub))


def kaggle_links(kaggle, channels, model):
    """Kaggle's folders: /kaggle/input/NAME holds channel NAME, and /kaggle/working, whose files Kaggle keeps, is the model folder."""
    for name, path in channels.items():
        link(path, os.path.join(kaggle, "input", name))
    link(model, os.path.join(kaggle, "working"))


def link(source, target):
    """A symbolic link target → source, replacing a link already there (a job prepared twice in one machine)."""
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if os.path.islink(target):
        os.unlink(target)
    elif os.path.isdir(target) and not os.listdir(target):
        os.rmdir(target)
    os.symlink(source, target)


def lay_channel(source, target):
    """Channel data at target: a folder as the channel itself, a single file inside the channel's folder (as SageMaker copies
    an object into it). A source that is neither fails the job, naming it."""
    if os.path.abspath(source) == os.path.abspath(target):
        return
    if os.path.isdir(source):
        link(source, target)
    elif os.path.isfile(source):
        if os.path.islink(target):
            os.unlink(target)
        os.makedirs(target, exist_ok=True)
        link(source, os.path.join(target, os.path.basename(source)))
    else:
        raise JobFailure("input channel %s: %s is neither a folder nor a file" % (os.path.basename(target), source))


def copy_tree(source, target):
    """Every file of source into target, over what is there (shutil.copytree's dirs_exist_ok needs Python 3.8's shutil)."""
    import shutil

    for root, _, files in os.walk(source):
        for name in files:
            full = os.path.join(root, name)
            dest = os.path.join(target, os.path.relpath(full, source))
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            shutil.copy2(full, dest)
