"""A warm executor's job directory: made once, kept between its jobs, reset after each.

Making and removing each job's directory, its FIFOs and its copy of the bundle cost a
no-op job more than running it: on a disk-backed file system every one is a journaled
metadata change. An executor runs one job at a time, always as the same uid, so it keeps
one directory for all of them. After each job the worker empties what the job could
write (its home and its result directory) and compares the copy of the bundle with what
it copied; only a copy the job changed is copied again. The output FIFOs and the gate
are the worker's, and stay; the call itself goes to the executor with the request.

Every job still starts as the first one did: an empty home, an empty result directory,
a bundle exactly as shipped.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from .job_files import JobFiles
from .job_user import JobUser


@dataclass(frozen=True)
class Entry:
    """One file of the bundle copy, as the worker left it: any change to its content,
    mode, owner or links moves its change time, which the job cannot set back."""

    path: str
    inode: int
    ctime_ns: int
    size: int
    mode: int


def snapshot(root: Path) -> frozenset[Entry]:
    """Every entry under `root`, links not followed."""
    entries = set()
    stack = [str(root)]
    while stack:
        directory = stack.pop()
        with os.scandir(directory) as listing:
            for item in listing:
                info = item.stat(follow_symlinks=False)
                entries.add(
                    Entry(item.path, info.st_ino, info.st_ctime_ns, info.st_size, info.st_mode)
                )
                if stat.S_ISDIR(info.st_mode):
                    stack.append(item.path)
    return frozenset(entries)


def empty(directory: Path) -> None:
    """Remove everything in `directory`, links not followed; the directory stays."""
    with os.scandir(directory) as listing:
        for item in listing:
            if item.is_dir(follow_symlinks=False):
                shutil.rmtree(item.path)
            else:
                os.unlink(item.path)


class JobSlot:
    """The job directory of one executor, for the executor's uid alone.

    `root` is made by the caller, root's with the uid's group (`make_private_directory`).
    """

    def __init__(self, root: Path, bundle_dir: Path, user: JobUser) -> None:
        self.files = JobFiles(root)
        self.bundle_dir = bundle_dir
        self.user = user
        for directory in (self.files.home, self.files.out):
            directory.mkdir(mode=0o700)
        user.give([self.files.home, self.files.out])
        # The worker's pipes, the job's output and its gate: the job may use them, never
        # replace them.
        fifos = [self.files.output, self.files.gate]
        for fifo in fifos:
            os.mkfifo(fifo, 0o600)
        user.give(fifos)
        self._copy_bundle()

    def _copy_bundle(self) -> None:
        shutil.copytree(self.bundle_dir, self.files.work_dir, symlinks=False)
        self.user.give_tree(self.files.work_dir)
        self._pristine = snapshot(self.files.work_dir)

    def reset(self) -> None:
        """Make the directory as the next job must find it; run once the job's processes
        are gone.

        Raises:
            OSError: something could not be removed or copied; the slot is unusable.
        """
        empty(self.files.home)
        empty(self.files.out)
        changed = True
        with contextlib.suppress(OSError):
            changed = snapshot(self.files.work_dir) != self._pristine
        if changed:
            shutil.rmtree(self.files.work_dir, ignore_errors=True)
            self._copy_bundle()
