"""Who the embedded redis-server runs as, and the directory it runs in as that user.

Started by root, the broker gives up root before it runs: a flaw in Redis reached by a
client (Lua scripts run inside the server) then yields an unprivileged user, not the
machine. That user must be none that jobs run as, or a job could signal, trace or read
the broker: jobs take uids from their own range, which the worker refuses to let overlap
any user this machine names, so the broker's user is one the passwd database knows.
A `compute up` that is not root runs the broker as itself.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from .supervisor import ServiceError

DIRECTORY_MODE = 0o700
# The conventional uid and gid of `nobody`, for hosts whose passwd file lacks it (outside
# the default job range, which starts at 200000).
NOBODY = "nobody"
NOBODY_ID = 65534


@dataclass(frozen=True)
class BrokerUser:
    """An unprivileged user the broker switches to."""

    name: str
    uid: int
    gid: int


def resolve_broker_user(setting: str) -> BrokerUser | None:
    """The user named by `setting` (a name or uid) when this process is root, else None.

    Raises:
        ServiceError: `setting` names no user of this machine, or names root.
    """
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwuid(int(setting)) if setting.isdigit() else pwd.getpwnam(setting)
    except KeyError:
        if setting == NOBODY:
            return BrokerUser(NOBODY, NOBODY_ID, NOBODY_ID)
        raise ServiceError(f"the broker's user {setting!r} is no user of this machine") from None
    if entry.pw_uid == 0:
        raise ServiceError("the broker must run as an unprivileged user, not root")
    return BrokerUser(entry.pw_name, entry.pw_uid, entry.pw_gid)


def prepare_directory(directory: Path, user: BrokerUser | None) -> None:
    """Make `directory` the broker's own and private: owned by `user`, mode 0700."""
    directory.mkdir(mode=DIRECTORY_MODE, exist_ok=True)
    info = directory.lstat()
    if not stat.S_ISDIR(info.st_mode):
        raise ServiceError(f"{directory} must be a directory")
    if user is not None and (info.st_uid, info.st_gid) != (user.uid, user.gid):
        os.chown(directory, user.uid, user.gid, follow_symlinks=False)
    directory.chmod(DIRECTORY_MODE)


def install_executable(source: str, directory: Path) -> Path:
    """A fresh copy of the binary at `source` in `directory`, owned by root; its path.

    The broker's user may not be able to reach `source` at all: the virtualenv can sit
    in a checkout under /root (0700). A copy in the broker's own directory, started from
    there after root has entered it, needs no directory above it to be open to that
    user, and keeps the process named `redis-server` (an exec through /proc/self/fd/N
    would name it after the number). Copied anew on every start, so a binary the
    broker's user swapped in never runs again.
    """
    if os.statvfs(directory).f_flag & os.ST_NOEXEC:
        raise ServiceError(
            f"{directory} is on a filesystem mounted noexec, so the broker cannot run from it:"
            " choose a data directory elsewhere"
        )
    target = directory / Path(source).name
    # The directory belongs to the broker's user: create under a fresh name, never
    # through a link planted there, then rename over whatever holds the target's name.
    staging = directory / f".{target.name}.{secrets.token_hex(8)}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    try:
        with (
            os.fdopen(os.open(staging, flags, 0o700), "wb") as copy,
            open(source, "rb") as original,
        ):
            os.fchmod(copy.fileno(), 0o755)  # whatever the umask: the broker's user runs it
            shutil.copyfileobj(original, copy)
        os.replace(staging, target)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    return target
