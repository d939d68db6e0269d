"""What every platform adapter answers. The defaults are those of a single machine that gives a job nothing of its own
(the local backend): the runtime writes SageMaker's config files and gives Vertex AI's and Kaggle's contracts too."""

import os

from .. import contract, jsontext, toolkit
from ..contract import Host
from ..toolkit import read_json

#: Where the contracts' roots are; tests point them elsewhere.
ML_ROOT, GCS_ROOT, KAGGLE_ROOT = "/opt/ml", "/gcs", "/kaggle"


class Platform:
    name = "base"
    #: True when the platform writes no /opt/ml/input/config of its own, so the runtime writes it.
    writes_config = True
    #: True when this runtime packs what the job leaves in its working folder (false where alekseylearn watches it from outside).
    keeps_working_files = True

    def __init__(self, job, environ, base=None):
        self.job = job
        self.environ = environ
        self.base = base or environ.get("SAGEMAKER_BASE_DIR") or ML_ROOT
        self.gcs = GCS_ROOT
        self.kaggle = KAGGLE_ROOT
        #: True for a preview: nothing outside the job's folder is made.
        self.dry = False

    def owns_roots(self):
        """True when /gcs and /kaggle are the job's own (a container, a sandbox), so the runtime may make them lead to its folders."""
        return False

    def hosts(self):
        """The job's machines, in SageMaker's order (algo-1 first), each with an address that reaches it."""
        return [Host("algo-1", "127.0.0.1")]

    def current_host(self):
        """This machine's index in hosts()."""
        return 0

    def instance_type(self):
        return "local"

    def master(self, hosts):
        """The rendezvous, (address, port): where the first host's rank 0 listens and every host meets it. The default is
        the first host's address and the port alekseylearn chose for the job (ALEKSEYLEARN_MASTER_PORT: a free port on
        this machine), else SageMaker SDK v3's 7777. An adapter whose platform names another overrides this (Vertex: the
        chief's CLUSTER_SPEC address; Slurm: the first node's NodeAddr and a port from the job id)."""
        return hosts[0].address, int(self.environ.get("ALEKSEYLEARN_MASTER_PORT") or contract.MASTER_PORT)

    def processes(self):
        """Processes per host: one, or with torchrun config.processes_per_host (default the host's GPUs, else 1)."""
        if self.job.distribution != "torchrun":
            return 1
        return self.job.processes_per_host or toolkit.num_gpus() or 1

    def rendezvous(self, hosts, current):
        """The variables of rendezvous_variables; any the platform itself set already (Vertex AI's prebuilt PyTorch
        containers set MASTER_ADDR and MASTER_PORT: cloud.google.com/ai-platform/training/docs/distributed-pytorch) are
        left as the platform set them, and the rendezvous is theirs."""
        address, port = self.master(hosts)
        address = self.environ.get("MASTER_ADDR") or address
        port = self.environ.get("MASTER_PORT") or port
        variables = contract.rendezvous_variables(hosts, current, address, port, self.processes())
        return {name: value for name, value in variables.items() if name not in self.environ}

    def code_dir(self):
        """Where the job's code is (the toolkit's module_dir): the working folder it runs in."""
        return os.getcwd()

    def channel_sources(self):
        """Channel name → where its data is on this machine, to be laid out at /opt/ml/input/data/NAME."""
        return dict(self.job.channels)

    def prepare(self):
        """Whatever the platform needs before the contract is laid out (mounts checked, checkpoints restored)."""

    def finish(self, code):
        """Hand the finished job back as the platform expects (the model packed where it is looked for)."""

    def contract_variables(self, hosts, current):
        """The variables of the other platforms' contracts (Vertex AI's), and their folders (Vertex's /gcs, Kaggle's), for a
        file written for any of them."""
        variables = {}
        owns = self.owns_roots()
        folders = self.vertex_folders()
        if not self.dry:
            # Each folder the variables name exists, as a gs:// prefix does for a script that lists or walks it.
            for _, folder in folders.values():
                os.makedirs(folder, exist_ok=True)
        if owns and not self.dry:
            contract.gcs_links(self.gcs, self.job.name, folders)
            contract.kaggle_links(self.kaggle, self.channel_folders(), os.path.join(self.base, "model"))
        variables.update(contract.vertex_variables(self.job.name, folders, owns))
        spec = contract.cluster_spec(hosts, current)
        variables["CLUSTER_SPEC"] = jsontext.dumps(spec)
        variables["TF_CONFIG"] = jsontext.dumps(contract.tf_config(spec))
        return variables

    def tidy(self):
        """After the script: a folder made only so that a variable could name it (AIP_TENSORBOARD_LOG_DIR's), and left empty,
        is removed, so that no empty folder lands in output.tar.gz."""
        try:
            os.rmdir(self.vertex_folders()["AIP_TENSORBOARD_LOG_DIR"][1])
        except OSError:
            pass  # written to, or never made

    def channel_folders(self):
        """Channel name → its folder under /opt/ml/input/data, by the config the platform (or the runtime) wrote."""
        config = read_json(os.path.join(self.base, "input", "config", "inputdataconfig.json"), {})
        return {name: os.path.join(self.base, "input", "data", name) for name in config}

    def vertex_folders(self):
        """Vertex AI's variables → (the folder's name under the job's gs:// prefix, the job's own folder they name)."""
        return {
            "AIP_MODEL_DIR": ("model", os.path.join(self.base, "model")),
            "AIP_CHECKPOINT_DIR": ("checkpoints", os.path.join(self.base, "checkpoints")),
            "AIP_TENSORBOARD_LOG_DIR": ("logs", os.path.join(self.base, "output", "data", "logs")),
        }
