"""Unpack a function's bundle zip, treating it as hostile input.

Every entry is checked before anything is written: the archive's size, entry count and
per-entry compression ratio are capped, names may not escape the target directory, and
only regular files and directories are accepted. The ratio is capped for the archive as
a whole too, or many entries each small enough to be exempt would add up to a bomb.
Extraction then counts the bytes it actually inflates, since the sizes a zip declares
are the attacker's to choose.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from .errors import BundleError
from .ziptail import declared_entry_count

ENTRYPOINT = "__dlentrypoint__.py"
REQUIREMENTS = "requirements.txt"
MiB = 1024 * 1024
CHUNK_SIZE = MiB
# Compression methods the SDK writes; other methods only widen what the decoder is fed.
ALLOWED_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}
DRIVE = re.compile(r"^[A-Za-z]:")
MAX_NAME_BYTES = 1024


@dataclass(frozen=True)
class BundleLimits:
    """Caps on one bundle; the defaults fit any function the SDK would reasonably upload."""

    max_compressed_bytes: int = 256 * MiB
    max_uncompressed_bytes: int = 1024 * MiB
    max_entries: int = 10_000
    max_ratio: float = 100.0
    # Small entries of repetitive text reach high ratios innocently; a bomb needs size.
    ratio_exempt_bytes: int = MiB


@dataclass(frozen=True)
class UnpackedBundle:
    """A bundle unpacked into `path`, which holds `__dlentrypoint__.py` at its root."""

    path: Path
    files: int
    total_bytes: int

    @property
    def requirements_path(self) -> Path | None:
        candidate = self.path / REQUIREMENTS
        return candidate if candidate.is_file() else None


def unpack_bundle(
    source: bytes | Path, target: Path, limits: BundleLimits | None = None
) -> UnpackedBundle:
    """Check the zip `source` and unpack it into the new directory `target`.

    Args:
        source: the zip's bytes, or the path of a zip file.
        target: a directory that must not exist yet (or be empty); it is created.
        limits: caps on size, entries and compression ratio.

    Returns:
        The unpacked bundle.

    Raises:
        BundleError: the zip is refused; nothing is left in `target`.
    """
    limits = limits or BundleLimits()
    size = len(source) if isinstance(source, bytes) else _file_size(source)
    if size > limits.max_compressed_bytes:
        raise BundleError(
            f"bundle is {size:,} bytes; the limit is {limits.max_compressed_bytes:,} bytes"
        )
    _make_fresh_directory(target)
    try:
        with _open(source) as stream:
            total = _extract(stream, size, target, limits)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    return UnpackedBundle(path=target, files=total[0], total_bytes=total[1])


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError as error:
        raise BundleError(f"bundle file cannot be read: {error.strerror}") from None


def _open(source: bytes | Path) -> BinaryIO:
    return io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")  # noqa: SIM115


def _make_fresh_directory(target: Path) -> None:
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise FileExistsError(f"bundle target {target} exists and is not an empty directory")
    target.mkdir(parents=True, exist_ok=True)


def _extract(stream: BinaryIO, size: int, target: Path, limits: BundleLimits) -> tuple[int, int]:
    # Refuse an oversized directory from the end record alone, before parsing it.
    declared = declared_entry_count(stream)
    if declared is not None and declared > limits.max_entries:
        raise BundleError(f"bundle has {declared:,} entries; the limit is {limits.max_entries:,}")
    try:
        with zipfile.ZipFile(stream) as archive:
            entries = archive.infolist()
            _check_entries(entries, size, limits)
            written = sum(_write(archive, entry, target, limits) for entry in entries)
            return sum(not entry.is_dir() for entry in entries), written
    except BundleError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OverflowError) as error:
        raise BundleError(f"bundle is not a valid zip file: {error}") from None
    except NotImplementedError as error:
        raise BundleError(f"bundle uses an unsupported zip feature: {error}") from None


def _check_entries(entries: list[zipfile.ZipInfo], size: int, limits: BundleLimits) -> None:
    if len(entries) > limits.max_entries:
        raise BundleError(
            f"bundle has {len(entries):,} entries; the limit is {limits.max_entries:,}"
        )
    named: set[PurePosixPath] = set()
    files: set[PurePosixPath] = set()
    directories: set[PurePosixPath] = set()
    declared_total = 0
    for entry in entries:
        path = entry_path(entry.filename)
        _check_kind(entry)
        _check_encoding(entry, limits)
        if path in named:
            raise BundleError(f"bundle entry {entry.filename!r} appears more than once")
        named.add(path)
        (directories if entry.is_dir() else files).add(path)
        directories.update(path.parents)
        declared_total += entry.file_size
        if declared_total > limits.max_uncompressed_bytes:
            raise BundleError(
                f"bundle unpacks to more than {limits.max_uncompressed_bytes:,} bytes"
            )
    _check_total_ratio(declared_total, size, limits)
    if clash := files & directories:
        raise BundleError(f"bundle entry {str(min(clash))!r} is both a file and a directory")
    if PurePosixPath(ENTRYPOINT) not in files:
        raise BundleError(f"bundle has no {ENTRYPOINT} at its root")


def entry_path(name: str) -> PurePosixPath:
    """The relative path an entry name stands for, or `BundleError` if it could escape."""
    if "\\" in name:
        raise BundleError(f"bundle entry {name!r} contains a backslash")
    if name.startswith("/") or DRIVE.match(name):
        raise BundleError(f"bundle entry {name!r} is an absolute path")
    parts = name.removesuffix("/").split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise BundleError(f"bundle entry {name!r} has an empty, '.' or '..' path component")
    if any(ord(char) < 32 for char in name):
        raise BundleError(f"bundle entry {name!r} contains a control character")
    if len(name.encode()) > MAX_NAME_BYTES or any(len(p.encode()) > 255 for p in parts):
        raise BundleError(f"bundle entry {name[:80]!r}... has too long a name")
    return PurePosixPath(*parts)


def _check_kind(entry: zipfile.ZipInfo) -> None:
    # The high 16 bits hold a Unix st_mode when the creator set one; zero means "none".
    mode = entry.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if stat.S_ISLNK(mode):
        raise BundleError(f"bundle entry {entry.filename!r} is a symbolic link")
    if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
        raise BundleError(f"bundle entry {entry.filename!r} is a special file")
    if kind == stat.S_IFDIR and not entry.is_dir():
        raise BundleError(f"bundle entry {entry.filename!r} is a directory without a '/'")


def _check_encoding(entry: zipfile.ZipInfo, limits: BundleLimits) -> None:
    if entry.flag_bits & 0x1:
        raise BundleError(f"bundle entry {entry.filename!r} is encrypted")
    if entry.compress_type not in ALLOWED_METHODS:
        raise BundleError(
            f"bundle entry {entry.filename!r} uses compression method {entry.compress_type}; "
            "only stored and deflated entries are accepted"
        )
    if entry.file_size > limits.ratio_exempt_bytes:
        ratio = entry.file_size / max(entry.compress_size, 1)
        if ratio > limits.max_ratio:
            raise BundleError(
                f"bundle entry {entry.filename!r} has a compression ratio of {ratio:,.0f}; "
                f"the limit is {limits.max_ratio:g}"
            )


def _check_total_ratio(declared_total: int, size: int, limits: BundleLimits) -> None:
    # Against the archive's real size, not the compressed sizes its entries declare.
    if declared_total > limits.ratio_exempt_bytes:
        ratio = declared_total / max(size, 1)
        if ratio > limits.max_ratio:
            raise BundleError(
                f"bundle unpacks to {declared_total:,} bytes from {size:,}, a compression "
                f"ratio of {ratio:,.0f}; the limit is {limits.max_ratio:g}"
            )


def _write(
    archive: zipfile.ZipFile, entry: zipfile.ZipInfo, target: Path, limits: BundleLimits
) -> int:
    destination = target.joinpath(*entry_path(entry.filename).parts)
    if entry.is_dir():
        destination.mkdir(mode=0o755, parents=True, exist_ok=True)
        return 0
    destination.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    # O_EXCL and O_NOFOLLOW: even if a check above were wrong, never write through a link.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    written = 0
    with archive.open(entry) as source, os.fdopen(os.open(destination, flags, 0o644), "wb") as out:
        while chunk := source.read(CHUNK_SIZE):
            written += len(chunk)
            if written > entry.file_size:
                raise BundleError(f"bundle entry {entry.filename!r} is larger than it declares")
            out.write(chunk)
    return written
