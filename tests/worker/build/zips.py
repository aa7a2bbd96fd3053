"""Zip archives for bundle tests, including the malformed and hostile kinds."""

from __future__ import annotations

import io
import stat
import warnings
import zipfile

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
