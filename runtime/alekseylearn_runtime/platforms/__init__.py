"""One adapter per platform a job runs on, each answering the same questions (base.Platform): the hosts and their
addresses, this host, where the channels are, which contract files and variables the platform does not give itself,
and how a finished job is handed back. The next platform is one more module here and one line in ADAPTERS."""

from .base import Platform

# Platform → (module, adapter class). An adapter's module is imported only when its platform runs: a local job's init loads
# no cloud adapter (and none of what they import: sockets, tar files, checkpoint threads), which is most of its start-up.
ADAPTERS = {
    "local": ("local", "LocalPlatform"),
    "container": ("container", "ContainerPlatform"),
    "sagemaker": ("sagemaker", "SageMakerPlatform"),
    "vertex": ("vertex", "VertexPlatform"),
    "kaggle": ("kaggle", "KagglePlatform"),
    "slurm": ("slurm", "SlurmPlatform"),
}


def adapter(name):
    """The adapter class of the platform `name`, its module imported now."""
    module, cls = ADAPTERS[name]
    # __import__ with a fromlist returns the submodule itself; importlib's import would cost every job's start-up.
    return getattr(__import__("%s.%s" % (__name__, module), fromlist=[cls]), cls)


def __getattr__(attr):
    """`platforms.LocalPlatform` and the others, imported when first named."""
    for name, (_module, cls) in ADAPTERS.items():
        if cls == attr:
            return adapter(name)
    raise AttributeError("module %r has no attribute %r" % (__name__, attr))


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
    return adapter(name)(job, environ, base)


__all__ = ["ADAPTERS", "Platform", "adapter", "detect", "select"]
