"""Lost workers and lost messages, on the real worker: no job is lost or run twice at once.

A killed worker process is noticed at once by the reconciler of its host; a worker on
another host by its lease running out; a job whose message never reached the broker is
published again. The user's retry_count is never spent on any of these.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import psutil
import sqlalchemy as sa

from compute import Function
from compute.server.extensions import db
from compute.server.models import Function as FunctionRow
from compute.server.models import Job
from compute.server.transitions import Claim, claim_job, insert_jobs
from tests.conftest import ApiClient
from tests.worker import functions
from tests.worker.conftest import JOB_LEASE_SECONDS, ExecutionStack
from tests.worker.support import job_log, wait_for_job, wait_until
from worker.lease_owners import owner_pid

# Recovery of a lease that ran out: its expiry, a sweep, and the run itself.
RECOVERY_SECONDS = JOB_LEASE_SECONDS + 30


def _row(stack: ExecutionStack, job_id: str) -> dict[str, Any]:
    with stack.server.app.app_context():
        job = db.session.get(Job, job_id)
        assert job is not None
        return {column.name: getattr(job, column.name) for column in Job.__table__.columns}


def _running_attempt(stack: ExecutionStack, job_id: str, attempt: int) -> dict[str, Any]:
    return wait_until(
        lambda: (
            (row := _row(stack, job_id))["status"] == "running"
            and row["attempt"] == attempt
            and row
        ),
        timeout=60,
        interval=0.05,
        describe=lambda: _row(stack, job_id),
    )


def _owner_pid(row: dict[str, Any]) -> int:
    pid = owner_pid(row["lease_owner"])
    assert pid is not None
    return pid


def _unpublished_job(stack: ExecutionStack, fn: Function, args: list[Any]) -> str:
    """A pending job committed without its message, as when the API dies before publishing."""
    with stack.server.app.app_context():
        function = db.session.get(FunctionRow, fn.id)
        (job,) = insert_jobs(db.session, function, [(args, None)])
        db.session.commit()
        return job.id


def test_a_job_whose_worker_process_is_killed_runs_again_without_spending_retry_count(
    exec_user: ApiClient, execution_stack: ExecutionStack
) -> None:
    fn = Function(functions.timed_sleep, name="killed-worker", timeout=60)
    fn.save()
    job = fn(2)
    first = _running_attempt(execution_stack, job.id, 1)
    os.kill(_owner_pid(first), signal.SIGKILL)

    final = wait_for_job(exec_user, job.id, timeout=RECOVERY_SECONDS)
    assert final["status"] == "success"
    row = _row(execution_stack, job.id)
    assert (row["attempt"], row["lost_count"]) == (2, 1)
    assert "[attempt 2]" in job_log(exec_user, job.id)


def test_a_job_that_loses_its_worker_too_often_fails_saying_so(
    exec_user: ApiClient, execution_stack: ExecutionStack
) -> None:
    budget = execution_stack.server.app.config["LOST_WORKER_RETRIES"]
    fn = Function(functions.timed_sleep, name="unlucky", timeout=60, retry_count=5)
    fn.save()
    job = fn(30)
    for attempt in range(1, budget + 2):
        os.kill(_owner_pid(_running_attempt(execution_stack, job.id, attempt)), signal.SIGKILL)

    final = wait_for_job(exec_user, job.id, timeout=RECOVERY_SECONDS)
    assert final["status"] == "failure"
    row = _row(execution_stack, job.id)
    assert row["lost_count"] == budget + 1
    assert f"its worker was lost {budget + 1} times" in row["error"]


def test_a_committed_job_whose_message_was_never_published_runs(
    exec_user: ApiClient, execution_stack: ExecutionStack
) -> None:
    fn = Function(functions.double, name="unpublished", timeout=60)
    fn.save()
    fn.wait_for_completion(timeout=120, interval=0.1)  # built, no jobs yet
    job_id = _unpublished_job(execution_stack, fn, [21])

    final = wait_for_job(exec_user, job_id, timeout=RECOVERY_SECONDS)
    assert final["status"] == "success"
    assert exec_user.get(f"/jobs/{job_id}/result").json() == 42
    # The reconciler logs after publishing: the job may finish before the line is written.
    wait_until(
        lambda: "had no message; published them again" in execution_stack.worker_output(),
        timeout=10,
        describe=execution_stack.worker_output,
    )


def test_a_lease_left_to_run_out_by_a_worker_elsewhere_is_recovered(
    exec_user: ApiClient, execution_stack: ExecutionStack
) -> None:
    fn = Function(functions.double, name="elsewhere", timeout=60)
    fn.save()
    fn.wait_for_completion(timeout=120, interval=0.1)
    job_id = _unpublished_job(execution_stack, fn, [4])
    with execution_stack.server.app.app_context():
        claim = claim_job(db.session, job_id, "another-host.example:4242", lease_seconds=0.5)
    assert isinstance(claim, Claim)

    final = wait_for_job(exec_user, job_id, timeout=RECOVERY_SECONDS)
    assert final["status"] == "success"
    row = _row(execution_stack, job_id)
    assert (row["attempt"], row["lost_count"]) == (2, 1)


def test_an_attempt_that_lost_its_lease_is_stopped_and_cannot_record(
    exec_user: ApiClient, execution_stack: ExecutionStack, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pids"
    fn = Function(functions.sleep_recording_pid, name="superseded", timeout=120)
    fn.save()
    job = fn(str(pid_file), 60)
    _running_attempt(execution_stack, job.id, 1)
    pid = int(wait_until(lambda: pid_file.exists() and pid_file.read_text().split()[0]))
    # Another attempt takes the job over, as the reconciler would after a partition.
    usurper = "another-host.example:1"
    with execution_stack.server.app.app_context():
        db.session.execute(sa.update(Job).where(Job.id == job.id).values(lease_owner=usurper))
        db.session.commit()

    wait_until(lambda: not psutil.pid_exists(pid), timeout=JOB_LEASE_SECONDS * 2)
    assert "no longer owns its job" in execution_stack.worker_output()
    row = _row(execution_stack, job.id)
    assert (row["status"], row["lease_owner"]) == ("running", usurper)
    assert exec_user.delete(f"/jobs/{job.id}").status_code == 204


def _built(stack: ExecutionStack, function_id: str) -> bool:
    with stack.server.app.app_context():
        function = db.session.get(FunctionRow, function_id)
        return function is not None and function.build_state == "built"


def test_a_worker_that_cannot_prepare_a_built_function_gives_its_jobs_back(
    exec_user: ApiClient, execution_stack: ExecutionStack
) -> None:
    # Built once centrally, then unreadable from this worker (its bundle gone from the
    # store): each attempt goes back on the service's budget, not the user's retry_count,
    # and the function stays built for every other node.
    fn = Function(functions.double, name="unpreparable", timeout=60, retry_count=5)
    fn.save()
    wait_until(lambda: _built(execution_stack, fn.id), describe=lambda: fn.id)
    bundle = execution_stack.server.data_dir / "blobs" / "bundles" / f"{fn.id}.zip"
    hidden = bundle.with_suffix(".hidden")
    bundle.rename(hidden)

    job = fn(4)
    final = wait_for_job(exec_user, job.id)
    assert final["status"] == "failure"
    assert "could not prepare the function: the function's bundle is missing" in final["error"]
    assert "its worker was lost 4 times, the most allowed is 3" in final["error"]
    row = _row(execution_stack, job.id)
    assert (row["attempt"], row["lost_count"]) == (4, 4)
    assert _built(execution_stack, fn.id)

    # Once this machine can read it again, the same function runs.
    hidden.rename(bundle)
    assert wait_for_job(exec_user, fn(5).id)["status"] == "success"
