"""The job's image run on this machine by the local backend (`runner=docker`): a container of its own, as SageMaker
runs it, with the channels mounted at /opt/ml/input/data by alekseylearn; the runtime writes the config files, and /gcs and
/kaggle are the container's own."""

from .base import Platform


class ContainerPlatform(Platform):
    name = "container"

    def owns_roots(self):
        return True
