"""This machine (the local backend's process runner): alekseylearn lays the channels out (bound into the sandbox, or
named in ALEKSEYLEARN_INPUTS without one), watches the job's working folder and packs its outputs from outside. A
multi-host job is one such process per host, each told the hosts' names (ALEKSEYLEARN_HOSTS) and its own
(ALEKSEYLEARN_CURRENT_HOST); in bubblewrap each name resolves (the sandbox's /etc/hosts), else every host is 127.0.0.1."""

from ..contract import Host
from .base import Platform


class LocalPlatform(Platform):
    name = "local"

    def __init__(self, job, environ, base=None):
        super().__init__(job, environ, base)
        # Watched from outside when alekseylearn supervises the job; the image's own runtime keeps them otherwise.
        self.keeps_working_files = not job.supervised
        self._names = [name for name in (environ.get("ALEKSEYLEARN_HOSTS") or "algo-1").split(",") if name]
        current = environ.get("ALEKSEYLEARN_CURRENT_HOST") or self._names[0]
        self._current = self._names.index(current) if current in self._names else 0

    def owns_roots(self):
        # In bubblewrap, /gcs and /kaggle are the job's folders; without it they are this machine's, never touched.
        return self.job.sandboxed

    def hosts(self):
        # One host is 127.0.0.1 (as before); several in a sandbox are reached by name, as SageMaker's are.
        if len(self._names) > 1 and self.job.sandboxed:
            return [Host(name, name) for name in self._names]
        return [Host(name, "127.0.0.1") for name in self._names]

    def current_host(self):
        return self._current
