"""Start the job's process in its function's environment, watch it, and end it on a limit.

Only this parent decides the outcome. The child sees a scrubbed environment (no
database, broker or signing secrets), runs in its own session as a uid no other running
job holds (`job_user.py`), in a mount namespace with private temporary directories and
no service's socket (`sandbox.py`), confined as the worker's enforcement decides
(`host_enforcement.py`): in cgroups of its own where the host offers them, else under a
watch of its process tree. Its disk use is measured as it runs (`scratch.py`).

The job's scratch directory stays the worker's, so the job cannot swap the entries the
worker opens (its output FIFOs, its gate, its result directory) for links; the job owns
what it writes: its home, its copy of the bundle, its `/tmp` and the directory its
result goes to. The result, and the summary of an exception, are read only if they are
regular files the job wrote, and never past a bound (`job_files.py`); the result is
copied into a spooled file of the worker's, on its disk past a small size, which the
outcome holds until its caller closes it (`job_result.py`).
"""

from __future__ import annotations

import contextlib
import enum
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from .bootstrap import EXCEPTION_EXIT_CODE
from .confinement import Confinement
from .executor import (
    Confines,
    ExecutorPool,
    ExecutorUnavailable,
    ImportOutOfMemory,
    ImportTimedOut,
    WarmExecutor,
    confine_child,
)
from .host_enforcement import EnforcementMode, select_enforcement
from .job_files import JobFiles, read_failure, read_result
from .job_limits import JobLimits
from .job_result import JobResult
from .job_user import JobIdentities, JobUser, resolve_job_identities
from .joblog import MAX_LINE_BYTES, JobLog
from .kept_threads import kept_threads
from .process_handle import ColdProcess, JobProcess, WarmProcess, open_gate
from .runtime import BOOTSTRAP, job_script
from .sandbox import JobSandbox
from .scratch import DiskWatch, make_private_directory

POLL_SECONDS = 0.05
SIGXFSZ_EXIT = -25  # a file grew past RLIMIT_FSIZE, the disk limit
PUMP_JOIN_SECONDS = 5.0
DEFAULT_MAX_RESULT_BYTES = 64 * 1024 * 1024
# Once the log is full, output is only counted, in reads this large.
DRAIN_BYTES = 1024 * 1024


class AttemptWatch(Protocol):
    """What the caller looks at while its job runs, a few times a second: the job's
    live log and whether its owner canceled it (`worker/attempt_watch.py`)."""

    @property
    def canceled(self) -> bool: ...

    def tick(self) -> None: ...


class Ending(enum.Enum):
    EXITED = "exited"
    TIMED_OUT = "timed_out"
    OUT_OF_MEMORY = "out_of_memory"
    # The worker lost its claim on the job (its lease was recovered elsewhere): the
    # attempt was stopped so that at most one attempt of a job is ever alive.
    ABANDONED = "abandoned"
    DISK_EXCEEDED = "disk_exceeded"
    # Its owner canceled the job: the attempt was stopped at once.
    CANCELED = "canceled"


@dataclass
class ProcessOutcome:
    """How a job's process ended, and what it returned. Close it (or use it as a context
    manager) once done with it: its result may hold a file of the worker's."""

    ending: Ending
    exit_code: int | None
    result: JobResult | None  # when the call returned
    runtime: float
    peak_rss_mb: float
    # Why the result the job wrote was not kept (too large, not a file it wrote).
    refused_result: str | None = None
    # The exception that ended the call, one cleaned line: `ValueError: bad tile 17`.
    failure: str | None = None

    def close(self) -> None:
        """Let go of the worker's copy of the result, if any; idempotent."""
        if self.result is not None:
            self.result.close()

    def __enter__(self) -> ProcessOutcome:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def job_environment(limits: JobLimits, env_python: str, home: str) -> dict[str, str]:
    """Everything the job process may see of its environment, and nothing else."""
    env_bin = str(Path(env_python).parent)
    return {
        "PATH": f"{env_bin}:/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": home,
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        **limits.thread_environment(),
    }


