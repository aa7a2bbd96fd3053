"""A handle on the process running one job, however it was started.

A cold job is a `subprocess.Popen` of the bootstrap; a warm job is a child a warm
executor forked. Confinements and the watch loop see both through `pid`, `poll()` and
`adopted` (whether the confinement must move the process into the job's limits itself).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Protocol

from .confinement import WatchedProcess
from .executor import ExecutorPool, ExecutorUnavailable, WarmExecutor

GO = b"go"  # what the child waits to read at its gate
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


def open_gate(path: Path) -> int:
    """Open a job child's gate FIFO for reading and writing, before the child exists.

    A FIFO held open both ways never blocks its opener: the child's own open returns at
    once and its read waits for `GO`, so the worker need not wait for the child to reach
    its gate before releasing it. Held until the job is over (`WarmProcess.close_gate`).
    """
    return os.open(path, os.O_RDWR | os.O_NONBLOCK)


class WarmProcess:
    """A job child of a warm executor, waiting at its gate until released."""

    adopted = True

    def __init__(self, pool: ExecutorPool, executor: WarmExecutor, pid: int, gate: int) -> None:
        """`gate`: the worker's descriptor of the child's gate FIFO, open for reading and
        writing (`open_gate`)."""
        self.pool = pool
        self.executor = executor
        self.pid = pid
        self.gate: int | None = gate
        self.returncode: int | None = None

    def release(self) -> None:
        """Let the child run user code; call once it is confined."""
        if self.gate is not None:
            os.write(self.gate, GO)

    def close_gate(self) -> None:
        """Let go of the gate once the job is over, released or not.

        Not at release: the child may not have opened its end yet, and a FIFO nobody
        holds open loses what was written to it. A child never released reads the end of
        the file instead of `GO`, and exits without running the job.
        """
        if self.gate is not None:
            os.close(self.gate)
            self.gate = None

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
