"""Run job processes directly: the running interpreter, a bundle written per test, no Celery."""

from __future__ import annotations

import socket
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from worker.execution.cgroups import PARENT_NAME, CgroupSupport, probe_cgroups
from worker.execution.joblog import JobLog
from worker.execution.limits import JobLimits
from worker.execution.process import ProcessOutcome, run_process

SUPPORT = probe_cgroups()
NO_CGROUPS = "this host offers no usable cgroup hierarchy (unprivileged or not delegated)"


@dataclass
class Ran:
    outcome: ProcessOutcome
    log: str


Runner = Callable[..., Ran]


def cgroup_support(*controllers: str) -> CgroupSupport:
    """The host's cgroup support, or skip the test when it lacks any of `controllers`."""
    if SUPPORT is None:
        pytest.skip(NO_CGROUPS)
    missing = [name for name in controllers if SUPPORT.controller(name) is None]
    if missing:
        pytest.skip(f"this host's cgroups lack the {', '.join(missing)} controller")
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


@pytest.fixture
def run(tmp_path: Path) -> Runner:
    """Run `source`'s `main(*args)` as a job under the given limits and enforcement mode."""

    def runner(
        source: str,
        *args: object,
        mode: str = "auto",
        cpus: float = 1,
        memory_mb: int = 512,
        timeout: float = 30,
        grace: float = 1,
        max_processes: int = 512,
    ) -> Ran:
        bundle = tmp_path / f"bundle-{uuid.uuid4().hex[:8]}"
        bundle.mkdir()
        (bundle / "__dlentrypoint__.py").write_text(textwrap.dedent(source))
        limits = JobLimits(cpus, memory_mb, timeout, grace, max_processes)
        log = JobLog()
        outcome = run_process(sys.executable, bundle, list(args), {}, limits, log, mode)
        return Ran(outcome, log.to_bytes().decode())

    return runner


@pytest.fixture(autouse=True)
def no_cgroups_left() -> Iterator[None]:
    yield
    if SUPPORT is None:
        return
    worker_dir = f"{socket.gethostname()}-{psutil.Process().pid}"
    left = [h.base / PARENT_NAME / worker_dir for h in SUPPORT.hierarchies]
    assert not [path for path in left if path.exists()]
