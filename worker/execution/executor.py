"""Warm executors: one long-lived process per function environment and bundle.

The executor (`executor_main.py`) imports the function's entrypoint once and forks a
child per job, so a job on a warm function pays neither an interpreter start nor its
imports. This side starts executors, hands them jobs, and recycles them after a number
of jobs, after sitting idle, or when they die. Nothing the executor says is unpickled:
its replies are JSON lines. An executor runs as the job user from its start, so user code
it imports and the children it forks never hold the worker's privileges.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .job_user import JobUser
from .runtime import EXECUTOR_MAIN, job_script

START_TIMEOUT_SECONDS = 60.0
MAX_JOBS_PER_EXECUTOR = 1000
MAX_IDLE_SECONDS = 600.0
PER_JOB_VARIABLES = frozenset({"HOME", "TMPDIR"})
EXECUTOR_HOME = {"HOME": "/tmp", "TMPDIR": "/tmp"}


class ExecutorUnavailable(Exception):
    """The executor could not start, could not import the entrypoint, or died."""


@dataclass
class WarmExecutor:
    env_python: str
    bundle_dir: Path
    process: subprocess.Popen[bytes]
    jobs_run: int = 0
    last_used: float = field(default_factory=time.monotonic)

    @classmethod
    def start(
        cls, env_python: str, bundle_dir: Path, env: dict[str, str], user: JobUser
    ) -> WarmExecutor:
        process = subprocess.Popen(
            [env_python, "-I", str(job_script(EXECUTOR_MAIN)), str(bundle_dir)],
            cwd=bundle_dir,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=user.become,
            # Unbuffered: select() on the pipe must see every reply, none may wait in
            # a Python-side buffer.
            bufsize=0,
        )
        executor = cls(env_python, bundle_dir, process)
        message = executor._read(START_TIMEOUT_SECONDS)
        if not message.get("ready"):
            executor.close()
            raise ExecutorUnavailable(message.get("import_error") or "executor did not start")
        return executor

    def _read(self, timeout: float | None) -> dict[str, Any]:
        stdout = self.process.stdout
        assert stdout is not None
        ready, _, _ = select.select([stdout], [], [], timeout)
        if not ready:
            raise TimeoutError("no reply from the executor")
        line = stdout.readline()
        if not line:
            raise ExecutorUnavailable("the executor exited")
        message = json.loads(line)
        if not isinstance(message, dict):
            raise ExecutorUnavailable("the executor sent a malformed reply")
        return message

    def start_job(self, request: dict[str, Any]) -> int:
        """Hand the executor a job; return the pid of the child running it."""
        stdin = self.process.stdin
        assert stdin is not None
        try:
            stdin.write(json.dumps(request).encode() + b"\n")
            stdin.flush()
            message = self._read(START_TIMEOUT_SECONDS)
        except (OSError, TimeoutError) as error:
            raise ExecutorUnavailable(str(error)) from error
        pid = message.get("started")
        if not isinstance(pid, int):
            raise ExecutorUnavailable("the executor did not start the job")
        self.jobs_run += 1
        self.last_used = time.monotonic()
        return pid

    def wait_exit(self, timeout: float) -> int | None:
        """The job child's exit code once the executor reports it, else None."""
        try:
            message = self._read(timeout)
        except TimeoutError:
            return None
        code = message.get("code")
        if not isinstance(code, int):
            raise ExecutorUnavailable("the executor sent a malformed exit report")
        return code

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def worn_out(self) -> bool:
        idle = time.monotonic() - self.last_used
        return self.jobs_run >= MAX_JOBS_PER_EXECUTOR or idle > MAX_IDLE_SECONDS

    def close(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, 9)
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


class ExecutorPool:
    """This worker process's warm executors, keyed by environment and bundle."""

    def __init__(self) -> None:
        self._executors: dict[
            tuple[str, Path, tuple[tuple[str, str], ...], JobUser], WarmExecutor
        ] = {}

    def acquire(
        self, env_python: str, bundle_dir: Path, env: dict[str, str], user: JobUser
    ) -> WarmExecutor:
        """The executor of this environment and bundle running as `user`, started if need be."""
        self._recycle()
        # Thread-count variables are read at import time, so they are part of the key;
        # a job's own home and temp directory are not (each job child gets its own).
        shared = {k: v for k, v in env.items() if k not in PER_JOB_VARIABLES}
        key = (env_python, bundle_dir, tuple(sorted(shared.items())), user)
        executor = self._executors.get(key)
        if executor is None:
            executor = WarmExecutor.start(env_python, bundle_dir, {**shared, **EXECUTOR_HOME}, user)
            self._executors[key] = executor
        return executor

    def discard(self, executor: WarmExecutor) -> None:
        for key, known in list(self._executors.items()):
            if known is executor:
                del self._executors[key]
        executor.close()

    def _recycle(self) -> None:
        for executor in list(self._executors.values()):
            if not executor.alive or executor.worn_out():
                self.discard(executor)

    def close_all(self) -> None:
        for executor in list(self._executors.values()):
            self.discard(executor)
