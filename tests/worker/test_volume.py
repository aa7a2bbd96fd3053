"""A 10,000-job map answers quickly and its jobs start running; deleting the function stops it.

Kept in the last module of the directory: the deleted jobs' messages are drained by the
worker afterwards, which would slow down later tests on the same stack.
"""

from __future__ import annotations

import time

from compute import Function
from tests.conftest import ApiClient
from tests.worker import functions
from tests.worker.support import wait_until

JOBS = 10_000


def test_a_ten_thousand_job_map_answers_fast_and_runs(exec_user: ApiClient) -> None:
    fn = Function(functions.noop, name="many", maximum_concurrency=4, timeout=60)
    fn.save()
    fn.wait_for_completion(timeout=120, interval=0.1)  # built, so the map publishes
    started = time.monotonic()
    jobs = fn.map(range(JOBS))
    elapsed = time.monotonic() - started
    assert len(jobs) == JOBS
    assert elapsed < 10, f"a map of {JOBS} jobs answered in {elapsed:.2f} s"

    def some_succeeded() -> int:
        return Function.get(fn.id, include=["job.statistics"]).job_statistics["success"]

    wait_until(some_succeeded, timeout=60, interval=0.2)
    function_id = fn.id
    fn.delete()
    assert exec_user.get(f"/functions/{function_id}").status_code == 404
    assert exec_user.get(f"/jobs/{jobs[-1].id}").status_code == 404
