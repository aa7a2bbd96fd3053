"""Failed attempts are retried up to retry_count; reruns run failed jobs again."""

from __future__ import annotations

import re
from pathlib import Path

from compute import Function, FunctionStatus
from tests.conftest import ApiClient
from tests.worker import functions
from tests.worker.support import job_log, wait_for_job

ATTEMPT = re.compile(r"^\[attempt (\d+)\]$")


def _attempts(lines: list[str]) -> list[int]:
    return [int(match.group(1)) for line in lines if (match := ATTEMPT.match(line))]


def test_an_always_failing_job_runs_retry_count_plus_one_times(exec_user: ApiClient) -> None:
    fn = Function(functions.always_fails, name="always", retry_count=2, timeout=60)
    fn.save()
    job = wait_for_job(exec_user, fn().id)
    assert job["status"] == "failure"
    assert job["attempt"] == 3
    lines = job_log(exec_user, job["id"])
    assert _attempts(lines) == [1, 2, 3]
    # Each attempt's traceback ends with the exception, and its reason names it.
    assert sum(line.endswith("RuntimeError: always fails") for line in lines) == 3
    assert sum("[job failure: RuntimeError: always fails]" in line for line in lines) == 3


def test_a_job_failing_once_then_succeeding_ends_success(
    exec_user: ApiClient, tmp_path: Path
) -> None:
    fn = Function(functions.fails_once, name="once", retry_count=1, timeout=60)
    fn.save()
    job = wait_for_job(exec_user, fn(str(tmp_path)).id)
    assert job["status"] == "success", job_log(exec_user, job["id"])
    assert job["attempt"] == 2
    assert _attempts(job_log(exec_user, job["id"])) == [1, 2]
    assert exec_user.get(f"/jobs/{job['id']}/result").json() == "second attempt"


def test_without_retries_a_failure_is_final(exec_user: ApiClient, tmp_path: Path) -> None:
    fn = Function(functions.fails_once, name="no-retry", timeout=60)
    fn.save()
    job = wait_for_job(exec_user, fn(str(tmp_path)).id)
    assert job["status"] == "failure" and job["attempt"] == 1


def test_rerun_runs_failed_jobs_again(exec_user: ApiClient, tmp_path: Path) -> None:
    marker = tmp_path / "ready"
    fn = Function(functions.fails_without, name="rerun", timeout=60)
    fn.save()
    jobs = fn.map([str(marker)] * 2)
    fn.wait_for_completion(timeout=120, interval=0.1)
    assert fn.status == FunctionStatus.FAILURE
    marker.touch()
    rerun = fn.rerun()
    assert sorted(job.id for job in rerun) == sorted(job.id for job in jobs)
    fn.wait_for_completion(timeout=120, interval=0.1)
    assert fn.status == FunctionStatus.SUCCESS
    assert fn.results() == ["found it", "found it"]
    lines = job_log(exec_user, jobs[0].id)
    assert "does not exist yet" in "\n".join(lines) and lines[-1] != ""
