"""Jobs' scratch space on the worker's disk: made private, measured, and emptied.

Every job and warm executor gets a directory under the scratch root (`<work dir>/jobs`)
that is root's, mode 0710, with the job's uid as its group: that job may pass through
it, no other job may, and the job cannot rename or remove what the worker keeps there
(its FIFOs, its gate). What the job writes (its home, its copy of the bundle, its
`/tmp`) is counted against its disk limit and removed when it ends.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from .job_user import JobUser

ROOT_MODE = 0o711  # jobs pass through to their own directory; none may list the others
DISK_POLL_SECONDS = 1.0


def job_scratch_root(work_dir: Path) -> Path:
    """Where a worker makes its jobs' and executors' directories."""
    return work_dir / "jobs"


def prepare_scratch_root(root: Path) -> Path:
    root.mkdir(mode=ROOT_MODE, parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.chown(root, 0, 0)
    root.chmod(ROOT_MODE)
    return root


def make_private_directory(root: Path, prefix: str, user: JobUser) -> Path:
    """A new directory under `root` that `user` alone (besides the worker) may enter."""
    prepare_scratch_root(root)
    directory = Path(tempfile.mkdtemp(prefix=prefix, dir=root))
    user.open_to(directory)
    return directory


def disk_usage_bytes(roots: Iterable[Path]) -> int:
    """Bytes allocated to every file under `roots`, links not followed; never raises.

    Allocated blocks, not apparent sizes: a sparse file costs what it really holds.
    """
    total = 0
    stack = [str(root) for root in roots]
    while stack:
        directory = stack.pop()
        with contextlib.suppress(OSError), os.scandir(directory) as entries:
            for entry in entries:
                with contextlib.suppress(OSError):
                    info = entry.stat(follow_symlinks=False)
                    total += info.st_blocks * 512
                    if stat.S_ISDIR(info.st_mode):
                        stack.append(entry.path)
    return total


def clear_except(directory: Path, keep: Iterable[Path]) -> None:
    """Remove everything in `directory` but the directories in `keep` and their parents
    (mount points of a live namespace: removing one would detach its mount there)."""
    kept = {str(path) for path in keep}
    parents = {str(parent) for path in keep for parent in path.parents}
    with contextlib.suppress(OSError), os.scandir(directory) as entries:
        for entry in entries:
            if entry.path in kept:
                continue
            if entry.path in parents:
                clear_except(Path(entry.path), keep)
            elif entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


class DiskWatch:
    """How much a job has written to its directories, against its disk limit.

    Measured from the start, so the copy of the bundle the job starts with is not its
    own writing; read every `DISK_POLL_SECONDS` while it runs and once when it ends.
    """

    def __init__(self, roots: list[Path], limit_mb: int) -> None:
        self.roots = roots
        self.limit = limit_mb * 1024 * 1024
        self.baseline = disk_usage_bytes(roots)
        self.checked = time.monotonic()

    def exceeded(self) -> bool:
        self.checked = time.monotonic()
        # Reaching the limit counts: RLIMIT_FSIZE stops a single file exactly there.
        return disk_usage_bytes(self.roots) - self.baseline >= self.limit

    def due(self) -> bool:
        return time.monotonic() - self.checked >= DISK_POLL_SECONDS
