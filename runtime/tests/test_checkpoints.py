"""CheckpointSync: /opt/ml/checkpoints reaches checkpoint_uri while the job runs, as SageMaker syncs it to
checkpoint_s3_uri (docs.aws.amazon.com/sagemaker/latest/dg/model-checkpoints.html), and an earlier run's checkpoints come
back before the script starts."""

import os

from alekseylearn_runtime import checkpoints
from alekseylearn_runtime.checkpoints import CheckpointSync

from .helpers import write

SECOND = 1_700_000_000 * 10**9  # a whole second, in nanoseconds


def test_a_checkpoint_rewritten_with_the_same_size_in_the_same_second_is_copied_again(tmp_path):
    local, remote = tmp_path / "local", tmp_path / "remote"
    saved = write(local / "step.ckpt", "aaaa")
    os.utime(str(saved), ns=(SECOND, SECOND))
    sync = CheckpointSync(str(local), str(remote))
    sync.sync()
    assert (remote / "step.ckpt").read_text() == "aaaa"
    saved.write_text("bbbb")
    os.utime(str(saved), ns=(SECOND + 400_000_000, SECOND + 400_000_000))  # the same second, a later nanosecond time
    sync.sync()
    assert (remote / "step.ckpt").read_text() == "bbbb"


def test_restore_brings_an_earlier_runs_checkpoints_back(tmp_path):
    local, remote = tmp_path / "local", tmp_path / "remote"
    write(remote / "epoch-1" / "model.ckpt", "saved")
    CheckpointSync(str(local), str(remote)).restore()
    assert (local / "epoch-1" / "model.ckpt").read_text() == "saved"


def test_restore_then_sync_copies_nothing_unchanged(tmp_path, monkeypatch):
    local, remote = tmp_path / "local", tmp_path / "remote"
    write(remote / "a.ckpt", "a")
    write(remote / "b" / "c.ckpt", "c")
    sync = CheckpointSync(str(local), str(remote))
    sync.restore()
    copied = []
    monkeypatch.setattr(checkpoints.shutil, "copy2", lambda source, target: copied.append(source))
    sync.sync()
    assert copied == []


def test_only_new_or_changed_checkpoints_are_copied(tmp_path, monkeypatch):
    local, remote = tmp_path / "local", tmp_path / "remote"
    write(local / "old.ckpt", "old")
    sync = CheckpointSync(str(local), str(remote))
    sync.sync()
    write(local / "new.ckpt", "new")
    copied = []
    real_copy = checkpoints.shutil.copy2
    monkeypatch.setattr(
        checkpoints.shutil, "copy2", lambda source, target: copied.append(os.path.basename(source)) or real_copy(source, target)
    )
    sync.sync()
    assert copied == ["new.ckpt"]
    assert sorted(os.listdir(remote)) == ["new.ckpt", "old.ckpt"]


def test_a_checkpoint_rewritten_with_the_same_size_and_the_same_nanosecond_time_is_copied_by_its_hash(tmp_path):
    # A coarse file system clock gives a rewrite the time of the write before it; a recent time is not trusted alone.
    local, remote = tmp_path / "local", tmp_path / "remote"
    saved = write(local / "step.ckpt", "aaaa")
    stamp = os.stat(str(saved)).st_mtime_ns
    sync = CheckpointSync(str(local), str(remote))
    sync.sync()
    saved.write_text("bbbb")
    os.utime(str(saved), ns=(stamp, stamp))
    sync.sync()
    assert (remote / "step.ckpt").read_text() == "bbbb"


def test_an_old_unchanged_checkpoint_is_not_read_again(tmp_path, monkeypatch):
    local, remote = tmp_path / "local", tmp_path / "remote"
    saved = write(local / "step.ckpt", "aaaa")
    os.utime(str(saved), ns=(SECOND, SECOND))
    sync = CheckpointSync(str(local), str(remote))
    sync.sync()
    hashed = []
    monkeypatch.setattr(checkpoints, "_digest", hashed.append)
    sync.sync()
    assert hashed == []


def test_finish_copies_the_last_version_even_when_size_and_time_tie(tmp_path):
    local, remote = tmp_path / "local", tmp_path / "remote"
    saved = write(local / "step.ckpt", "aaaa")
    os.utime(str(saved), ns=(SECOND, SECOND))
    sync = CheckpointSync(str(local), str(remote))
    sync.sync()
    saved.write_text("bbbb")
    os.utime(str(saved), ns=(SECOND, SECOND))  # nothing but the bytes says it changed
    assert sync.finish() == []
    assert (remote / "step.ckpt").read_text() == "bbbb"


def test_finish_stops_the_periodic_sync_and_names_what_it_could_not_copy(tmp_path, monkeypatch):
    local, remote = tmp_path / "local", tmp_path / "remote"
    write(local / "step.ckpt", "aaaa")
    sync = CheckpointSync(str(local), str(remote))
    sync.every(0.01)

    def refuse(source, target):
        raise PermissionError(13, "denied", target)

    monkeypatch.setattr(checkpoints.shutil, "copy2", refuse)
    assert sync.finish() == ["step.ckpt"]
    assert sync._stop.is_set()
