"""Jobs really run: build, dispatch, run in the function's environment, results and logs."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from compute import Function, FunctionStatus, JobFailedError, JobStatus
from compute.cli import main as compute_cli
from tests.conftest import ApiClient
from tests.worker import functions
from tests.worker.support import job_json


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


def test_a_failed_job_says_why_in_its_record_result_repr_and_the_cli(
    exec_user: ApiClient,
) -> None:
    fn = Function(functions.explode, name="explode", timeout=60)
    fn.save()
    job = fn("bad tile 17")
    job.wait_for_completion(timeout=120, interval=0.1)

    assert job_json(exec_user, job.id)["error"] == "ValueError: bad tile 17"
    assert job.error == "ValueError: bad tile 17"
    assert repr(job) == f"Job {job.id}: failure (ValueError: bad tile 17)"
    with pytest.raises(JobFailedError) as info:
        job.result()
    error = info.value
    assert (error.job_id, error.status, error.reason) == (
        job.id,
        JobStatus.FAILURE,
        "ValueError: bad tile 17",
    )
    # the log's tail: the traceback, then the worker's verdict
    assert "Traceback (most recent call last):" in error.log_tail
    assert error.log_tail[-2:] == [
        "ValueError: bad tile 17",
        "[job failure: ValueError: bad tile 17]",
    ]
    listed = CliRunner().invoke(compute_cli, ["jobs", "list", "--function", fn.id])
    assert listed.exit_code == 0, listed.output
    header, row = listed.stdout.splitlines()
    assert header.split()[-1] == "REASON"
    assert row.startswith(job.id) and row.endswith(" ValueError: bad tile 17")


def test_sys_exit_keeps_its_exit_code_as_the_reason(exec_user: ApiClient) -> None:
    fn = Function(functions.exits_with, name="exits", timeout=60)
    fn.save()
    job = fn(3)
    job.wait_for_completion(timeout=120, interval=0.1)
    assert job.status == JobStatus.FAILURE
    assert job.error == "exited with code 3"
    with pytest.raises(JobFailedError, match="failed: exited with code 3"):
        job.result()


def test_a_timed_out_jobs_result_raises_with_the_timeout(exec_user: ApiClient) -> None:
    fn = Function(functions.timed_sleep, name="slow", timeout=1)
    fn.save()
    job = fn(30)
    job.wait_for_completion(timeout=120, interval=0.1)
    with pytest.raises(JobFailedError) as info:
        job.result()
    assert info.value.status == JobStatus.TIMEOUT
    assert info.value.reason == "exceeded its 1 s timeout"
    assert str(info.value).startswith(f"Job {job.id} timed out: exceeded its 1 s timeout")


def test_results_line_up_with_inputs_around_a_failure(exec_user: ApiClient) -> None:
    fn = Function(functions.tile, name="tiles", maximum_concurrency=3, timeout=60)
    fn.save()
    jobs = fn.map([16, 17, 18])
    fn.wait_for_completion(timeout=120, interval=0.1)
    assert fn.status == FunctionStatus.FAILURE

    with pytest.raises(JobFailedError, match="ValueError: bad tile 17") as info:
        fn.results()
    assert info.value.job_id == jobs[1].id
    first, failed, last = fn.results(return_exceptions=True)
    assert (first, last) == (160, 180)
    assert isinstance(failed, JobFailedError) and failed.reason == "ValueError: bad tile 17"
