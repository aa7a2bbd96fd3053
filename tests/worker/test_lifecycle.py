"""A function's life as its jobs run: statuses, counts, runtimes, and deletion of its blobs."""

from __future__ import annotations

from compute import Function, FunctionStatus, JobStatus
from tests.conftest import ApiClient
from tests.worker import functions
from tests.worker.conftest import ExecutionStack
from tests.worker.support import job_blob_dir


def _statistics(fn: Function) -> dict[str, int]:
    return Function.get(fn.id, include=["job.statistics"]).job_statistics


def test_status_goes_running_then_success_with_counts_and_runtimes(exec_user: ApiClient) -> None:
    fn = Function(functions.timed_sleep, name="life", maximum_concurrency=2, timeout=60)
    fn.save()
    jobs = fn.map([0.5] * 3)
    fn.refresh()
    assert fn.status in (FunctionStatus.BUILDING, FunctionStatus.RUNNING)
    fn.wait_for_completion(timeout=120, interval=0.1)
    assert fn.status == FunctionStatus.SUCCESS
    stats = _statistics(fn)
    assert stats == {
        "pending": 0,
        "running": 0,
        "success": 3,
        "failure": 0,
        "timeout": 0,
        "canceled": 0,
    }
    for job in jobs:
        job.refresh()
        assert job.status == JobStatus.SUCCESS
        assert job.runtime is not None and 0.5 <= job.runtime < 30

    # More work makes it running again, in the same request.
    fn.map([0.5])
    fn.refresh()
    assert fn.status == FunctionStatus.RUNNING
    fn.wait_for_completion(timeout=120, interval=0.1)
    assert fn.status == FunctionStatus.SUCCESS


def test_any_failed_job_makes_the_function_failure(exec_user: ApiClient) -> None:
    fn = Function(functions.explode, name="mixed", timeout=60)
    fn.save()
    fn.map(["boom", "bang"])
    fn.wait_for_completion(timeout=120, interval=0.1)
    assert fn.status == FunctionStatus.FAILURE
    assert _statistics(fn)["failure"] == 2


def test_deleting_jobs_and_functions_removes_their_blobs(
    exec_user: ApiClient, execution_stack: ExecutionStack
) -> None:
    data_dir = execution_stack.server.data_dir
    fn = Function(functions.double, name="blobs", timeout=60)
    fn.save()
    jobs = fn.map([1, 2, 3])
    fn.wait_for_completion(timeout=120, interval=0.1)
    dirs = [job_blob_dir(data_dir, fn.id, job.id) for job in jobs]
    for directory in dirs:
        assert {p.name for p in directory.iterdir()} == {"result", "log.ndjson"}

    assert exec_user.delete(f"/jobs/{jobs[0].id}").status_code in (200, 204)
    assert not dirs[0].exists()
    assert dirs[1].exists()
    assert _statistics(fn)["success"] == 2

    build_log = data_dir / "blobs" / "build-logs" / f"{fn.id}.log"
    bundle = data_dir / "blobs" / "bundles" / f"{fn.id}.zip"
    assert build_log.exists() and bundle.exists()
    function_id = fn.id
    fn.delete()
    assert not any(directory.exists() for directory in dirs)
    assert not (data_dir / "blobs" / "jobs" / function_id).exists()
    assert not build_log.exists() and not bundle.exists()
    assert exec_user.get(f"/jobs/{jobs[1].id}").status_code == 404
