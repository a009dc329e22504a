"""files.py: folder locks, the true reason of an OSError, replace_dir on any target."""

import errno
import json
import os
import subprocess
import sys
import time

import pytest

from vae_tfp.errors import FolderLockedError
from vae_tfp.files import FolderLock, is_disk_full, lock_path, os_error_message, replace_dir


def test_a_second_holder_is_refused_naming_the_first(tmp_path):
    folder = tmp_path / "m"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from vae_tfp.files import FolderLock; "
                               "FolderLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(60)",
                               str(folder)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(FolderLockedError, match=rf"{folder}: in use by PID {holder.pid} on .* since 20"):
            FolderLock(folder).acquire()
        assert FolderLock.held_by_other(folder)["pid"] == holder.pid
        with FolderLock.try_hold(folder) as mine:
            assert not mine
    finally:
        holder.kill()
        holder.wait()
    # SIGKILL released it: the next holder takes it over and says whose it was
    notes = []
    with FolderLock(folder, log=notes.append):
        assert FolderLock.held_by_other(folder) is None  # ours, not another's
    assert notes and f"took over the lock of PID {holder.pid}" in notes[0] and "no longer running" in notes[0]
    assert not lock_path(folder).exists()  # removed on release


def test_the_lock_is_reentrant_within_a_process(tmp_path):
    with FolderLock(tmp_path / "m"):
        with FolderLock(tmp_path / "m"):
            pass
        assert lock_path(tmp_path / "m").exists()  # still held by the outer block
    assert not lock_path(tmp_path / "m").exists()


@pytest.mark.parametrize("err, needle", [
    (OSError(errno.ENOSPC, "No space left on device", "/x/f"), "/x/f: disk full"),
    (OSError("1000000 requested and 131056 written"), None),  # NumPy's tofile: a disk full only if it is
    (PermissionError(errno.EACCES, "Permission denied", "/ro/f"), "/ro/f: permission denied"),
    (OSError(errno.EROFS, "Read-only file system", "/ro/g"), "/ro/g: permission denied"),
    (OSError(errno.EIO, "Input/output error", "/d/h"), "/d/h: Input/output error"),
])
def test_os_errors_name_the_real_cause(err, needle, tmp_path):
    message = os_error_message(err, tmp_path)
    if needle is None:
        assert not is_disk_full(err, tmp_path) and "disk full" not in message  # plenty of space here
    else:
        assert needle in message


def test_a_tensorflow_disk_full_is_not_out_of_memory():
    import tensorflow as tf

    err = tf.errors.ResourceExhaustedError(None, None, "/m/ckpt-1_temp/part; No space left on device [Op:SaveV2]")
    assert is_disk_full(err)
    assert not is_disk_full(tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor"))


def test_replace_dir_leaves_nothing_beside_a_replaced_file(tmp_path):
    (tmp_path / "new").mkdir()
    (tmp_path / "target").write_text("x")
    replace_dir(tmp_path / "new", tmp_path / "target")
    assert (tmp_path / "target").is_dir() and sorted(p.name for p in tmp_path.iterdir()) == ["target"]
