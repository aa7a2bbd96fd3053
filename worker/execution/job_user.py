"""The unprivileged uids jobs run as: one per running job or warm executor, never shared.

A worker running as root runs user code under uids taken from a range reserved for jobs
(`JOB_UID_BASE` .. `JOB_UID_BASE + JOB_UID_COUNT - 1`, no passwd entries needed). Each
cold job and each warm executor leases a uid of its own for as long as it lives, so no
two pieces of user code that may run at the same time share one: without the same uid a
job cannot read another job's `/proc/<pid>` entries, its files, or `ptrace` it. A lease is
an exclusive `flock` on a lock file of that uid, which the kernel drops when its holder
dies, so every worker process on the host draws from one pool without a coordinator.
Taking and giving back a uid kills every process still running as it.

The switch happens in the child, after root has put it in its cgroups and namespace and
before any user code runs. A worker that is not root cannot switch: its jobs run as
itself, and it says so at start.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import functools
import os
import pwd
import signal
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from compute.server.settings import Settings

DEFAULT_FIRST_UID = 200_000
DEFAULT_UID_COUNT = 1000
BUILD_UID_COUNT = 100
PR_SET_NO_NEW_PRIVS = 38
# Where the uid locks live: root's own, so no job can take or hold one.
LOCK_DIR_NAME = "compute-job-uids"
KILL_ROUNDS = 5

# Loaded in the parent: a child between fork and exec should not have to dlopen.
_LIBC = ctypes.CDLL(None, use_errno=True)


class NoJobIdentity(RuntimeError):
    """Every uid of the job range is in use on this host."""


@dataclass(frozen=True)
class JobUser:
    """Who a job runs as; `switches` when the worker must become that user in the child."""

    name: str
    uid: int
    gid: int
    switches: bool

    def become(self) -> None:
        """Take this identity for good: run in the job's process, after it entered its cgroups.

        Supplementary groups go first (root's would stay otherwise), then the group, then
        the user; `no_new_privs` keeps a setuid binary from handing any of it back.
        """
        if self.switches:
            self._switch()
        forbid_new_privileges()

    def _switch(self) -> None:
        os.setgroups([])
        os.setgid(self.gid)
        os.setuid(self.uid)

    def give(self, paths: Iterable[Path]) -> None:
        """Make `paths` the job's own, so that it can write them once it has switched."""
        if not self.switches:
            return
        for path in paths:
            os.chown(path, self.uid, self.gid, follow_symlinks=False)

    def give_tree(self, root: Path) -> None:
        """Make `root` and everything under it the job's own."""
        if not self.switches:
            return
        self.give([root])
        for directory, names, files in os.walk(root):
            self.give(Path(directory) / name for name in (*names, *files))

    def open_to(self, directory: Path) -> None:
        """Let this user (and no other) pass through `directory`, which stays root's.

        The directory becomes root's with this user's group and mode 0710: the job may
        enter it but not list, rename or remove what the worker keeps in it.
        """
        if self.switches:
            os.chown(directory, 0, self.gid)
            directory.chmod(0o710)
        else:
            directory.chmod(0o700)

    def can_enter(self, directory: Path) -> bool:
        """Whether this user can pass through every directory down to `directory`."""
        if not self.switches:
            return os.access(directory, os.X_OK)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child only makes system calls, then exits
            try:
                self._switch()
                os._exit(0 if os.access(directory, os.X_OK) else 1)
            finally:
                os._exit(2)
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status) == 0

    def kill_all(self) -> None:
        """SIGKILL every process running as this uid (but never the worker's own user).

        A child that has become the uid calls kill(-1): the kernel signals every process
        that uid may signal, forks in flight too after a few rounds, wherever they moved
        (another session, out of every cgroup).
        """
        if not self.switches:
            return
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child only makes system calls, then exits
            try:
                self._switch()
                for _ in range(KILL_ROUNDS):
                    try:
                        os.kill(-1, signal.SIGKILL)
                    except ProcessLookupError:
                        break
            finally:
                os._exit(0)
        os.waitpid(pid, 0)

    def describe(self) -> str:
        if self.switches:
            return f"uid {self.uid}, gid {self.gid}"
        return (
            f"the worker's own user, {self.name} (uid {self.uid}): only a worker running as "
            "root can run jobs as uids of their own"
        )


def forbid_new_privileges() -> None:
    """Set `PR_SET_NO_NEW_PRIVS`: nothing this process execs may gain privileges."""
    if _LIBC.prctl(PR_SET_NO_NEW_PRIVS, ctypes.c_ulong(1), ctypes.c_ulong(0), 0, 0) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"prctl(PR_SET_NO_NEW_PRIVS): {os.strerror(error)}")


