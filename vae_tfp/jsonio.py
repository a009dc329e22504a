"""JSON files of the package: read with a format check, write atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def read_format_json(file: Path, expected_format: str, error: type[Exception], what: str) -> dict[str, Any]:
    """Reads a JSON object whose ``format`` key must equal ``expected_format``.

    Raises:
        error: naming ``file`` when it cannot be read, is not JSON or has another format.
    """
    try:
        data = json.loads(Path(file).read_text())
    except (OSError, ValueError) as err:
        raise error(f"{file}: cannot read {what} ({err})") from None
    found = data.get("format") if isinstance(data, dict) else None
    if found != expected_format:
        raise error(f"{file}: format is {found!r}, expected {expected_format!r}")
    return data


def write_json_atomic(path: Path, data: Any) -> None:
    """Writes JSON next to ``path`` and renames it over: readers never see a half-written file.

    Non-ASCII text (and the lone surrogates of non-UTF-8 file names) is escaped, so any path
    round-trips.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)
