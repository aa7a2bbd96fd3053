"""A handle on the process running one job, however it was started.

A cold job is a `subprocess.Popen` of the bootstrap; a warm job is a child a warm
executor forked. Confinements and the watch loop see both through `pid`, `poll()` and
`adopted` (whether the confinement must move the process into the job's limits itself).
"""

from __future__ import annotations

import errno
import os
import subprocess
import time
from pathlib import Path
from typing import Protocol

from .confinement import WatchedProcess
from .executor import ExecutorPool, ExecutorUnavailable, WarmExecutor

GATE_OPEN_SECONDS = 10.0
KILLED_EXIT_CODE = -9


class JobProcess(WatchedProcess, Protocol):
    def wait_for(self, timeout: float) -> int | None:
        """The exit code, waiting up to `timeout` seconds for it; None while running."""

    def wait(self) -> int: ...


class ColdProcess:
    """A job started with exec: already confined by the time user code runs."""

    adopted = False

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self.popen = popen
        self.pid = popen.pid

    def poll(self) -> int | None:
        return self.popen.poll()

    def wait_for(self, timeout: float) -> int | None:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def wait(self) -> int:
        return self.popen.wait()


class WarmProcess:
    """A job child of a warm executor, waiting at its gate until released."""

    adopted = True

    def __init__(self, pool: ExecutorPool, executor: WarmExecutor, pid: int, gate: Path) -> None:
        self.pool = pool
        self.executor = executor
        self.pid = pid
        self.gate = gate
        self.returncode: int | None = None

    def release(self) -> None:
        """Let the child run user code; call once it is confined."""
        deadline = time.monotonic() + GATE_OPEN_SECONDS
        while True:
            try:
                fd = os.open(self.gate, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError as error:
                # ENXIO: the child has not opened its end yet.
                if error.errno != errno.ENXIO or time.monotonic() > deadline:
                    raise ExecutorUnavailable("the job child never reached its gate") from error
                if self.poll() is not None:
                    return
                time.sleep(0.001)
        try:
            os.write(fd, b"go")
        finally:
            os.close(fd)

    def _collect(self, timeout: float) -> int | None:
        if self.returncode is None:
            try:
                self.returncode = self.executor.wait_exit(timeout)
            except ExecutorUnavailable:
                self.pool.discard(self.executor)
                self.returncode = KILLED_EXIT_CODE
        return self.returncode

    def poll(self) -> int | None:
        return self._collect(0)

    def wait_for(self, timeout: float) -> int | None:
        return self._collect(timeout)

    def wait(self) -> int:
        while (code := self._collect(1.0)) is None:
            pass
        return code
