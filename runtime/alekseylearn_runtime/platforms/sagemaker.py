"""AWS SageMaker: it writes /opt/ml/input/config itself and downloads the channels into /opt/ml/input/data, so the
runtime only reads them (docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo-running-container.html)."""

import os

from ..contract import Host
from ..toolkit import read_json
from .base import Platform


class SageMakerPlatform(Platform):
    name = "sagemaker"
    writes_config = False

    def owns_roots(self):
        return True

    def _resource_config(self):
        return read_json(os.path.join(self.base, "input", "config", "resourceconfig.json"), {})

    def hosts(self):
        # SageMaker's host names (algo-1, …) resolve inside the job's network, so each is its own address.
        names = self._resource_config().get("hosts") or ["algo-1"]
        return [Host(name, name) for name in names]

    def current_host(self):
        config = self._resource_config()
        names = config.get("hosts") or ["algo-1"]
        current = config.get("current_host", names[0])
        return names.index(current) if current in names else 0

    def instance_type(self):
        return self._resource_config().get("current_instance_type", "local")

    def channel_sources(self):
        return {}  # SageMaker downloaded them
