"""Google Cloud Vertex AI custom jobs. Vertex writes no /opt/ml of its own: the runtime writes SageMaker's config files
from the image's arguments and CLUSTER_SPEC, reads the channels through Cloud Storage FUSE at /gcs, syncs checkpoints
there while the job runs, and at the end packs the model to OUTPUT_PATH/JOB/output and copies it to $AIP_MODEL_DIR.

Sources: cloud.google.com/vertex-ai/docs/training/code-requirements (AIP_MODEL_DIR, AIP_CHECKPOINT_DIR,
AIP_TENSORBOARD_LOG_DIR, /gcs), …/training/distributed-training (CLUSTER_SPEC, TF_CONFIG, port 2222),
…/training/cloud-storage-file-system (/gcs), …/training/understanding-training-service (a worker that exits non-zero
is restarted in the same VM: preparing twice must work)."""

import json
import os
import shutil
import socket
import sys
import tarfile
import time

from .. import contract
from ..checkpoints import CheckpointSync
from ..contract import JobFailure
from .base import Platform


class VertexPlatform(Platform):
    name = "vertex"
    hosts_file = "/etc/hosts"
    #: Seconds to wait for the other replicas' CLUSTER_SPEC names to resolve: Vertex starts replicas in parallel and runs
    #: each one's code as soon as its machine is up (understanding-training-service), so a peer's name may not resolve yet.
    resolve_timeout = 600.0
    #: Seconds between two tries, and before a line says what is awaited.
    resolve_interval, resolve_notice = 0.2, 5.0

    def __init__(self, job, environ, base=None):
        super().__init__(job, environ, base)
        try:
            self.spec = json.loads(environ.get("CLUSTER_SPEC") or "{}")
        except ValueError:
            self.spec = {}
        self._hosts, self._current, self.addresses = contract.hosts_from_cluster_spec(self.spec)
        self.sync = None
        #: False once /gcs was found missing: nothing is then written "through" it (it would stay in this machine).
        self.gcs_ok = True
        timeout = environ.get("ALEKSEYLEARN_RESOLVE_TIMEOUT")
        if timeout:
            self.resolve_timeout = float(timeout)

    def owns_roots(self):
        return True  # /kaggle is the container's own; /gcs is Vertex's and never replaced (see contract_variables)

    def hosts(self):
        return self._hosts

    def current_host(self):
        return self._current

    def instance_type(self):
        return self.job.machine_type or "vertex"

    def chief(self):
        return self._current == 0

    def gcs_paths(self):
        """Every path the job reads or writes through Cloud Storage FUSE."""
        paths = [self.job.output_dir, self.job.checkpoints, *self.job.channels.values(), self.aip_model_dir()]
        return [path for path in paths if path and (path == self.gcs or path.startswith(self.gcs + "/"))]

    def aip_model_dir(self):
        """$AIP_MODEL_DIR as this machine sees it: a gs:// URI through the FUSE mount at /gcs; empty when unset."""
        aip = self.environ.get("AIP_MODEL_DIR") or ""
        return self.gcs + "/" + aip[len("gs://") :] if aip.startswith("gs://") else aip

    def gcs_mounted(self):
        if os.path.ismount(self.gcs):
            return True
        try:
            with open("/proc/self/mountinfo") as handle:
                return any(line.split()[4] == self.gcs for line in handle if len(line.split()) > 4)
        except OSError:
            return False

    def prepare(self):
        # Without the mount, a model written "to Cloud Storage" would stay in the VM and be lost while the job succeeds
        # (github:GoogleCloudPlatform/gcsfuse#4333: missing on some GPU machine types).
        if self.gcs_paths() and not self.gcs_mounted():
            self.gcs_ok = False
            raise JobFailure(
                "Cloud Storage FUSE is not mounted at %s in this Vertex AI machine, so the job's inputs and model (%s) cannot be "
                "read or saved; choose another machine_type or accelerator_type" % (self.gcs, self.gcs_paths()[0])
            )
        if self.dry:
            return
        self.name_hosts()
        if self.job.checkpoints:
            self.sync = CheckpointSync(os.path.join(self.base, "checkpoints"), self.job.checkpoints)
            self.sync.restore()
            self.sync.every(self.job.checkpoint_sync)

    def name_hosts(self):
        """Each host's SageMaker name (algo-N) resolves to its CLUSTER_SPEC address, where /etc/hosts may be written. A
        peer whose name does not resolve yet (its machine is still starting) is waited for, up to resolve_timeout."""
        try:
            with open(self.hosts_file) as handle:
                known = handle.read()
        except OSError:
            return
        if not os.access(self.hosts_file, os.W_OK):
            return
        lines = []
        deadline = time.monotonic() + self.resolve_timeout
        noticed = time.monotonic() + self.resolve_notice
        for host in self._hosts:
            address = self.resolve(host, deadline, noticed)
            if address:
                lines.append("%s\t%s" % (address, host.name))
        missing = [line for line in lines if line not in known.splitlines()]
        if not missing:
            return
        try:
            with open(self.hosts_file, "a") as handle:
                # A file whose last line has no newline keeps that line whole.
                handle.write(("\n" if known and not known.endswith("\n") else "") + "".join(line + "\n" for line in missing))
        except OSError:
            pass

    def resolve(self, host, deadline, noticed):
        """host's CLUSTER_SPEC address as an IP address, retried until `deadline`; None (and a line saying so) after it."""
        said = False
        while True:
            try:
                return socket.gethostbyname(host.address)
            except OSError:
                pass
            now = time.monotonic()
            if now >= deadline:
                print(
                    "[alekseylearn] %s (%s in CLUSTER_SPEC) did not resolve within %gs; %s is not in %s"
                    % (host.name, host.address, self.resolve_timeout, host.name, self.hosts_file),
                    file=sys.stderr,
                    flush=True,
                )
                return None
            if now >= noticed and not said:
                print("[alekseylearn] waiting for %s (%s) to resolve" % (host.name, host.address), file=sys.stderr, flush=True)
                said = True
            time.sleep(min(self.resolve_interval, max(0.0, deadline - now)))

    def master(self, hosts):
        # The chief's CLUSTER_SPEC address and port are the rendezvous of a distributed job.
        chief = self.addresses[0].rsplit(":", 1)
        return chief[0], int(chief[1]) if len(chief) > 1 else contract.VERTEX_PORT

    def contract_variables(self, hosts, current):
        # Vertex sets AIP_*, CLUSTER_SPEC and TF_CONFIG itself.
        variables = {}
        try:
            if not self.dry:
                contract.kaggle_links(self.kaggle, self.channel_folders(), os.path.join(self.base, "model"))
        except OSError:
            pass
        return variables

    def model_folder(self):
        """The folder that holds the model: /opt/ml/model, or $AIP_MODEL_DIR when a script written for Vertex AI saved its
        model there and left /opt/ml/model empty."""
        model = os.path.join(self.base, "model")
        local = self.aip_model_dir()
        if not os.listdir(model) and local and os.path.isdir(local) and os.listdir(local):
            return local
        return model

    def finish(self, code):
        if self.sync:
            missed = self.sync.finish()
            if missed:
                print(
                    "[alekseylearn] warning: could not copy %s to %s" % (", ".join(missed), self.job.checkpoints),
                    file=sys.stderr,
                    flush=True,
                )
        if not self.chief():
            # Vertex keeps nothing of a replica's disk: the chief's (workerpool0's) model is the job's, as the chief saves
            # it in Google's distributed examples (cloud.google.com/vertex-ai/docs/training/distributed-training).
            model = os.path.join(self.base, "model")
            if os.path.isdir(model) and os.listdir(model):
                print(
                    "[alekseylearn] %s's model folder is not kept: on Vertex AI the job's model is algo-1's (the chief's)"
                    % self._hosts[self._current].name,
                    file=sys.stderr,
                    flush=True,
                )
            return
        if not self.job.output_dir or not self.gcs_ok:
            return
        out = self.job.output_dir
        os.makedirs(out, exist_ok=True)
        model = self.model_folder()
        pack(model, os.path.join(out, "model.tar.gz"))
        data = os.path.join(self.base, "output", "data")
        if any(files for _, _, files in os.walk(data)):
            pack(data, os.path.join(out, "output.tar.gz"))
        failure = os.path.join(self.base, "output", "failure")
        if os.path.exists(failure):
            shutil.copy(failure, os.path.join(out, "failure"))
        elif os.path.exists(os.path.join(out, "failure")):
            os.unlink(os.path.join(out, "failure"))  # a restarted worker's earlier reason is not this run's
        local = self.aip_model_dir()
        if local and os.path.abspath(local) != os.path.abspath(model):
            contract.copy_tree(model, local)


def pack(folder, archive):
    """folder's contents as archive (tar.gz, names relative to it, as SageMaker packs model.tar.gz), written whole or not at all."""
    partial = archive + ".partial"
    with tarfile.open(partial, "w:gz") as tar:
        for name in sorted(os.listdir(folder)):
            tar.add(os.path.join(folder, name), arcname=name)
    os.replace(partial, archive)
