"""`python -m alekseylearn_runtime train [--KEY VALUE ...]`: run the job this environment describes."""

import sys

from .job import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
