"""Checkpoints reach checkpoint_uri while the job runs, as SageMaker syncs /opt/ml/checkpoints to checkpoint_s3_uri."""

import hashlib
import os
import shutil
import threading
import time

from .contract import copy_tree

# A file whose modification time is this close to (or after) the moment it was last copied may have been rewritten since
# without its size or time changing (a coarse file system clock: FAT keeps 2 s, others a scheduler tick), so its content
# is compared by hash, as git treats a "racily clean" index entry (git-scm.com/docs/racy-git).
RACY_NS = 2 * 10**9


def _digest(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class CheckpointSync:
    """Copies the files of `source` whose content changed since this sync last copied them to `target`: a different size
    or modification time (at full resolution), or, when both tie and the time is too recent to trust, a different hash.
    A file being written may fail and is copied next time; `finish` copies the last version of every file."""

    def __init__(self, source, target):
        self.source = source
        self.target = target
        # name -> ((size, mtime_ns), sha256 of the bytes copied, when they were read in time.time_ns())
        self.copied = {}
        self._lock = threading.Lock()  # one sync at a time: a periodic copy of older bytes never lands after the last one
        self._stop = threading.Event()

    def restore(self):
        """The checkpoints of an earlier run, back in `source`, so the script resumes from them."""
        if os.path.isdir(self.target):
            copy_tree(self.target, self.source)
        now = time.time_ns()
        for name, stamp in self._stamps().items():
            try:
                self.copied[name] = (stamp, _digest(os.path.join(self.source, name)), now)
            except OSError:
                pass

    def sync(self, final=False):
        """Copy what changed; `final` compares every file whose size and time tie by hash (the job has ended: this is the
        last chance for its last bytes to reach the target). Returns the names that could not be copied."""
        failed = []
        with self._lock:
            for name, stamp in self._stamps().items():
                seen = self.copied.get(name)
                full = os.path.join(self.source, name)
                if seen and seen[0] == stamp and not final and stamp[1] < seen[2] - RACY_NS:
                    continue
                try:
                    read_at = time.time_ns()
                    digest = _digest(full)
                    if seen and seen[0] == stamp and seen[1] == digest:
                        self.copied[name] = (stamp, digest, read_at)
                        continue
                    remote = os.path.join(self.target, name)
                    os.makedirs(os.path.dirname(remote), exist_ok=True)
                    shutil.copy2(full, remote)
                    self.copied[name] = (stamp, digest, read_at)
                except OSError:
                    failed.append(name)
        return failed

    def every(self, seconds):
        """Sync every `seconds` in a daemon thread, until `finish`."""

        def loop():
            while not self._stop.wait(seconds):
                self.sync()

        threading.Thread(target=loop, daemon=True).start()

    def finish(self):
        """The last sync, once the job has ended: the periodic one stops, and every file's last version is copied (a
        copy that fails is tried once more). Returns the names that still could not be copied."""
        self._stop.set()
        return self.sync(final=True) and self.sync(final=True)

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
