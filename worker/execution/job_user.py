"""The unprivileged user jobs run as, and how a job's process becomes it.

A worker running as root runs every job process (its warm executor and each job child,
or its cold process) as `JOB_USER`, so that user code cannot read the worker's
`/proc/<pid>/environ` (which holds `DATABASE_URL` and `REDIS_URL`), the token-signing
key, the database file or other users' blobs. The switch happens in the child, after
root has put it in the job's cgroups and before any user code runs. A worker that is not
root cannot switch: its jobs run as itself, and it says so at start.

Jobs of different functions share this one user: they are kept from the service's
secrets, not from each other's processes and scratch files.
"""

from __future__ import annotations

import ctypes
import functools
import os
import pwd
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

DEFAULT_JOB_USER = "nobody"
# The conventional uid and gid of `nobody`, for hosts whose passwd file lacks it.
NOBODY_ID = 65534
PR_SET_NO_NEW_PRIVS = 38

# Loaded in the parent: a child between fork and exec should not have to dlopen.
_LIBC = ctypes.CDLL(None, use_errno=True)


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

    def describe(self) -> str:
        if self.switches:
            return f"{self.name} (uid {self.uid}, gid {self.gid})"
        return (
            f"the worker's own user, {self.name} (uid {self.uid}): only a worker running as "
            "root can run jobs as JOB_USER"
        )


def forbid_new_privileges() -> None:
    """Set `PR_SET_NO_NEW_PRIVS`: nothing this process execs may gain privileges."""
    if _LIBC.prctl(PR_SET_NO_NEW_PRIVS, ctypes.c_ulong(1), ctypes.c_ulong(0), 0, 0) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"prctl(PR_SET_NO_NEW_PRIVS): {os.strerror(error)}")


@functools.lru_cache(maxsize=8)
def resolve_job_user(setting: str | int | None = DEFAULT_JOB_USER) -> JobUser:
    """The user jobs run as for the `JOB_USER` setting: a user name or a numeric uid.

    Raises:
        ValueError: the worker is root and `setting` names no user of this machine, or
            names root itself.
    """
    if os.geteuid() != 0:
        uid = os.geteuid()
        return JobUser(_name_of(uid), uid, os.getegid(), switches=False)
    name, uid, gid = _lookup(DEFAULT_JOB_USER if setting in (None, "") else setting)
    if uid == 0:
        raise ValueError("JOB_USER must name an unprivileged user, not root")
    return JobUser(name, uid, gid, switches=True)


def describe_job_user(setting: str | int | None, work_dir: str | Path) -> str:
    """Who jobs run as, for the worker's start-up log, and whether they reach `work_dir`
    (the environments and bundles they run from) and the temporary directory (their
    scratch directories); never raises."""
    try:
        user = resolve_job_user(setting)
    except ValueError as error:
        return f"none: {error}; every job fails until JOB_USER names an unprivileged user"
    described = user.describe()
    # Directories still to be made are made open to it: check what exists of the path.
    work = next(path for path in (Path(work_dir), *Path(work_dir).parents) if path.exists())
    scratch = tempfile.gettempdir()
    for name, directory, checked, remedy in (
        ("work directory", work_dir, work, "set COMPUTE_WORK_DIR to one it can"),
        ("temporary directory", scratch, Path(scratch), "set the worker's TMPDIR"),
    ):
        if not user.can_enter(checked):
            described += (
                f"; WARNING: it cannot pass through to the {name} {directory}, so every "
                f"job will fail: let other users traverse its parents (chmod o+x) or {remedy}"
            )
    return described


def _lookup(setting: str | int) -> tuple[str, int, int]:
    text = str(setting).strip()
    if text.isdigit():
        uid = int(text)
        try:
            entry = pwd.getpwuid(uid)
        except KeyError:
            return text, uid, uid  # a uid without a passwd entry: its own number as group
        return entry.pw_name, uid, entry.pw_gid
    try:
        entry = pwd.getpwnam(text)
    except KeyError:
        if text == DEFAULT_JOB_USER:
            return text, NOBODY_ID, NOBODY_ID
        raise ValueError(f"JOB_USER {text!r} is not a user of this machine") from None
    return entry.pw_name, entry.pw_uid, entry.pw_gid


def _name_of(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
