"""Zip archives for bundle tests, including the malformed and hostile kinds, and a way to
see everything unpacking one left on disk."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import warnings
import zipfile
from pathlib import Path

ENTRYPOINT_SOURCE = b"def main(x):\n    return x * 2\n"


def make_zip(
    entries: list[tuple[str | zipfile.ZipInfo, bytes]],
    compression: int = zipfile.ZIP_DEFLATED,
) -> bytes:
    """A zip of `entries` written in order, duplicates and odd names included."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about duplicate names
        with zipfile.ZipFile(buffer, "w", compression) as archive:
            for name, data in entries:
                archive.writestr(name, data)
    return buffer.getvalue()


def bundle_zip(*extra: tuple[str | zipfile.ZipInfo, bytes]) -> bytes:
    """A valid bundle (an entrypoint) plus `extra` entries."""
    return make_zip([("__dlentrypoint__.py", ENTRYPOINT_SOURCE), *extra])


def special_entry(name: str, file_type: int, data: bytes = b"") -> tuple[zipfile.ZipInfo, bytes]:
    """An entry whose Unix mode says it is a link, FIFO, device, ..."""
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (file_type | 0o777) << 16
    return info, data


def symlink_entry(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    return special_entry(name, stat.S_IFLNK, target.encode())


def tree(root: Path) -> dict[str, str]:
    """Every path under `root` (links not followed), with a file's hash or a link's target."""
    found: dict[str, str] = {}
    for directory, names, files in os.walk(root):
        for name in names + files:
            path = Path(directory) / name
            if path.is_symlink():
                found[str(path.relative_to(root))] = f"link to {os.readlink(path)}"
            elif path.is_file():
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                found[str(path.relative_to(root))] = f"file {digest}"
            else:
                found[str(path.relative_to(root))] = "directory"
    return found
