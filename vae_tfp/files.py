"""Files on disk: JSON read with a format check, JSON and folders replaced atomically, digests.

Every JSON file the package writes goes through :func:`write_json_atomic` and every folder it
swaps into place (a prepared dataset, a saved model) through :func:`replace_dir`, so a kill at
any moment leaves either the old or the new version, never half of one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterable


def read_format_json(file: Path, expected_format: str, error: type[Exception], what: str) -> dict[str, Any]:
    """Reads a JSON object whose ``format`` key must equal ``expected_format``.

    Raises:
        error: naming ``file`` when it cannot be read, is not JSON or has another format.
    """
    try:
        data = json.loads(Path(file).read_text())
    except (OSError, ValueError) as err:
        raise error(f"{file}: cannot read {what} ({err})") from None
    check_format(data, file, expected_format, error)
    return data


def check_format(data: Any, file: Path, expected_format: str, error: type[Exception]) -> None:
    """Raises ``error`` naming ``file`` unless ``data`` is an object whose ``format`` is ``expected_format``."""
    found = data.get("format") if isinstance(data, dict) else None
    if found != expected_format:
        raise error(f"{file}: format is {found!r}, expected {expected_format!r}")


def write_json_atomic(path: Path, data: Any, *, default=None, sort_keys: bool = False) -> Path:
    """Writes JSON next to ``path`` and renames it over: readers never see a half-written file.

    Non-ASCII text (and the lone surrogates of non-UTF-8 file names) is escaped, so any path
    round-trips. ``default`` and ``sort_keys`` are :func:`json.dumps`'s. Returns ``path``.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=default, sort_keys=sort_keys))
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
    shutil.rmtree(old, ignore_errors=True)
