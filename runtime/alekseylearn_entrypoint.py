"""Entrypoint of an alekseylearn training job: `docker run IMAGE train`, as SageMaker starts it.

The runtime package lies beside this file (in an image at /opt/alekseylearn, on this machine in alekseylearn's package).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from alekseylearn_runtime.job import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
