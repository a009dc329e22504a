"""Files on disk: JSON read with a format check, JSON and folders replaced atomically, digests,
folder locks and the true reason of an ``OSError``.

Every JSON file the package writes goes through :func:`write_json_atomic` and every folder it
swaps into place (a prepared dataset, a saved model) through :func:`replace_dir`, so a kill at
any moment leaves either the old or the new version, never half of one. A process that writes a
folder holds its :class:`FolderLock` (``.NAME.lock`` beside it), so a second writer is refused
and no one recovers a save that a live process is still writing.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import hashlib
import json
import os
import shutil
import socket
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator


def read_format_json(file: Path, expected_format: str | tuple[str, ...], error: type[Exception],
                     what: str) -> dict[str, Any]:
    """Reads a JSON object whose ``format`` key must equal ``expected_format`` (or one of a tuple of
    formats, the current one first).

    Raises:
        error: naming ``file`` when it cannot be read, is not JSON or has another format.
    """
    try:
        data = json.loads(Path(file).read_text())
    except (OSError, ValueError) as err:
        raise error(f"{file}: cannot read {what} ({err})") from None
    check_format(data, file, expected_format, error)
    return data


def check_format(data: Any, file: Path, expected_format: str | tuple[str, ...], error: type[Exception]) -> None:
    """Raises ``error`` naming ``file`` unless ``data`` is an object whose ``format`` is ``expected_format``
    (or one of a tuple of formats, the current one first)."""
    current, *older = (expected_format,) if isinstance(expected_format, str) else expected_format
    found = data.get("format") if isinstance(data, dict) else None
    if found != current and found not in older:
        also = f" (or the older {', '.join(map(repr, older))})" if older else ""
        raise error(f"{file}: format is {found!r}, expected {current!r}{also}")


def write_json_atomic(path: Path, data: Any, *, default=None, sort_keys: bool = False) -> Path:
    """Writes JSON next to ``path`` and renames it over: readers never see a half-written file.

    Non-ASCII text (and the lone surrogates of non-UTF-8 file names) is escaped, so any path
    round-trips. ``default`` and ``sort_keys`` are :func:`json.dumps`'s. Returns ``path``.
    """
    return write_bytes_atomic(path, json.dumps(data, indent=1, default=default, sort_keys=sort_keys).encode())


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    """Writes ``data`` next to ``path`` and renames it over: readers never see a half-written file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def replace_dir(new: Path, target: Path, *, carry: Iterable[str] = ()) -> None:
    """Puts the folder ``new`` in place of ``target`` with renames.

    An existing ``target`` is moved aside to ``.NAME.old-PID`` first and removed only after the
    swap; if the second rename fails it is put back. Entries named in ``carry`` (e.g. a model's
    ``checkpoints/``) move from the old ``target`` into ``new`` unless ``new`` has its own.
    """
    new, target = Path(new), Path(target)
    if not target.exists():
        os.replace(new, target)
        return
    carried = [name for name in carry if (target / name).exists() and not (new / name).exists()]
    for name in carried:
        os.replace(target / name, new / name)
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    os.replace(target, old)
    try:
        os.replace(new, target)
    except OSError:
        os.replace(old, target)  # put the previous version back, with what it carried
        for name in carried:
            os.replace(new / name, target / name)
        raise
    remove(old)


def remove(path: Path) -> None:
    """Removes a file or a folder tree, whichever ``path`` is (nothing if it is gone)."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


# --- the true reason of an OSError ------------------------------------------------------------

def human_size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"


def free_bytes(path: str | os.PathLike) -> int | None:
    """Free bytes on the file system of ``path`` (or of its nearest existing ancestor)."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


DISK_FULL_FREE_BYTES = 1 << 20  # a failed write with less than this free is a full disk


