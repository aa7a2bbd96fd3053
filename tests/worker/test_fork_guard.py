"""A process forked while another thread is inside SQLite can still write to it.

SQLite keeps its lock bookkeeping in process memory: a child forked while the parent
holds a lock inherits the bookkeeping without the lock, and then waits forever on it.
The worker's main process forks pool processes while its reconciler uses the database.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from pathlib import Path

from worker.fork_guard import database_work

HOLD_SECONDS = 0.5


def forked_child_writes(path: Path, guarded: bool) -> tuple[int, float]:
    """Fork while a thread holds a write transaction; the child's exit code (0: it could
    write) and how long the fork waited."""
    inside = threading.Event()

    def hold() -> None:
        with database_work() if guarded else contextlib.nullcontext():
            connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("INSERT INTO t VALUES (1)")
            inside.set()
            time.sleep(HOLD_SECONDS)
            connection.execute("COMMIT")
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    inside.wait()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code
        try:
            time.sleep(HOLD_SECONDS)  # the parent's transaction is over by now
            connection = sqlite3.connect(path, timeout=2, isolation_level=None)
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("INSERT INTO t VALUES (2)")
            connection.execute("COMMIT")
            os._exit(0)
        except BaseException:
            os._exit(1)
    waited = time.monotonic() - started
    _, status = os.waitpid(pid, 0)
    holder.join()
    return os.waitstatus_to_exitcode(status), waited


def test_a_fork_waits_for_database_work_and_the_child_can_write(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    setup = sqlite3.connect(path, isolation_level=None)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute("CREATE TABLE t (x)")
    setup.close()

    code, waited = forked_child_writes(path, guarded=True)

    assert code == 0, "the forked child could not write: it inherited a held SQLite lock"
    assert waited >= HOLD_SECONDS * 0.5


def test_a_fork_from_inside_database_work_does_not_deadlock() -> None:
    with database_work():
        pid = os.fork()
        if pid == 0:  # pragma: no cover
            os._exit(0)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
