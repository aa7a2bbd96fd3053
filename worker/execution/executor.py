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
import resource
import select
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from .job_files import JobFiles
from .job_slot import JobSlot
from .job_user import JobIdentities, JobUser
from .runtime import EXECUTOR_MAIN, job_script, scripts_directory
from .sandbox import JobSandbox
from .scratch import clear_except, make_private_directory

if TYPE_CHECKING:
    from .confinement import Confinement
    from .host_enforcement import Enforcement, JobsInTurn
    from .job_limits import JobLimits

START_TIMEOUT_SECONDS = 60.0
MAX_JOBS_PER_EXECUTOR = 1000
MAX_IDLE_SECONDS = 600.0
# Each executor holds a job uid and a cgroup for its life: a few per worker process.
MAX_EXECUTORS_PER_PROCESS = 4
POLL_SECONDS = 0.05
PER_JOB_VARIABLES = frozenset({"HOME", "TMPDIR"})
EXECUTOR_HOME = {"HOME": "/tmp", "TMPDIR": "/tmp"}


class ExecutorUnavailable(Exception):
    """The executor could not start, could not import the entrypoint, or died."""


class ImportTimedOut(Exception):
    """Importing the function's code took longer than the job's timeout."""


class ImportOutOfMemory(Exception):
    """Importing the function's code exceeded the function's memory limit."""


@dataclass(frozen=True)
class Confines:
    """Where and as whom this worker holds user code: the uids it leases, how it limits
    them, and the directory their scratch space is made in."""

    identities: JobIdentities
    enforcement: Enforcement
    scratch_root: Path

    def visible(self, env_python: str) -> list[Path]:
        """What a job must still see inside its namespace: the scratch root, the job
        scripts and its environment."""
        return [self.scratch_root, scripts_directory(), Path(env_python).parent.parent]


def confine_child(
    confinement: Confinement, limits: JobLimits, sandbox: JobSandbox, user: JobUser
) -> None:
    """Run in a job's (or executor's) process between fork and exec, as root: enter its
    cgroups, cap its files, lay out its namespace, then become its uid for good."""
    confinement.child_setup()
    limit_file_size(limits.disk_mb)
    sandbox.enter()
    user.become()


class _Started:
    """The executor's process, as a confinement watches it."""

    adopted = False

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self.pid = process.pid

    def poll(self) -> int | None:
        return self.process.poll()


