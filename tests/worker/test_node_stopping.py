"""A node told to stop (SIGTERM, Celery's warm shutdown) finishes what it runs and starts
nothing more, even from the function queue its pool process was draining."""

from __future__ import annotations

import signal

import pytest

from compute import Function
from tests.worker import functions
from tests.worker.conftest import running_stack
from tests.worker.support import job_json, wait_until

STOP_SECONDS = 60


def test_a_stopping_node_finishes_its_job_and_starts_no_other(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with (
        running_stack("sqlite", "compute-stopping-", processes=1) as stack,
        stack.sdk_user(monkeypatch) as user,
    ):
        fn = Function(functions.timed_sleep, name="stopping", timeout=60, maximum_concurrency=1)
        fn.save()
        jobs = fn.map([2] * 4)
        wait_until(
            lambda: any(job_json(user, job.id)["status"] == "running" for job in jobs),
            describe=stack.worker_output,
        )
        stack.worker.send_signal(signal.SIGTERM)  # the main process alone
        assert stack.worker.wait(timeout=STOP_SECONDS) == 0, stack.worker_output()
        statuses = [job_json(user, job.id)["status"] for job in jobs]
    # The job it ran ended well; the others wait, never started, for another node.
    assert sorted(statuses) == ["pending", "pending", "pending", "success"], (
        statuses,
        stack.worker_output(),
    )
