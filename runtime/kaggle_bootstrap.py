# Added by alekseylearn: every platform's contract on Kaggle (the runtime's files travel inside this cell), then the
# training code, unchanged. alekseylearn replaces ALEKSEYLEARN_PAYLOAD with the job's description at submission.
def _alekseylearn_setup(payload):
    import base64
    import json
    import os
    import sys
    import tempfile
    import zlib

    spec = json.loads(zlib.decompress(base64.b64decode(payload)))
    runtime = tempfile.mkdtemp(prefix="alekseylearn-runtime-")
    for name, text in spec.pop("runtime").items():
        os.makedirs(os.path.dirname(os.path.join(runtime, name)), exist_ok=True)
        with open(os.path.join(runtime, name), "w") as handle:
            handle.write(text)
    sys.path.insert(0, runtime)
    from alekseylearn_runtime.platforms.kaggle import setup

    return setup(spec)


_alekseylearn_entry = _alekseylearn_setup("ALEKSEYLEARN_PAYLOAD")
if _alekseylearn_entry:
    # A script kernel: the entry runs as __main__, as `python entry.py` would run it, so its line numbers and
    # __future__ imports stay its own. A notebook's own cells follow this one.
    import runpy as _alekseylearn_runpy

    _alekseylearn_runpy.run_path(_alekseylearn_entry, run_name="__main__")