@dataclass
class WarmExecutor:
    """A running executor: its process, the uid it holds, its cgroup and its directory.

    `home` is root's (mode 0710, the executor's group): it holds the executor's private
    copy of the bundle and `tmp`, which is `/tmp`, `/var/tmp` and `/dev/shm` for it and
    every job it forks, emptied after each job.
    """

    env_python: str
    bundle_dir: Path
    process: subprocess.Popen[bytes]
    user: JobUser
    home: Path
    sandbox: JobSandbox
    confinement: Confinement
    resources: contextlib.ExitStack
    # The directory its jobs run in, one after another (`job_slot.py`), and their cgroups.
    slot: JobSlot
    jobs: JobsInTurn
    jobs_run: int = 0
    last_used: float = field(default_factory=time.monotonic)
    # Its slot could not be reset after a job: it takes no more.
    spoiled: bool = False

    @property
    def private_tmp(self) -> Path:
        return self.home / "tmp"

    @classmethod
    def start(
        cls,
        env_python: str,
        bundle_dir: Path,
        env: dict[str, str],
        limits: JobLimits,
        confines: Confines,
        deadline: float,
    ) -> WarmExecutor:
        """Start an executor and wait, until `deadline` at most, for it to import the code.

        The import runs under the function's limits, in the executor's own cgroup, as
        the uid it leased; whatever the import left running besides the executor is
        killed once it is ready.

        Raises:
            ImportTimedOut: the import was still running at `deadline` (it is killed).
            ImportOutOfMemory: the import exceeded the memory limit.
            ExecutorUnavailable: the import failed or the executor died.
        """
        resources = contextlib.ExitStack()
        try:
            user = resources.enter_context(confines.identities.lease())
            home = make_private_directory(confines.scratch_root, "executor-", user)
            resources.callback(shutil.rmtree, home, ignore_errors=True)
            private_tmp = home / "tmp"
            private_tmp.mkdir(mode=0o700)
            own_bundle = home / "bundle"
            shutil.copytree(bundle_dir, own_bundle, symlinks=False)
            user.give([private_tmp])
            user.give_tree(own_bundle)
            slot_root = make_private_directory(confines.scratch_root, "job-", user)
            resources.callback(shutil.rmtree, slot_root, ignore_errors=True)
            slot = JobSlot(slot_root, bundle_dir, user)
            confinement = resources.enter_context(confines.enforcement.confine(limits))
            jobs = resources.enter_context(confines.enforcement.confine_in_turn(limits))
            sandbox = JobSandbox(private_tmp, [*confines.visible(env_python), home])

            def setup() -> None:
                confine_child(confinement, limits, sandbox, user)

            process = subprocess.Popen(
                [env_python, "-I", str(job_script(EXECUTOR_MAIN)), str(own_bundle)],
                cwd=own_bundle,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=setup,
                # Unbuffered: select() on the pipe must see every reply, none may wait in
                # a Python-side buffer.
                bufsize=0,
            )
            resources.callback(_end_process, process)
            confinement.attach(_Started(process))
            executor = cls(
                env_python,
                bundle_dir,
                process,
                user,
                home,
                sandbox,
                confinement,
                resources,
                slot,
                jobs,
            )
        except BaseException:
            resources.close()
            raise
        try:
            executor._await_ready(deadline)
        except BaseException:
            executor.close()
            raise
        executor._end_strays()
        return executor

    def _await_ready(self, deadline: float) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ImportTimedOut()
            ready, _, _ = select.select([stdout], [], [], min(POLL_SECONDS, remaining))
            if self.confinement.out_of_memory():
                raise ImportOutOfMemory()
            if ready:
                break
        line = stdout.readline()
        if not line and self.confinement.out_of_memory():
            raise ImportOutOfMemory()
        message = json.loads(line) if line else {}
        if not isinstance(message, dict) or not message.get("ready"):
            error = message.get("import_error") if isinstance(message, dict) else None
            raise ExecutorUnavailable(error or "the executor exited while importing")

    def _end_strays(self) -> None:
        """Kill what the import started (a daemon, a pool) besides the executor itself:
        only the executor outlives its start, and each job ends what it starts."""
        if not self.user.switches:  # its uid is the worker's: only its own tree is its
            with contextlib.suppress(psutil.Error):
                for child in psutil.Process(self.process.pid).children(recursive=True):
                    child.kill()
            return
        for process in psutil.process_iter(["uids"]):
            with contextlib.suppress(psutil.Error):
                if process.info["uids"].real == self.user.uid and process.pid != self.process.pid:
                    process.kill()

    @property
    def job_files(self) -> JobFiles:
        """Where each of its jobs runs (reset after each: `end_job`)."""
        return self.slot.files

    def end_job(self) -> None:
        """Leave nothing of the job for the next one: empty the private temporary
        directory (keeping the bound skeleton) and reset the job directory. Run once
        the job's processes are gone."""
        clear_except(self.private_tmp, [inside for _, inside in self.sandbox.skeleton])
        try:
            self.slot.reset()
        except OSError:
            self.spoiled = True

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
            # A request may be megabytes of arguments: written whole, however the pipe
            # takes it.
            unsent = memoryview(json.dumps(request).encode() + b"\n")
            while unsent:
                unsent = unsent[os.write(stdin.fileno(), unsent) :]
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
        spoiled = self.spoiled or self.jobs.spoiled
        return spoiled or self.jobs_run >= MAX_JOBS_PER_EXECUTOR or idle > MAX_IDLE_SECONDS

    def close(self) -> None:
        """End the executor and everything it started, give back its uid, remove its home."""
        self.resources.close()


def _end_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 9)
    process.wait()
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            stream.close()


def limit_file_size(disk_mb: int) -> None:
    """No single file of the job may outgrow its disk limit (SIGXFSZ ends it at once)."""
    size = disk_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))


class ExecutorPool:
    """This worker process's warm executors, keyed by environment, bundle and limits."""

    def __init__(self) -> None:
        self._executors: dict[tuple[Any, ...], WarmExecutor] = {}

    def acquire(
        self,
        env_python: str,
        bundle_dir: Path,
        env: dict[str, str],
        limits: JobLimits,
        confines: Confines,
        deadline: float,
    ) -> WarmExecutor:
        """The executor of this environment, bundle and limits, started if need be (see
        `WarmExecutor.start` for what a start may raise)."""
        self._recycle()
        # Thread-count variables are read at import time, so they are part of the key;
        # a job's own home and temp directory are not (each job child gets its own).
        shared = {k: v for k, v in env.items() if k not in PER_JOB_VARIABLES}
        key = (
            env_python,
            bundle_dir,
            tuple(sorted(shared.items())),
            (limits.memory_mb, limits.cpus, limits.max_processes, limits.disk_mb),
        )
        executor = self._executors.get(key)
        if executor is None:
            self._make_room()
            executor = WarmExecutor.start(
                env_python, bundle_dir, {**shared, **EXECUTOR_HOME}, limits, confines, deadline
            )
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

    def _make_room(self) -> None:
        while len(self._executors) >= MAX_EXECUTORS_PER_PROCESS:
            self.discard(min(self._executors.values(), key=lambda e: e.last_used))

    def close_all(self) -> None:
        for executor in list(self._executors.values()):
            self.discard(executor)
