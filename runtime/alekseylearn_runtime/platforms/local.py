"""This machine (the local backend's process runner): alekseylearn lays the channels out (bound into the sandbox, or
named in ALEKSEYLEARN_INPUTS without one), watches the job's working folder and packs its outputs from outside."""

from .base import Platform


class LocalPlatform(Platform):
    name = "local"

    def __init__(self, job, environ, base=None):
        super().__init__(job, environ, base)
        # Watched from outside when alekseylearn supervises the job; the image's own runtime keeps them otherwise.
        self.keeps_working_files = not job.supervised

    def owns_roots(self):
        # In bubblewrap, /gcs and /kaggle are the job's folders; without it they are this machine's, never touched.
        return self.job.sandboxed
