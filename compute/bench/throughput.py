"""Figure 1: no-op jobs per second, `fn.map(range(N))` until every job succeeded, against
raw Celery running as many no-op tasks on as many processes."""

from __future__ import annotations

import time
import uuid

from .context import Bench
from .functions import job_counts, run_timeout, wait_for_successes
from .raw_worker import RawCelery
from .report import Row

TARGET = 0.5
AIM = 0.8
COUNTER_POLL_SECONDS = 0.005


def measure(bench: Bench) -> list[Row]:
    jobs = bench.size.map_jobs
    # The baseline runs before and after the service, so that a shared machine's load
    # drifting during the run weighs on both alike.
    before = raw_seconds(bench.raw, jobs)
    service = service_seconds(bench, jobs)
    after = raw_seconds(bench.raw, jobs)
    row = Row(
        figure=1,
        label=f"no-op throughput, {jobs:,} jobs",
        unit="jobs/s",
        service=jobs / service,
        baseline=2 * jobs / (before + after),
        target=f">= {TARGET}x baseline (aim {AIM}x)",
        details={
            "jobs": jobs,
            "service_seconds": service,
            "baseline_seconds_before": before,
            "baseline_seconds_after": after,
        },
    )
    row.met = row.ratio is not None and row.ratio >= TARGET
    return [row]


def service_seconds(bench: Bench, jobs: int) -> float:
    """Seconds from `fn.map` until all `jobs` succeeded; keeps the job ids for figure 5."""
    function = bench.noop
    done = job_counts(function.id).get("success", 0)
    started = time.perf_counter()
    submitted = function.map(range(jobs))
    wait_for_successes(function.id, done + jobs, run_timeout(jobs))
    elapsed = time.perf_counter() - started
    bench.mapped = [job.id for job in submitted]
    return elapsed


def raw_seconds(raw: RawCelery, tasks: int) -> float:
    """Seconds from the first publish until all `tasks` no-op tasks ran."""
    counter = f"compute.bench.done.{uuid.uuid4().hex}"
    started = time.perf_counter()
    raw.publish_noops(tasks, counter)
    deadline = time.monotonic() + run_timeout(tasks)
    while raw.count(counter) < tasks:
        if time.monotonic() > deadline:
            raise TimeoutError(f"raw Celery ran {raw.count(counter)} of {tasks} tasks in time")
        time.sleep(COUNTER_POLL_SECONDS)
    return time.perf_counter() - started
