"""Entrypoint of an alekseylearn training job: `docker run IMAGE train`, as SageMaker starts it.

The runtime package lies beside this file (in an image at /opt/alekseylearn, on this machine in alekseylearn's package).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# alekseylearn runs its runtime with `-X pycache_prefix=DIR`, a folder of its own cache: the runtime's compiled modules are
# kept there even where PYTHONDONTWRITEBYTECODE is set or the package's folder is read-only (a global npm install), so a job
# does not compile them again at every start (~130 ms of a local run here). The script's interpreter is not told either.
if "pycache_prefix" in getattr(sys, "_xoptions", {}):
    sys.dont_write_bytecode = False
    # With the prefix, Python looks for every module's compiled form there alone; those it imported before this file ran
    # (encodings) were compiled from source and, under PYTHONDONTWRITEBYTECODE, never written, so every start compiled
    # them again (~6 ms here). Written now, once: later starts find them (an existence check each, next to nothing).
    for module in list(sys.modules.values()):
        spec = getattr(module, "__spec__", None)
        cached = getattr(spec, "cached", None)
        if cached and not os.path.exists(cached) and hasattr(spec.loader, "get_code"):
            try:
                spec.loader.get_code(spec.name)  # compiles the source and writes the prefix's copy, as an import does
            except Exception:  # at worst the next start compiles it again
                pass

from alekseylearn_runtime.job import main  # noqa: E402

if __name__ == "__main__":
    code = main(sys.argv[1:])
    # The job has ended: its whole process tree is gone and every line of its stderr written. The interpreter's teardown
    # (freeing every module and object, ~5 ms of each local run here) would only delay the job's end, and this process
    # leaves nothing for it to do: no atexit handler, no thread but daemons. Its output flushed, it leaves at once.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
