"""Where a running `compute up` can be reached, kept in its data directory.

`compute up` writes it once the API answers and removes it when it stops, so commands
run later against the same data directory (`compute token create --save`) name the
service's real address rather than a default port.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

RECORD_NAME = "service.json"


def record_path(data_dir: Path) -> Path:
    return data_dir / RECORD_NAME


def write_service_record(data_dir: Path, url: str) -> None:
    """Note that this process serves `data_dir`'s service at `url` (the API's base URL)."""
    path = record_path(data_dir)
    partial = path.with_name(f".{RECORD_NAME}.{os.getpid()}")
    partial.write_text(json.dumps({"url": url, "pid": os.getpid()}))
    partial.replace(path)


def remove_service_record(data_dir: Path) -> None:
    """Forget the record, if it is this process's."""
    if (record := _read(record_path(data_dir))) and record.get("pid") == os.getpid():
        with contextlib.suppress(FileNotFoundError):
            record_path(data_dir).unlink()


def running_service_url(data_dir: Path) -> str | None:
    """The base URL of the `compute up` serving `data_dir`, if one is running."""
    record = _read(record_path(data_dir))
    url = record.get("url") if record else None
    if not record or not isinstance(url, str):
        return None
    pid = record.get("pid")
    if not isinstance(pid, int) or not _alive(pid):
        return None  # a record left by a `compute up` that was killed
    return url


def _read(path: Path) -> dict[str, object] | None:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
