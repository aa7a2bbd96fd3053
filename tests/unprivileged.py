"""Run a piece of a test as another uid, so a root test run checks what users get too."""

from __future__ import annotations

import json
import os
import pwd
import select
import signal
from collections.abc import Callable

from tests.capabilities import ROOT


def nobody() -> int:
    """The uid of `nobody`, the unprivileged user of this machine (65534 if it has none)."""
    try:
        return pwd.getpwnam("nobody").pw_uid
    except KeyError:
        return 65534


def as_uid(uid: int, attempt: Callable[[], object], timeout: float = 10) -> object:
    """Run `attempt` in a forked child that has become `uid` (and gid `uid`, no other
    groups): what it returned, through JSON, or a string saying how the child failed."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe, then exits
        result: object = "the child failed before reporting"
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            result = attempt()
        except BaseException as error:
            result = f"the child raised {error!r}"
        finally:
            os.write(write_end, json.dumps(result).encode())
            os._exit(0)
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], timeout)
        if not ready:
            os.kill(pid, signal.SIGKILL)
            return "the child hung"
        return json.loads(os.read(read_end, 65536))
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)


def as_a_user(attempt: Callable[[], object]) -> object:
    """`attempt()` as an unprivileged user would see it, through JSON: as `nobody` when
    this process is root, else as this process's own user."""
    if ROOT:
        return as_uid(nobody(), attempt)
    return json.loads(json.dumps(attempt()))
