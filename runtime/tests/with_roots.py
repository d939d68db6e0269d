"""`python with_roots.py SETTINGS_JSON train|preview [--KEY VALUE ...]`: runs alekseylearn_entrypoint.py unchanged, with
the contracts' roots moved where SETTINGS_JSON says (tests' tmp folders) — base.ML_ROOT/GCS_ROOT/KAGGLE_ROOT, read by
every adapter when it is built, and VertexPlatform.hosts_file — and, when it says so, /gcs taken as mounted."""

import json
import os
import runpy
import sys

settings = json.loads(sys.argv[1])
entrypoint = settings["entrypoint"]
sys.path.insert(0, os.path.dirname(entrypoint))

from alekseylearn_runtime.platforms import base, vertex  # noqa: E402

base.ML_ROOT, base.GCS_ROOT, base.KAGGLE_ROOT = settings["ml"], settings["gcs"], settings["kaggle"]
vertex.VertexPlatform.hosts_file = settings["hosts"]
if settings["gcs_mounted"]:
    vertex.VertexPlatform.gcs_mounted = lambda self: True

sys.argv = [entrypoint, *sys.argv[2:]]
runpy.run_path(entrypoint, run_name="__main__")
