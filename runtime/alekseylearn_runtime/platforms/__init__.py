"""One adapter per platform a job runs on, each answering the same questions (base.Platform): the hosts and their
addresses, this host, where the channels are, which contract files and variables the platform does not give itself,
and how a finished job is handed back. The next platform is one more module here and one line in ADAPTERS."""

from .base import Platform
from .container import ContainerPlatform
from .kaggle import KagglePlatform
from .local import LocalPlatform
from .sagemaker import SageMakerPlatform
from .slurm import SlurmPlatform
from .vertex import VertexPlatform

ADAPTERS = {
    "local": LocalPlatform,
    "container": ContainerPlatform,
    "sagemaker": SageMakerPlatform,
    "vertex": VertexPlatform,
    "kaggle": KagglePlatform,
    "slurm": SlurmPlatform,
}


def detect(environ):
    """The platform this job runs on: the one alekseylearn names, else Vertex AI by the variables it sets in every custom
    job (CLOUD_ML_JOB_ID, CLUSTER_SPEC) or by the output folder alekseylearn names there,
    else Kaggle by KAGGLE_KERNEL_RUN_TYPE, else SageMaker (the image's first home)."""
    named = environ.get("ALEKSEYLEARN_PLATFORM")
    if named:
        return named
    if any(name in environ for name in ("CLOUD_ML_JOB_ID", "CLUSTER_SPEC", "ALEKSEYLEARN_OUTPUT_DIR")):
        return "vertex"
    if "KAGGLE_KERNEL_RUN_TYPE" in environ:
        return "kaggle"
    return "sagemaker"


def select(job, environ, base=None):
    """The adapter for this job's platform."""
    name = detect(environ)
    if name not in ADAPTERS:
        raise SystemExit("alekseylearn: unknown platform %r (known: %s)" % (name, ", ".join(sorted(ADAPTERS))))
    return ADAPTERS[name](job, environ, base)


__all__ = ["ADAPTERS", "Platform", "detect", "select"]
