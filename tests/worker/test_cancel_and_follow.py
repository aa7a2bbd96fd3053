"""Canceling jobs and following their logs, against a real worker.

A followed log shows lines while the job runs; a canceled pending job never starts; a
canceled running job is stopped at once, keeps the log it printed and ends `canceled`
(a `failure` whose reason is "canceled" for clients that do not know the status).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from celery import Celery

from compute import Function, Job, JobStatus
from compute.server.dispatch import CONTROL_EXCHANGE, function_queue
from tests.conftest import ApiClient
from tests.worker import functions
from tests.worker.conftest import ExecutionStack
from tests.worker.support import job_blob_dir, job_json, job_log, wait_until

STATUSES_HEADER = {"X-Compute-Statuses": "canceled"}


def _final(job: Job, timeout: float = 120) -> Job:
    wait_until(lambda: job.refresh() or job.status in JobStatus.final(), timeout=timeout)
    return job


def _pids(marker_dir: Path) -> list[int]:
    return [int(path.stem) for path in marker_dir.glob("*.pid")]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_followed_log_shows_each_line_while_the_job_runs(exec_user: ApiClient) -> None:
    fn = Function(functions.ticks, name="ticks", timeout=120)
    fn.save()
    job = fn(8, 0.5)
    received: list[tuple[float, str]] = []
    for line in job.iter_log(timestamps=False, follow=True):
        received.append((time.time(), line))
    ticks = [(at, line) for at, line in received if line.startswith("tick ")]
    assert [line.split()[1] for _, line in ticks] == [str(index) for index in range(8)]
    # Streamed, not read once at the end: the first tick arrived before the last was
    # printed, about 3.5 s later.
    last_printed = float(ticks[-1][1].split()[2])
    assert ticks[0][0] < last_printed
    # The iteration ended with the job, and saw all of its log.
    assert job.status == JobStatus.SUCCESS
    assert job_log(exec_user, job.id)[-len(received) :] == [line for _, line in received]


def test_a_canceled_running_job_is_stopped_and_keeps_its_log(
    exec_user: ApiClient, tmp_path: Path
) -> None:
    fn = Function(functions.prints_then_sleeps, name="sleeper", timeout=300, retry_count=3)
    fn.save()
    job = fn(str(tmp_path), 120)
    wait_until(lambda: "started" in job_log(exec_user, job.id), describe=lambda: job.status)
    job.cancel()
    _final(job, timeout=30)
    assert job.status == JobStatus.CANCELED
    assert job.error == "canceled"
    [pid] = _pids(tmp_path)
    assert not _alive(pid)
    lines = job_log(exec_user, job.id)
    assert "started" in lines
    assert lines[-1].startswith("[job canceled")
    # Not retried, for all its retry_count.
    time.sleep(1)
    job.refresh()
    assert job.status == JobStatus.CANCELED and len(_pids(tmp_path)) == 1
    # Clients that do not know the status read a failure saying why.
    legacy = job_json(exec_user, job.id)
    assert (legacy["status"], legacy["error"]) == ("failure", "canceled")
    assert exec_user.get(f"/jobs/{job.id}", headers=STATUSES_HEADER).json()["status"] == "canceled"


def test_a_canceled_pending_job_never_starts(exec_user: ApiClient, tmp_path: Path) -> None:
    fn = Function(
        functions.prints_then_sleeps, name="one-at-a-time", timeout=300, maximum_concurrency=1
    )
    fn.save()
    first = fn(str(tmp_path), 120)
    wait_until(lambda: "started" in job_log(exec_user, first.id))
    second = fn(str(tmp_path), 0)
    second.cancel()
    assert second.status == JobStatus.CANCELED
    first.cancel()
    _final(first, timeout=30)
    assert first.status == JobStatus.CANCELED
    # The slot the first job held is free again, and the second job still never ran.
    time.sleep(1)
    assert len(_pids(tmp_path)) == 1
    second.refresh()
    assert second.status == JobStatus.CANCELED
    statistics = Function.get(fn.id, include=["job.statistics"]).job_statistics
    assert statistics["canceled"] == 2 and statistics["running"] == 0


def test_a_functions_jobs_are_canceled_together_and_can_be_rerun(
    exec_user: ApiClient, tmp_path: Path
) -> None:
    fn = Function(functions.prints_then_sleeps, name="many", timeout=300, maximum_concurrency=2)
    fn.save()
    jobs = fn.map([(str(tmp_path), 120)] * 5)
    wait_until(lambda: len(_pids(tmp_path)) >= 1)
    counted = fn.cancel_jobs()
    assert counted["canceled"] + counted["stopping"] == 5
    for job in jobs:
        _final(job, timeout=30)
        assert job.status == JobStatus.CANCELED
    assert all(not _alive(pid) for pid in _pids(tmp_path))
    fn.refresh()
    assert fn.status == "failure"
    # Canceling again changes nothing; a rerun brings them back.
    assert fn.cancel_jobs() == {"canceled": 0, "stopping": 0}
    rerun = fn.rerun()
    assert sorted(job.id for job in rerun) == sorted(job.id for job in jobs)
    assert fn.cancel_jobs(job_ids=[jobs[0].id]) in (
        {"canceled": 1, "stopping": 0},
        {"canceled": 0, "stopping": 1},
    )
    fn.cancel_jobs(query=fn.jobs)
    for job in jobs:
        _final(job, timeout=30)
        assert job.status == JobStatus.CANCELED


def test_a_deleted_running_job_is_stopped_and_leaves_no_blobs(
    exec_user: ApiClient, execution_stack: ExecutionStack, tmp_path: Path
) -> None:
    fn = Function(functions.ticks_recording_pid, name="deleted", timeout=300)
    fn.save()
    job = fn(str(tmp_path), 600, 0.1)
    # Its live log is being written while it runs.
    wait_until(lambda: "tick 5" in " ".join(job_log(exec_user, job.id)))
    [pid] = _pids(tmp_path)
    assert exec_user.delete(f"/jobs/{job.id}").status_code == 204
    wait_until(lambda: not _alive(pid), timeout=10)
    blobs = job_blob_dir(execution_stack.server.data_dir, fn.id, job.id)
    wait_until(lambda: not blobs.exists(), timeout=10)
    time.sleep(1)
    assert not blobs.exists()


def _consumed_queues(execution_stack: ExecutionStack) -> set[str]:
    client = Celery("queue-inspector", broker=execution_stack.server.app.config["REDIS_URL"])
    client.conf.control_exchange = CONTROL_EXCHANGE
    try:
        answers = client.control.inspect(timeout=3).active_queues() or {}
    finally:
        client.close()
    assert answers, "no worker answered"
    return {queue["name"] for queues in answers.values() for queue in queues}


def test_deleting_a_function_stops_its_jobs_and_retires_its_queue(
    exec_user: ApiClient, execution_stack: ExecutionStack, tmp_path: Path
) -> None:
    fn = Function(functions.prints_then_sleeps, name="retired", timeout=300)
    fn.save()
    job = fn(str(tmp_path), 120)
    wait_until(lambda: "started" in job_log(exec_user, job.id))
    [pid] = _pids(tmp_path)
    queue = function_queue(fn.id)
    assert queue in _consumed_queues(execution_stack)
    fn.delete()
    wait_until(lambda: not _alive(pid), timeout=10)
    wait_until(lambda: queue not in _consumed_queues(execution_stack), timeout=10)