@dataclass(frozen=True)
class JobIdentities:
    """The uids this host's workers lease to jobs and executors, one holder at a time."""

    first_uid: int
    count: int
    switches: bool
    lock_dir: Path

    @property
    def last_uid(self) -> int:
        return self.first_uid + self.count - 1

    def representative(self) -> JobUser:
        """A user standing for every uid of the range (they differ only in number), for
        checks of what jobs may reach."""
        if not self.switches:
            return _own_user()
        return _range_user(self.first_uid)

    @contextlib.contextmanager
    def lease(self) -> Iterator[JobUser]:
        """A uid no other job or executor of this host holds, until the block ends.

        Whatever still runs as it is killed on the way in (left by a holder that died)
        and on the way out.

        Raises:
            NoJobIdentity: every uid of the range is held.
        """
        if not self.switches:
            yield _own_user()
            return
        self.lock_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Start where this process's pid points, so that workers rarely probe the same locks.
        start = os.getpid() % self.count
        for offset in range(self.count):
            uid = self.first_uid + (start + offset) % self.count
            lock = self.lock_dir / f"{uid}.lock"
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            user = _range_user(uid)
            try:
                user.kill_all()
                yield user
            finally:
                user.kill_all()
                os.close(fd)
            return
        raise NoJobIdentity(
            f"all {self.count} job uids ({self.first_uid}-{self.last_uid}) are in use on this "
            "host: raise JOB_UID_COUNT"
        )

    def describe(self) -> str:
        if not self.switches:
            return _own_user().describe()
        return (
            f"uids {self.first_uid}-{self.last_uid}, one per running job or warm executor "
            "(no two share one)"
        )


@functools.lru_cache(maxsize=8)
def resolve_job_identities(
    first_uid: int | None = DEFAULT_FIRST_UID, count: int | None = DEFAULT_UID_COUNT
) -> JobIdentities:
    """The job uid range of the `JOB_UID_BASE` and `JOB_UID_COUNT` settings.

    Raises:
        ValueError: the range is empty, starts at root, or overlaps a user of this machine
            (a job must never run as someone who owns files or processes here).
    """
    first = DEFAULT_FIRST_UID if first_uid is None else int(first_uid)
    size = DEFAULT_UID_COUNT if count is None else int(count)
    if first < 1 or size < 1:
        raise ValueError("JOB_UID_BASE and JOB_UID_COUNT must be positive")
    lock_dir = Path(_lock_root()) / LOCK_DIR_NAME
    if os.geteuid() != 0:
        return JobIdentities(first, size, switches=False, lock_dir=lock_dir)
    taken = [entry.pw_name for entry in pwd.getpwall() if first <= entry.pw_uid < first + size]
    if taken:
        raise ValueError(
            f"the job uid range {first}-{first + size - 1} holds users of this machine "
            f"({', '.join(taken[:3])}): choose another JOB_UID_BASE"
        )
    return JobIdentities(first, size, switches=True, lock_dir=lock_dir)


def job_identities(settings: Settings) -> JobIdentities:
    """The job uids of the service's settings (`JOB_UID_BASE`, `JOB_UID_COUNT`).

    Raises:
        ValueError: see `resolve_job_identities`.
    """
    return resolve_job_identities(settings.job_uid_base, settings.job_uid_count)


def build_identities(settings: Settings) -> JobIdentities:
    """The uids builds run as: the `BUILD_UID_COUNT` after the job range.

    An sdist's build backend is code the function's owner chose, so it runs unprivileged,
    one uid per build; outside the job range, so the job network policy leaves it the
    operator's package index, which may listen on this host.
    """
    jobs = job_identities(settings)
    return resolve_job_identities(jobs.first_uid + jobs.count, BUILD_UID_COUNT)


def describe_job_identities(
    identities: JobIdentities | str, work_dir: str | Path, scratch_root: str | Path | None = None
) -> str:
    """Who jobs run as, for the worker's start-up log, and whether they reach `work_dir`
    (the environments and bundles they run from) and the scratch root; never raises."""
    if isinstance(identities, str):  # the error resolving them
        return f"none: {identities}; every job fails until the job uid range is fixed"
    described = identities.describe()
    user = identities.representative()
    scratch = Path(scratch_root) if scratch_root is not None else Path(tempfile.gettempdir())
    for name, directory, remedy in (
        ("work directory", Path(work_dir), "set COMPUTE_WORK_DIR to one it can"),
        ("scratch directory", scratch, "set COMPUTE_WORK_DIR to one it can"),
    ):
        # Directories still to be made are made open to it: check what exists of the path.
        checked = next(path for path in (directory, *directory.parents) if path.exists())
        if not user.can_enter(checked):
            described += (
                f"; WARNING: jobs cannot pass through to the {name} {directory}, so every "
                f"job will fail: let other users traverse its parents (chmod o+x) or {remedy}"
            )
    return described


def _range_user(uid: int) -> JobUser:
    # Its own number as its group: no group of the machine is shared with a job.
    return JobUser(f"job-{uid}", uid, uid, switches=True)


def _own_user() -> JobUser:
    uid = os.geteuid()
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = str(uid)
    return JobUser(name, uid, os.getegid(), switches=False)


def _lock_root() -> str:
    # /run is cleared at boot with the uids' holders; elsewhere the temporary directory.
    return "/run" if os.access("/run", os.W_OK) else tempfile.gettempdir()
