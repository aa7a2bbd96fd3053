"""The scratch files of one job, and how the worker reads back what the job wrote there.

The job writes its result and, when it raises, the summary of its exception in `out/`,
a directory of its own. Both are untrusted: the worker opens neither through a link nor
a FIFO, only a regular file of the job's uid, and never reads past a bound. The result
is copied into a spooled file of the worker's (`job_result.py`), so a large one is never
held whole in memory. The summary becomes the job's failure reason, so it is cut to one
line of printable text.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .job_result import JobResult, copy_capped, new_spool
from .job_user import JobUser

# A reason is read in a table row or an exception message: a summary past this is a
# data dump, and what it says first is what matters.
MAX_REASON_CHARS = 500
# Enough bytes for MAX_REASON_CHARS of any UTF-8 text, with whitespace to collapse.
MAX_SUMMARY_BYTES = 8 * MAX_REASON_CHARS
ELLIPSIS = "…"
# Characters that could rewrite what a terminal or a table shows (escapes, bidi
# overrides, zero-width marks), or are not text at all.
UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})


@dataclass
class JobFiles:
    """The scratch files of one job: its call, result, home and private bundle copy."""

    root: Path

    @property
    def call(self) -> Path:
        return self.root / "call.json"

    @property
    def out(self) -> Path:
        """The job's own directory for its result (written to a temporary name first)."""
        return self.root / "out"

    @property
    def result(self) -> Path:
        return self.out / "result.bin"

    @property
    def failure(self) -> Path:
        """Where the job's runner leaves the one-line summary of the exception it raised."""
        return self.out / "failure.txt"

    @property
    def output(self) -> Path:
        """The FIFO a warm job's stdout and stderr both go to (the worker's)."""
        return self.root / "output"

    @property
    def gate(self) -> Path:
        """The FIFO a warm job's child waits at until the worker has confined it."""
        return self.root / "gate"

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def work_dir(self) -> Path:
        return self.root / "bundle"

    @property
    def tmp(self) -> Path:
        """The job's `/tmp` when it runs cold (a warm job uses its executor's)."""
        return self.root / "tmp"

    def prepare(self, bundle_dir: Path, call: dict[str, Any], user: JobUser) -> None:
        """Write the call, make the home, result and temporary directories and copy the
        bundle; `root` is already open to `user` alone."""
        fd = os.open(self.call, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(call, handle)
        for directory in (self.home, self.out, self.tmp):
            directory.mkdir(mode=0o700)
        # Each job works in its own copy, so one job's files never reach the next.
        shutil.copytree(bundle_dir, self.work_dir, symlinks=False)
        user.give([self.call, self.home, self.out, self.tmp])
        user.give_tree(self.work_dir)


class Refused(Exception):
    """What the job left where a file of its own was expected is not one."""


def open_own_file(path: Path, user: JobUser) -> IO[bytes] | None:
    """`path` opened for reading, or None when it does not exist.

    Raises:
        Refused: it is a link, a FIFO, a directory, or a file of another uid.
    """
    try:
        # Not a link (it could name any file the worker may read), and never blocking.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise Refused("not a regular file") from error
    handle = os.fdopen(fd, "rb")
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_uid != user.uid:
        handle.close()
        raise Refused("not a regular file of its own")
    return handle


def read_result(
    path: Path, user: JobUser, max_bytes: int, spool_dir: Path | None
) -> tuple[JobResult | None, str | None]:
    """The result the job wrote, copied out of its reach, or why it is refused; never
    reads more than `max_bytes` of its value.

    The copy is the worker's own (`job_result.py`): in memory while small, else in an
    unnamed file of `spool_dir` that no job can open.

    Returns:
        (the result, None), (None, None) when there is no result, or (None, the reason
        it was refused).
    """
    try:
        handle = open_own_file(path, user)
    except Refused as refused:
        return None, f"its result is {refused}"
    if handle is None:
        return None, None
    with handle:
        size = os.fstat(handle.fileno()).st_size
        if size - 1 > max_bytes:  # the tag byte is not part of the value
            return None, _too_large(size - 1, max_bytes)
        return _spool_result(handle, max_bytes, spool_dir)


def _spool_result(
    handle: IO[bytes], max_bytes: int, spool_dir: Path | None
) -> tuple[JobResult | None, str | None]:
    """Copy the open result into a spool of the worker's, a piece at a time, stopping one
    byte past `max_bytes`: the size checked may be out of date, the copy's never is."""
    tag = handle.read(1)
    spool = new_spool(spool_dir)
    try:
        copied = copy_capped(handle, spool, max_bytes + 1)
    except BaseException:
        spool.close()
        raise
    if copied > max_bytes:  # it grew after the check
        spool.close()
        return None, _too_large(copied, max_bytes)
    return JobResult(tag, spool, copied), None


def _too_large(size: int, max_bytes: int) -> str:
    return f"its result of {size} bytes exceeds the {max_bytes} byte limit"


def read_failure(path: Path, user: JobUser) -> str | None:
    """The summary of the exception the job raised, cleaned; None without a usable one."""
    try:
        handle = open_own_file(path, user)
    except Refused:
        return None
    if handle is None:
        return None
    with handle:
        data = handle.read(MAX_SUMMARY_BYTES)
    return clean_reason(data.decode("utf-8", errors="replace")) or None


def clean_reason(text: str, max_chars: int = MAX_REASON_CHARS) -> str:
    """`text` as one line of printable characters, at most `max_chars` long.

    Line breaks and other whitespace become single spaces; control and format
    characters (terminal escapes, bidi overrides) are dropped; a longer text keeps its
    beginning and ends with an ellipsis.
    """
    words = " ".join(text.split())
    printable = "".join(c for c in words if unicodedata.category(c) not in UNPRINTABLE)
    printable = " ".join(printable.split())
    if len(printable) <= max_chars:
        return printable
    return printable[: max_chars - len(ELLIPSIS)].rstrip() + ELLIPSIS
