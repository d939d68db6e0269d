"""A Slurm cluster (the slurm backend): one task per node, started by `srun` from the job's sbatch script. The hosts are
the job's nodes (SLURM_JOB_NODELIST, in Slurm's hostlist syntax), this host is SLURM_NODEID, and the hosts meet at the
first node's NodeAddr (`scontrol show node`: a node's name need not resolve) on a port derived from the job id. Each node
has its own job folder (ALEKSEYLEARN_SLURM_JOB_DIR/nodes/NODEID/ml) unless the sbatch script gave it a private /opt/ml;
the script packs the first node's model after every node has finished."""

import os
import re
import subprocess

from ..contract import Host
from .base import Platform

#: The rendezvous port of job N: 15000 + its id's last four digits, as PyTorch Lightning's SLURMEnvironment derives it
#: (github:Lightning-AI/pytorch-lightning, src/lightning/fabric/plugins/environments/slurm.py, `resolve_root_node_address`
#: and `main_port`), so two jobs on the same nodes rarely pick the same port.
PORT_BASE = 15000


def expand_hostlist(text):
    """Slurm's hostlist syntax (`node[1-3,5]`, `gpu[01-02],login`, `rack[1-2]-n[1-2]`) as a list of names, in order. The
    syntax is that of `scontrol show hostnames` (slurm.schedmd.com/scontrol.html): comma-separated names, each with
    bracketed ranges whose numbers keep their zero padding."""
    names = []
    for item in _split_top(text.strip()):
        if item:
            names.extend(_expand_one(item))
    return names


def _split_top(text):
    """Split at the commas outside brackets."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _expand_one(item):
    match = re.search(r"\[([^\]]*)\]", item)
    if not match:
        return [item]
    prefix, rest = item[: match.start()], item[match.end() :]
    names = []
    for span in match.group(1).split(","):
        low, _, high = span.partition("-")
        if not high:
            numbers = [low]
        else:
            width = len(low)
            numbers = [str(n).zfill(width) for n in range(int(low), int(high) + 1)]
        for number in numbers:
            names.extend(prefix + number + tail for tail in _expand_one(rest))
    return names


def node_addresses(text):
    """NodeName → NodeAddr from `scontrol show node` output (one node per line with -o, or Slurm's multi-line form)."""
    addresses, name = {}, None
    for token in text.split():
        key, _, value = token.partition("=")
        if key == "NodeName":
            name = value
        elif key == "NodeAddr" and name:
            addresses[name] = value
    return addresses


class SlurmPlatform(Platform):
    name = "slurm"

    def __init__(self, job, environ, base=None):
        node = environ.get("SLURM_NODEID") or "0"
        job_dir = environ.get("ALEKSEYLEARN_SLURM_JOB_DIR")
        if base is None and not environ.get("SAGEMAKER_BASE_DIR") and job_dir:
            base = os.path.join(job_dir, "nodes", node, "ml")
        super().__init__(job, environ, base)
        self._names = expand_hostlist(environ.get("SLURM_JOB_NODELIST") or environ.get("SLURMD_NODENAME") or "localhost")
        self._node = int(node)
        self._addresses = None

    def addresses(self):
        """Each node's NodeAddr, asked of Slurm once (a node's name is its address when Slurm cannot say)."""
        if self._addresses is None:
            found = {}
            try:
                answer = subprocess.run(
                    ["scontrol", "show", "node", "-o", ",".join(self._names)],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    text=True,
                    timeout=30,
                    check=False,
                )
                found = node_addresses(answer.stdout) if answer.returncode == 0 else {}
            except (OSError, subprocess.SubprocessError):
                pass
            self._addresses = {name: found.get(name, name) for name in self._names}
        return self._addresses

    def hosts(self):
        addresses = self.addresses() if len(self._names) > 1 else {name: name for name in self._names}
        return [Host(name, addresses[name]) for name in self._names]

    def current_host(self):
        return min(self._node, len(self._names) - 1)

    def instance_type(self):
        return "slurm"

    def master(self, hosts):
        job_id = re.sub(r"\D", "", self.environ.get("SLURM_JOB_ID") or "") or "0"
        return hosts[0].address, PORT_BASE + int(job_id[-4:])
