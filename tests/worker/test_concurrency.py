"""maximum_concurrency caps a function's running jobs across every worker process."""

from __future__ import annotations

import pytest

from compute import Function, FunctionStatus
from tests.conftest import ApiClient
from tests.worker import functions
from tests.worker.conftest import WORKER_PROCESSES


def _max_overlap(intervals: list[list[float]]) -> int:
    # Ends sort before starts at the same instant: touching intervals do not overlap.
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = peak = 0
    for _, change in events:
        running += change
        peak = max(peak, running)
    return peak


@pytest.mark.parametrize("cap", [1, 2])
def test_running_jobs_never_exceed_the_cap_and_reach_it(exec_user: ApiClient, cap: int) -> None:
    assert cap < WORKER_PROCESSES, "the worker pool, not the cap, would limit"
    fn = Function(functions.timed_sleep, name=f"cap-{cap}", maximum_concurrency=cap, timeout=60)
    fn.save()
    fn.map([0.5] * 8)
    fn.wait_for_completion(timeout=120, interval=0.1)
    assert fn.status == FunctionStatus.SUCCESS
    intervals = fn.results()
    assert len(intervals) == 8
    assert _max_overlap(intervals) == cap, intervals
