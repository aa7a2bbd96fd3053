"""Run job processes directly: a bundle written per test, no Celery.

Jobs run as the job user when the tests run as root, as the worker would: their bundles
live in `tmp_path`, which that user can read, and their interpreter is one it can run.
"""

from __future__ import annotations

import functools
import socket
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import psutil
import pytest

from tests.capabilities import missing_capability
from worker.build import InterpreterRegistry
from worker.execution import job_files
from worker.execution.cgroups import PARENT_NAME, CgroupSupport, probe_cgroups
from worker.execution.job_limits import JobLimits
from worker.execution.job_monitor import ProcessOutcome, run_process
from worker.execution.job_result import new_spool
from worker.execution.job_user import resolve_job_identities
from worker.execution.joblog import DEFAULT_MAX_BYTES, JobLog

SUPPORT = probe_cgroups()
NO_CGROUPS = "a usable cgroup hierarchy (none here: unprivileged or not delegated)"
JOB_USER = resolve_job_identities().representative()
# A prime period for test data: no chunk boundary of a copy lines up with it.
PATTERN_PERIOD = 251


@functools.cache
def job_python() -> str:
    """An interpreter the job user can run: of this Python's version where one is found."""
    if not JOB_USER.switches:
        return sys.executable
    registry = InterpreterRegistry(runs_as=(JOB_USER.uid, JOB_USER.gid))
    found = registry.interpreters()
    if not found:
        missing_capability(f"a Python interpreter that {JOB_USER.name} can run")
    return str(found.get(sys.version_info.minor, next(iter(found.values()))).path)


@dataclass
class Ran:
    outcome: ProcessOutcome
    log: str


Runner = Callable[..., Ran]


def cgroup_support(*controllers: str) -> CgroupSupport:
    """The host's cgroup support; without it, or any of `controllers`, the test cannot run."""
    if SUPPORT is None:
        missing_capability(NO_CGROUPS)
    missing = [name for name in controllers if SUPPORT.controller(name) is None]
    if missing:
        missing_capability(f"the {', '.join(missing)} cgroup controller")
    return SUPPORT


@pytest.fixture(params=["cgroup", "portable"])
def mode(request: pytest.FixtureRequest) -> str:
    if request.param == "cgroup":
        cgroup_support("memory")
    return request.param


@pytest.fixture
def marker() -> Iterator[str]:
    """A string to put in a job's process command lines; none may survive the test."""
    value = f"compute-test-{uuid.uuid4().hex}"
    yield value
    for process in survivors(value):
        process.kill()


def survivors(marker: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if any(marker in part for part in process.info["cmdline"] or []):
            found.append(process)
    return found


def returned(outcome: ProcessOutcome) -> bytes | None:
    """What the job wrote as its result (tag byte, then the value), as the worker holds it;
    None when it holds none."""
    if outcome.result is None:
        return None
    value = outcome.result.value_bytes()
    assert len(value) == outcome.result.size
    return outcome.result.tag + value


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Runner]:
    """Run `source`'s `main(*args)` as a job under the given limits and enforcement mode;
    `options` go to `run_process`. Each outcome is closed when the test ends."""
    outcomes: list[ProcessOutcome] = []

    def runner(
        source: str,
        *args: object,
        mode: str = "auto",
        cpus: float = 1,
        memory_mb: int = 512,
        timeout: float = 30,
        grace: float = 1,
        max_processes: int = 512,
        disk_mb: int = 1024,
        log_bytes: int = DEFAULT_MAX_BYTES,
        **options: Any,
    ) -> Ran:
        bundle = tmp_path / f"bundle-{uuid.uuid4().hex[:8]}"
        bundle.mkdir()
        (bundle / "__dlentrypoint__.py").write_text(textwrap.dedent(source))
        limits = JobLimits(cpus, memory_mb, timeout, grace, max_processes, disk_mb)
        log = JobLog(log_bytes)
        outcome = run_process(job_python(), bundle, list(args), {}, limits, log, mode, **options)
        outcomes.append(outcome)
        return Ran(outcome, log.to_bytes().decode())

    yield runner
    for outcome in outcomes:
        outcome.close()


def pattern(size: int) -> bytes:
    """`size` bytes in which a piece copied out of place or twice shows."""
    period = bytes(range(PATTERN_PERIOD))
    return (period * (size // len(period) + 1))[:size]


@pytest.fixture
def spools(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Every spool the worker makes for a job's result, to look at where it holds it;
    closed when the test ends."""
    made: list[Any] = []

    def spy(directory: Path | None) -> IO[bytes]:
        made.append(new_spool(directory))
        return made[-1]

    monkeypatch.setattr(job_files, "new_spool", spy)
    yield made
    for spool in made:
        spool.close()


@pytest.fixture(autouse=True)
def no_cgroups_left() -> Iterator[None]:
    yield
    if SUPPORT is None:
        return
    worker_dir = f"{socket.gethostname()}-{psutil.Process().pid}"
    left = [h.base / PARENT_NAME / worker_dir for h in SUPPORT.hierarchies]
    assert not [path for path in left if path.exists()]
