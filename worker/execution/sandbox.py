"""A job's view of the file system: private temporary directories, no service's socket.

Run as root in the job's process (or its warm executor) between fork and exec, before it
switches to its uid. It enters a mount namespace of its own, where:

- `/tmp`, `/var/tmp`, `/dev/shm` and `/run/lock` are the job's own scratch directory,
  counted against its disk limit and removed with it, so nothing a job writes there
  outlives it or is seen by another job; the paths the job runs from that lie under
  them (the worker's work directory, in tests) are bound back in at their places;
- every Unix socket that something on the host listens on (PostgreSQL's
  `/var/run/postgresql/.s.PGSQL.5432`, a broker's socket, MySQL's ...) is covered with
  `/dev/null`, so a job cannot connect to a local service the network policy does not
  see (abstract sockets, which have no path, are the network policy's: see README).

Mounts made here never reach the host: the namespace's mounts are private.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

CLONE_NEWNS = 0x00020000
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
SO_ACCEPTCON = 0x10000  # the flag /proc/net/unix shows for a listening socket
# Every directory any user may write: a job writes only its own.
PRIVATE_DIRECTORIES = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")

_LIBC = ctypes.CDLL(None, use_errno=True)


class SandboxError(OSError):
    """The job's namespace could not be made; the job must not run without it."""


def listening_socket_paths() -> list[str]:
    """Paths of the Unix sockets something listens on now (read in the worker, before fork)."""
    paths = []
    try:
        with open("/proc/net/unix") as table:
            next(table)
            for line in table:
                fields = line.split()
                if len(fields) >= 8 and int(fields[3], 16) & SO_ACCEPTCON:
                    path = " ".join(fields[7:])
                    if path.startswith("/"):
                        paths.append(path)
    except OSError:
        return []
    return sorted(set(paths))


def _under(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


@dataclass
class JobSandbox:
    """What one job's namespace needs, prepared in the worker so the child only mounts.

    Attributes:
        private_tmp: the host directory that becomes the job's `/tmp`, `/var/tmp` and
            `/dev/shm`; owned by the job.
        keep_visible: directories the job runs from (its scratch root, the job scripts,
            its environment); those under a private directory are bound back in.
    """

    private_tmp: Path
    keep_visible: Sequence[Path]

    def __post_init__(self) -> None:
        # Only root may make a mount namespace; a worker that is not root runs jobs as
        # itself, with the file system it sees (it says so at start: `describe`).
        self.enabled = os.geteuid() == 0
        self.sockets = listening_socket_paths() if self.enabled else []
        self.skeleton = self._skeleton() if self.enabled else []

    def _skeleton(self) -> list[tuple[str, Path]]:
        """(kept directory, where it is bound inside the private directory) for each kept
        directory a private directory would cover."""
        bound: list[tuple[str, Path]] = []
        kept = sorted({os.path.realpath(path) for path in self.keep_visible}, key=len)
        # A directory inside another kept one comes along with it.
        outermost = [k for k in kept if not any(o != k and _under(k, o) for o in kept)]
        for text in outermost:
            for directory in PRIVATE_DIRECTORIES:
                if _under(text, directory) and text != directory:
                    inside = self.private_tmp / os.path.relpath(text, directory)
                    if all(existing != inside for _, existing in bound):
                        bound.append((text, inside))
        return bound

    def enter(self) -> None:
        """Enter a new mount namespace and lay out the job's view; runs in the child as root.

        Kept directories are bound into the private directory first, at the place they
        will have once it covers `/tmp`, while their paths still name them.
        """
        if not self.enabled:
            return
        _check(_LIBC.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
        _mount(None, "/", MS_REC | MS_PRIVATE)
        for source, inside in self.skeleton:
            os.makedirs(inside, exist_ok=True)
            # The way in may be passed, not listed: it shows nothing of the host's /tmp.
            for way_in in (inside, *inside.parents):
                if way_in == self.private_tmp:
                    break
                os.chmod(way_in, 0o711)
            _mount(source, str(inside), MS_BIND)
        private = str(self.private_tmp)
        source = private
        for directory in PRIVATE_DIRECTORIES:
            if os.path.isdir(directory):
                _mount(source, directory, MS_BIND | MS_REC)
                # Its own path may lie under what it now covers: bind the rest from here.
                source = directory
        for path in self.sockets:
            if os.path.lexists(path) and not _under(path, private):
                _mount("/dev/null", path, MS_BIND)


def _mount(source: str | None, target: str, flags: int) -> None:
    result = _LIBC.mount(
        None if source is None else source.encode(), target.encode(), None, flags, None
    )
    _check(result, f"mount {source} on {target}")


def _check(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise SandboxError(error, f"{what}: {os.strerror(error)}")


def describe_sandbox() -> str:
    """How a job's file system is separated, for the worker's start-up log."""
    if os.geteuid() != 0:
        return (
            "not separated: only a worker running as root gives each job a mount namespace; "
            "jobs share /tmp and may reach services' Unix sockets"
        )
    return (
        "a mount namespace per job and warm executor: private /tmp, /var/tmp, /dev/shm and "
        "/run/lock, every listening Unix socket covered"
    )
