"""Never fork while a thread of this process is inside the database.

SQLite keeps the bookkeeping of its locks in process memory. A child forked while a
connection of the parent holds a lock inherits that bookkeeping but not the POSIX locks
behind it, and every connection the child opens then waits on a lock no one will ever
release: its writes fail with "database is locked" for as long as it lives. Celery forks
replacement pool processes from the worker's main process, where the reconciler's thread
uses the database, so the two exclude each other: a fork waits for the sweep under way.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# Re-entrant: a fork from inside the guarded work itself must not deadlock.
_database_work = threading.RLock()


@contextmanager
def database_work() -> Iterator[None]:
    """Hold forks of this process off while the block uses the database."""
    with _database_work:
        yield


def _before_fork() -> None:
    _database_work.acquire()


def _after_fork() -> None:
    _database_work.release()


os.register_at_fork(before=_before_fork, after_in_parent=_after_fork, after_in_child=_after_fork)
