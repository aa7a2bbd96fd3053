"""Jobs really run: build, dispatch, run in the function's environment, results and logs."""

from __future__ import annotations

import json

from compute import Function, FunctionStatus, JobStatus
from tests.conftest import ApiClient
from tests.worker import functions


def test_map_runs_jobs_and_returns_results_in_order(exec_user: ApiClient) -> None:
    fn = Function(functions.double, name="double", maximum_concurrency=2, timeout=60)
    fn.save()
    jobs = fn.map(range(5))
    fn.wait_for_completion(timeout=120, interval=0.1)
    assert fn.status == FunctionStatus.SUCCESS
    assert fn.results() == [0, 2, 4, 6, 8]
    job = jobs[3]
    job.refresh()
    assert job.status == JobStatus.SUCCESS
    assert job.runtime is not None and job.runtime > 0


def test_failing_job_is_failure_with_traceback_in_log(exec_user: ApiClient) -> None:
    fn = Function(functions.explode, name="explode", timeout=60)
    fn.save()
    job = fn("boom")
    job.wait_for_completion(timeout=120, interval=0.1)
    assert job.status == JobStatus.FAILURE
    lines = [json.loads(line) for line in exec_user.get(f"/jobs/{job.id}/log").text.splitlines()]
    text = "\n".join(line["log"] for line in lines)
    assert "about to fail" in text
    assert "ValueError: boom" in text
    assert all(line["date"].endswith("Z") for line in lines)