def _pump(stream: IO[bytes], log: JobLog) -> None:
    # A line is read at most MAX_LINE_BYTES at a time and, once the log is full, output
    # is only counted: a job printing gigabytes, or one endless line, costs no memory.
    while not log.full and (raw := stream.readline(MAX_LINE_BYTES)):
        truncated = len(raw) == MAX_LINE_BYTES and not raw.endswith(b"\n")
        if truncated:
            _skip_rest_of_line(stream)
        log.add_output(raw.decode("utf-8", errors="replace"), truncated=truncated)
    # The pipes (Popen's and the FIFOs) are buffered readers, which IO[bytes] does not say.
    while chunk := stream.read1(DRAIN_BYTES):  # type: ignore[attr-defined]
        log.drop(chunk.count(b"\n"))
    stream.close()


def _skip_rest_of_line(stream: IO[bytes]) -> None:
    while (rest := stream.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
        pass


def default_scratch_root() -> Path:
    return Path(tempfile.gettempdir()) / "compute-jobs"


@dataclass
class Launched:
    """A started job: its process, its output pumps, how to release it, its executor."""

    process: JobProcess
    pumps: Pumps
    release: Callable[[], None]
    executor: WarmExecutor | None = None
    # What `release` holds until it runs, let go of whether or not it ran.
    close: Callable[[], None] = lambda: None


def run_process(
    env_python: str,
    bundle_dir: Path,
    args: list[Any] | None,
    kwargs: dict[str, Any] | None,
    limits: JobLimits,
    log: JobLog,
    enforcement: str = EnforcementMode.AUTO,
    executors: ExecutorPool | None = None,
    abandon: threading.Event | None = None,
    identities: JobIdentities | None = None,
    max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES,
    scratch_root: Path | None = None,
    watch: AttemptWatch | None = None,
) -> ProcessOutcome:
    """Run `main(*args, **kwargs)` of the bundle under `limits`, logging its output.

    Args:
        enforcement: an `EnforcementMode` value; the host is probed once per process.
        executors: where to find a warm executor for the bundle; without one, or when
            the bundle cannot be imported warm, the job starts a fresh interpreter.
            Importing the bundle counts against the job's timeout and memory.
        abandon: set by the caller when the attempt must stop at once (its claim on
            the job is gone); the process tree is ended and the outcome is `ABANDONED`.
        watch: looked at while the job runs: `tick` a few times a second, and when it
            sets `canceled` the process tree is ended and the outcome is `CANCELED`.
        identities: the job uids to lease one from (`resolve_job_identities()` if None).
        max_result_bytes: the largest encoded value kept; a larger one is refused
            without being read (`refused_result`).
        scratch_root: where the job's directories are made, and where a large result is
            spooled; the system's temporary directory's `compute-jobs` if None.

    Raises:
        EnforcementUnavailable: `cgroup` enforcement was asked for and the host has none.
        NoJobIdentity: every job uid is in use on this host.
    """
    confines = Confines(
        identities or resolve_job_identities(),
        select_enforcement(enforcement),
        scratch_root or default_scratch_root(),
    )
    started = time.monotonic()
    deadline = started + limits.timeout_seconds
    call = {"args": args or [], "kwargs": kwargs or {}}
    with contextlib.ExitStack() as stack:
        # Entered first, so left last: a result read is closed if anything after fails,
        # ending the job's processes or emptying its directories included.
        kept = stack.enter_context(_KeptResult())
        confinement: Confinement
        launched: Launched | None = None
        if executors is not None:
            try:
                executor = executors.acquire(
                    env_python,
                    bundle_dir,
                    job_environment(limits, env_python, "/tmp"),
                    limits,
                    confines,
                    deadline,
                )
            except ImportTimedOut:
                log.add(
                    f"[importing the function's code took longer than its "
                    f"{limits.timeout_seconds:g} s timeout]"
                )
                return _ended_early(Ending.TIMED_OUT, started)
            except ImportOutOfMemory:
                log.add(
                    f"[importing the function's code exceeded its {limits.memory_mb} MB "
                    "memory limit]"
                )
                return _ended_early(Ending.OUT_OF_MEMORY, started)
            except ExecutorUnavailable:
                executor = None  # the cold path reproduces the import error in the job's log
            if executor is not None:
                files = executor.job_files
                stack.callback(executor.end_job)
                # Exited before the callback above runs: the job's processes are gone
                # before its directories are reset.
                confinement = stack.enter_context(executor.jobs.confine())
                # Measured before the job runs: what it starts with is not its writing.
                disk = DiskWatch([files.root, executor.private_tmp], limits.disk_mb)
                env = job_environment(limits, env_python, str(files.home))
                launched = _start_warm(executors, executor, env, files, call, limits, log)
        if launched is None:
            confinement = stack.enter_context(confines.enforcement.confine(limits))
            user = stack.enter_context(confines.identities.lease())
            files = JobFiles(make_private_directory(confines.scratch_root, "job-", user))
            stack.callback(shutil.rmtree, files.root, ignore_errors=True)
            files.prepare(bundle_dir, call, user)
            disk = DiskWatch([files.root, files.tmp], limits.disk_mb)
            env = job_environment(limits, env_python, str(files.home))
            sandbox = JobSandbox(files.tmp, [*confines.visible(env_python), files.root])
            launched = _start_cold(env_python, env, files, limits, confinement, sandbox, log, user)
        process = launched.process
        stack.callback(launched.close)
        # On every way out: the FIFOs stay for the executor's next job, and must not
        # keep this job's ends open.
        stack.callback(launched.pumps.finish)
        if launched.executor is not None and executors is not None:
            # An executor whose job broke off may still owe a reply about it: none of
            # its later answers could be trusted to be about the job asked.
            stack.push(_discard_on_error(executors, launched.executor))
        confinement.attach(process)
        launched.release()
        ending = _watch(
            process, confinement, limits, disk, started, abandon or threading.Event(), watch
        )
        peak = confinement.peak_memory_mb()
        launched.pumps.finish()
        runtime = time.monotonic() - started
        exit_code = process.poll()
        if ending is Ending.EXITED and (exit_code == SIGXFSZ_EXIT or disk.exceeded()):
            ending = Ending.DISK_EXCEEDED
        refused, failure = None, None
        owner = launched.executor.user if launched.executor else user
        if ending is Ending.EXITED and exit_code == 0:
            # Spooled beside the jobs' directories: on the worker's disk, where no job
            # may list or open a file of the worker's.
            kept.result, refused = read_result(
                files.result, owner, max_result_bytes, confines.scratch_root
            )
        elif ending is Ending.EXITED and exit_code == EXCEPTION_EXIT_CODE:
            failure = read_failure(files.failure, owner)
    return ProcessOutcome(ending, exit_code, kept.result, runtime, peak, refused, failure)


@dataclass
class _KeptResult:
    """The job's result once read: closed if the run fails before handing it over."""

    result: JobResult | None = None

    def __enter__(self) -> _KeptResult:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is not None and self.result is not None:
            self.result.close()


def _discard_on_error(
    executors: ExecutorPool, executor: WarmExecutor
) -> Callable[[type[BaseException] | None, BaseException | None, Any], bool]:
    def exit_callback(kind: type[BaseException] | None, *_: Any) -> bool:
        if kind is not None:
            executors.discard(executor)
        return False  # the error goes on

    return exit_callback


def _ended_early(ending: Ending, started: float) -> ProcessOutcome:
    return ProcessOutcome(ending, None, None, time.monotonic() - started, 0.0)


class Pumps:
    """Kept threads copying a job's output (stdout and stderr, on one pipe) into its log,
    line by line."""

    # Output still held open by an escaped process must not hold up the outcome.
    JOIN_SECONDS = PUMP_JOIN_SECONDS

    def __init__(self, streams: list[IO[bytes]], log: JobLog, keep_open: list[int]) -> None:
        self.keep_open = keep_open
        threads = kept_threads()
        self.pumped = [threads.run(_pump, stream, log) for stream in streams]

    def finish(self) -> None:
        """Let the streams end and wait for the pumps; once, whoever calls it first."""
        keep_open, self.keep_open = self.keep_open, []
        for fd in keep_open:
            os.close(fd)
        deadline = time.monotonic() + self.JOIN_SECONDS
        for pumped in self.pumped:
            pumped.wait(timeout=max(0.0, deadline - time.monotonic()))


def _start_cold(
    env_python: str,
    env: dict[str, str],
    files: JobFiles,
    limits: JobLimits,
    confinement: Confinement,
    sandbox: JobSandbox,
    log: JobLog,
    user: JobUser,
) -> Launched:
    cpu_set = limits.cpu_set()

    def child_setup() -> None:
        os.sched_setaffinity(0, cpu_set)
        confine_child(confinement, limits, sandbox, user)

    popen = subprocess.Popen(
        [
            env_python,
            "-I",
            str(job_script(BOOTSTRAP)),
            str(files.work_dir),
            str(files.call),
            str(files.result),
            str(files.failure),
        ],
        cwd=files.work_dir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        # One pipe for both: the log keeps the order the job wrote its lines in, which
        # two pipes read by two threads cannot (a traceback must follow what came first).
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=child_setup,
    )
    assert popen.stdout is not None
    pumps = Pumps([popen.stdout], log, keep_open=[])
    return Launched(ColdProcess(popen), pumps, lambda: None)


def _fifo_reader(path: Path) -> tuple[IO[bytes], int]:
    """A blocking reader of a FIFO the job may write, and a write end we hold so that it
    does not see end-of-file before the job child has opened its own."""
    read_fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    hold_fd = os.open(path, os.O_WRONLY)
    os.set_blocking(read_fd, True)
    return os.fdopen(read_fd, "rb"), hold_fd


def _start_warm(
    executors: ExecutorPool,
    executor: WarmExecutor,
    env: dict[str, str],
    files: JobFiles,
    call: dict[str, Any],
    limits: JobLimits,
    log: JobLog,
) -> Launched | None:
    # stdout and stderr both go to the one FIFO, in the order the job writes them.
    reader, hold = _fifo_reader(files.output)
    request = {
        "call": call,
        "result": str(files.result),
        "failure": str(files.failure),
        "cwd": str(files.work_dir),
        "stdout": str(files.output),
        "stderr": str(files.output),
        "gate": str(files.gate),
        "env": env,
        "cpus": sorted(limits.cpu_set()),
    }
    pumps = Pumps([reader], log, keep_open=[hold])
    gate_fd = open_gate(files.gate)
    try:
        pid = executor.start_job(request)
    except ExecutorUnavailable:
        os.close(gate_fd)
        executors.discard(executor)
        pumps.finish()
        return None
    process = WarmProcess(executors, executor, pid, gate_fd)
    return Launched(process, pumps, process.release, executor, process.close_gate)


def _watch(
    popen: JobProcess,
    confinement: Confinement,
    limits: JobLimits,
    disk: DiskWatch,
    started: float,
    abandon: threading.Event,
    watch: AttemptWatch | None = None,
) -> Ending:
    # Waiting on the process (not sleeping) returns the moment it exits.
    while popen.wait_for(POLL_SECONDS) is None:
        if abandon.is_set():
            confinement.end(grace=0)
            popen.wait()
            return Ending.ABANDONED
        if watch is not None:
            watch.tick()
            if watch.canceled:
                confinement.end(grace=0)
                popen.wait()
                return Ending.CANCELED
        if confinement.out_of_memory():
            confinement.end(grace=0)
            popen.wait()
            return Ending.OUT_OF_MEMORY
        if disk.due() and disk.exceeded():
            confinement.end(grace=0)
            popen.wait()
            return Ending.DISK_EXCEEDED
        if time.monotonic() - started > limits.timeout_seconds:
            confinement.end(limits.kill_grace_seconds)
            popen.wait()
            return Ending.TIMED_OUT
    # The main process is gone: a child of it may have been killed for memory, and
    # anything it left running (a daemon, a stray child) ends with it.
    out_of_memory = confinement.out_of_memory()
    confinement.end(grace=0)
    return Ending.OUT_OF_MEMORY if out_of_memory else Ending.EXITED
