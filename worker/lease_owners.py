"""How a worker process names itself as the owner of the leases it holds: `host:pid`.

The reconciler of the same host reads the pid back to tell a lost attempt (its process
is gone) from a live one without waiting for its lease to run out.
"""

from __future__ import annotations

import os
import socket


def worker_identity() -> str:
    """This worker process as a lease owner: `host:pid`."""
    return f"{local_owner_prefix()}{os.getpid()}"


def local_owner_prefix() -> str:
    """What the lease owners of every worker process of this host start with."""
    return f"{socket.gethostname()}:"


def owner_pid(lease_owner: str) -> int | None:
    """The process id a lease owner names, if it names one."""
    pid = lease_owner.rpartition(":")[2]
    return int(pid) if pid.isdigit() else None