def is_disk_full(err: BaseException, path: str | os.PathLike | None = None) -> bool:
    """Whether ``err`` (an ``OSError`` or a TensorFlow error) comes from a full disk.

    ``ENOSPC`` says so; NumPy's ``tofile`` raises ``OSError("N requested and M written")`` with
    no errno, and TensorFlow a ``ResourceExhaustedError`` whose text says "No space left on
    device", so the text and the free space at ``path`` count too.
    """
    if getattr(err, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(err)
    if "No space left on device" in text or "Disk quota exceeded" in text:
        return True
    if path is not None and "requested and" in text and "written" in text:
        free = free_bytes(path)
        return free is not None and free < DISK_FULL_FREE_BYTES
    return False


def os_error_message(err: BaseException, path: str | os.PathLike | None = None, *,
                     needed: int | None = None) -> str:
    """One line naming the real cause of a failed file operation: disk full (with free and needed
    bytes), permission denied (with the path), else the system's own words."""
    where = getattr(err, "filename", None) or path
    if is_disk_full(err, where or path):
        free = free_bytes(where or path or ".")
        need = f", {human_size(needed)} needed" if needed else ""
        return (f"{where}: disk full ({human_size(free) if free is not None else 'unknown'} free{need}); "
                f"free some space or write elsewhere")
    if isinstance(err, PermissionError) or getattr(err, "errno", None) in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"{where}: permission denied ({getattr(err, 'strerror', None) or err}); choose a folder you can write"
    reason = getattr(err, "strerror", None) or str(err).splitlines()[0][:200] or type(err).__name__
    return f"{where}: {reason}" if where else reason


# --- folder locks -----------------------------------------------------------------------------

def lock_path(folder: str | os.PathLike) -> Path:
    """The lock file of a folder: ``.NAME.lock`` beside it (the folder itself is swapped whole)."""
    folder = Path(os.path.abspath(folder))
    return folder.with_name(f".{folder.name}.lock")


def _holder_text(info: dict) -> str:
    return (f"PID {info.get('pid', '?')} on {info.get('host', '?')} since {info.get('since', '?')}"
            + (f" ({info['command']})" if info.get("command") else ""))


class FolderLock:
    """An exclusive, non-blocking lock on a folder that one process writes (a model, a dataset).

    ``fcntl.flock`` on ``.NAME.lock``: the kernel releases it when the holder dies, SIGKILL
    included, so a lock is never stale in fact; the file names its holder (PID, host, start,
    command) for the refusal message, and a note says when a dead holder's lock is taken over.
    Re-entrant within a process (``train`` holds it while ``save_model`` takes it again).

    Raises:
        FolderLockedError: (from :meth:`acquire`) another live process holds the lock.
    """

    _held: dict[Path, list] = {}  # lock file -> [fd, depth], this process's locks

    def __init__(self, folder: str | os.PathLike, *, what: str = "folder", log: Callable[[str], None] | None = None):
        self.folder, self.file, self.what = Path(folder), lock_path(folder), what
        self.log = log or (lambda line: print(line, file=sys.stderr))

    def acquire(self) -> "FolderLock":
        from .errors import FolderLockedError

        held = self._held.get(self.file)
        if held:
            held[1] += 1
            return self
        self.file.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.file, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                info = _read_holder(fd)
                os.close(fd)
                raise FolderLockedError(f"{self.folder}: in use by {_holder_text(info)}; wait for it to finish "
                                        f"or use another {self.what}") from None
            # the holder before us may have removed the file after we opened it: lock the file
            # that is at the path now
            try:
                same = os.stat(self.file).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        previous = _read_holder(fd)
        if previous.get("pid") not in (None, os.getpid()):
            self.log(f"note: {self.folder}: took over the lock of {_holder_text(previous)}, which is no longer "
                     f"running")
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "since": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                "command": " ".join(sys.argv[:3])[:200]}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._held[self.file] = [fd, 1]
        return self

    def release(self) -> None:
        held = self._held.get(self.file)
        if not held:
            return
        held[1] -= 1
        if held[1] == 0:
            del self._held[self.file]
            with contextlib.suppress(OSError):
                os.unlink(self.file)  # under the lock: a waiter re-checks the inode
            os.close(held[0])

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    @classmethod
    def held_by_other(cls, folder: str | os.PathLike) -> dict | None:
        """The holder's info if another live process holds ``folder``'s lock, else None (never waits)."""
        file = lock_path(folder)
        if file in cls._held:
            return None
        try:
            fd = os.open(file, os.O_RDONLY)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_holder(fd) or {"pid": "?"}
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    @classmethod
    @contextlib.contextmanager
    def try_hold(cls, folder: str | os.PathLike) -> Iterator[bool]:
        """Holds the lock for the block if it is free (True), else yields False; never raises for
        a held lock or an unwritable parent folder."""
        from .errors import FolderLockedError

        lock = cls(folder)
        try:
            lock.acquire()
        except (FolderLockedError, OSError):
            yield False
            return
        try:
            yield True
        finally:
            lock.release()


def _read_holder(fd: int) -> dict:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
