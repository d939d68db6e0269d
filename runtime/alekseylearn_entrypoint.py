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

from alekseylearn_runtime.job import main  # noqa: E402

if __name__ == "__main__":
    code = main(sys.argv[1:])
    # The job has ended: its whole process tree is gone and every line of its stderr written. The interpreter's teardown
    # (freeing every module and object, ~5 ms of each local run here) would only delay the job's end, and this process
    # leaves nothing for it to do: no atexit handler, no thread but daemons. Its output flushed, it leaves at once.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
