"""Checkpoints reach checkpoint_uri while the job runs, as SageMaker syncs /opt/ml/checkpoints to checkpoint_s3_uri."""

import os
import shutil
import threading
import time

from .contract import copy_tree


class CheckpointSync:
    """Copies the files of `source` whose content may have changed since this sync last copied them (size or modification
    time, at full resolution) to `target`; a file being written may fail and is copied next time."""

    def __init__(self, source, target):
        self.source = source
        self.target = target
        self.copied = {}

    def restore(self):
        """The checkpoints of an earlier run, back in `source`, so the script resumes from them."""
        if os.path.isdir(self.target):
            copy_tree(self.target, self.source)
        self.copied = self._stamps()

    def sync(self):
        for name, stamp in self._stamps().items():
            if self.copied.get(name) == stamp:
                continue
            remote = os.path.join(self.target, name)
            try:
                os.makedirs(os.path.dirname(remote), exist_ok=True)
                shutil.copy2(os.path.join(self.source, name), remote)
                self.copied[name] = stamp
            except OSError:
                pass

    def every(self, seconds):
        """Sync every `seconds` in a daemon thread, for as long as the job runs."""

        def loop():
            while True:
                time.sleep(seconds)
                self.sync()

        threading.Thread(target=loop, daemon=True).start()

    def _stamps(self):
        stamps = {}
        for root, _, files in os.walk(self.source):
            for name in files:
                full = os.path.join(root, name)
                try:
                    stat = os.stat(full)
                except OSError:
                    continue
                stamps[os.path.relpath(full, self.source)] = (stat.st_size, stat.st_mtime_ns)
        return stamps
