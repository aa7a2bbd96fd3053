"""The service side of every figure: deploying the no-op function and waiting on its jobs."""

from __future__ import annotations

import time

from compute import Function
from compute.statuses import FunctionStatus

from .noop import noop

JOB_STATISTICS = "job.statistics"
BUILD_TIMEOUT_SECONDS = 300.0
BUILD_POLL_SECONDS = 0.2
# Fine enough that a figure lasting seconds loses under a few percent to it, coarse enough
# that the polls cost the API little.
JOBS_POLL_SECONDS = 0.1


class JobsFailed(RuntimeError):
    """Jobs of a no-op function failed: no number measured on it would mean anything."""


def deploy(name: str) -> Function:
    """Create a function running `noop` and return it once built."""
    function = Function(noop, name=name)
    function.save()
    wait_until_built(function, BUILD_POLL_SECONDS)
    if function.status == FunctionStatus.BUILD_FAILED:
        raise RuntimeError(f"{name} failed to build:\n{function.read_build_log()}")
    return function


def wait_until_built(function: Function, poll_seconds: float) -> None:
    """Refresh `function` every `poll_seconds` until its build is over, failed or not.

    Raises:
        TimeoutError: It was still building after `BUILD_TIMEOUT_SECONDS`.
    """
    deadline = time.monotonic() + BUILD_TIMEOUT_SECONDS
    while function.status in (FunctionStatus.AWAITING_BUNDLE, FunctionStatus.BUILDING):
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{function.name} was not built within {BUILD_TIMEOUT_SECONDS:.0f} s"
            )
        time.sleep(poll_seconds)
        function.refresh()


def job_counts(function_id: str) -> dict[str, int]:
    """The function's jobs by status, as the service counts them."""
    counts = Function.get(function_id, include=[JOB_STATISTICS]).job_statistics
    return dict(counts or {})


def wait_for_successes(function_id: str, total: int, timeout: float) -> None:
    """Return once `total` jobs of the function succeeded; raise if any failed.

    Raises:
        JobsFailed: A job failed or timed out.
        TimeoutError: Fewer succeeded within `timeout` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        counts = job_counts(function_id)
        if counts.get("failure") or counts.get("timeout"):
            raise JobsFailed(f"jobs of {function_id} failed: {counts}")
        if counts.get("success", 0) >= total:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{total} jobs did not succeed within {timeout:.0f} s: {counts}")
        time.sleep(JOBS_POLL_SECONDS)


def warm_up(function: Function, jobs: int) -> None:
    """Run `jobs` jobs, so every worker process has the function's executor ready, then
    delete them: the figures count and read back their own jobs only."""
    done = job_counts(function.id).get("success", 0)
    started = function.map(range(jobs))
    wait_for_successes(function.id, done + jobs, timeout=BUILD_TIMEOUT_SECONDS)
    for job in started:
        job.delete()


def run_timeout(jobs: int) -> float:
    """How long `jobs` no-op jobs may take before the run gives up: far beyond any
    throughput worth measuring, two jobs a second."""
    return 120.0 + jobs / 2
