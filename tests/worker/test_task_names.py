"""What monitors such as Flower see of jobs: each run task named by its function and job,
and a job's final status as the task's: success returned, failure and timeout raised."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from celery import Celery

from compute import Function
from compute.server.dispatch import CONTROL_EXCHANGE, RUN_TASK, function_queue, run_task_shadow
from tests.conftest import ApiClient
from tests.redis_databases import claimed_redis_url
from tests.worker import functions
from tests.worker.conftest import ExecutionStack
from tests.worker.support import wait_until
from worker.broker_scan import run_job_id_of
from worker.publishing import publish_jobs, publisher


def test_a_job_message_is_shown_by_function_and_job_but_runs_the_run_task() -> None:
    with claimed_redis_url() as url:
        publish_jobs(publisher(url), "f" * 32, ["j" * 32], "resize tiles")
        [raw] = redis.Redis.from_url(url).lrange(function_queue("f" * 32), 0, -1)
    headers = json.loads(raw)["headers"]
    assert headers["task"] == RUN_TASK
    assert headers["shadow"] == run_task_shadow("resize tiles", "j" * 32)
    assert headers["shadow"] == f"compute.run_job:resize tiles:{'j' * 32}"
    # The worker's own readers of the queue still know it for a job of the run task.
    assert run_job_id_of(raw) == "j" * 32


class TaskEvents:
    """Celery's task events, as a monitor receives them, captured by a thread."""

    def __init__(self, app: Celery) -> None:
        self.app = app
        self.events: list[dict[str, Any]] = []
        self.receiver: Any = None
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._capture, daemon=True)

    def _capture(self) -> None:
        with self.app.connection_for_read() as connection:
            self.receiver = self.app.events.Receiver(connection, handlers={"*": self.events.append})
            self.ready.set()
            self.receiver.capture(limit=None, timeout=None, wakeup=False)

    def ended(self, shadow: str) -> list[dict[str, Any]]:
        """The end events of the tasks named `shadow`."""
        named = {e["uuid"] for e in self.events if e.get("name") == shadow}
        ends = ("task-succeeded", "task-failed")
        return [e for e in list(self.events) if e["type"] in ends and e["uuid"] in named]


@pytest.fixture
def task_events(execution_stack: ExecutionStack) -> Iterator[TaskEvents]:
    """The stack worker's task events, turned on as Flower turns them on, then off."""
    app = Celery("monitor", broker=execution_stack.server.app.config["REDIS_URL"])
    app.conf.control_exchange = CONTROL_EXCHANGE
    capture = TaskEvents(app)
    capture.thread.start()
    capture.ready.wait(10)
    replies = app.control.broadcast("enable_events", reply=True, timeout=5)
    assert replies, "the worker did not answer"
    try:
        yield capture
    finally:
        app.control.broadcast("disable_events", reply=True, timeout=5)
        capture.receiver.should_stop = True
        capture.thread.join(10)


def finished_task(events: TaskEvents, name: str, job_id: str) -> tuple[str, dict[str, Any]]:
    """The end of the task that ran the job. A job's message may be delivered twice (the
    reconciler publishes again what it finds missing): a second task finds the job
    settled and ends `skipped`."""
    shadow = run_task_shadow(name, job_id)

    def ran() -> dict[str, Any] | None:
        return next((e for e in events.ended(shadow) if e.get("result") != "'skipped'"), None)

    event = wait_until(ran, timeout=60, describe=lambda: events.ended(shadow))
    return event["type"], event


def test_monitors_see_each_job_with_its_final_status(
    exec_user: ApiClient, execution_stack: ExecutionStack, task_events: TaskEvents
) -> None:
    # One function each: a pool process goes on with its function's queued jobs itself,
    # and those run inside the task that took the first.
    runs = [
        (Function(functions.double, name="names-ok", timeout=60), (4,)),
        (Function(functions.explode, name="names-fail", timeout=60, retry_count=0), ("bad",)),
        (Function(functions.timed_sleep, name="names-slow", timeout=1), (30,)),
    ]
    jobs = []
    for fn, args in runs:
        fn.save()
        jobs.append((fn.name, fn(*args)))
    for _, job in jobs:
        job.wait_for_completion(timeout=120, interval=0.1)

    (ok_kind, ok), (fail_kind, failed), (slow_kind, slow) = (
        finished_task(task_events, name, job.id) for name, job in jobs
    )
    assert (ok_kind, ok["result"]) == ("task-succeeded", "'success'")
    assert fail_kind == "task-failed"
    assert failed["exception"] == "JobFailed('failure: ValueError: bad')"
    assert slow_kind == "task-failed"
    assert slow["exception"].startswith("JobFailed('timeout: exceeded its 1 s timeout")

    # A failed job is expected, not an error of the worker: one line, no traceback.
    lines = execution_stack.worker_output().splitlines()
    for event in (failed, slow):
        [at] = [n for n, line in enumerate(lines) if f"[{event['uuid']}] raised" in line]
        assert " INFO/" in lines[at] and "raised expected: JobFailed" in lines[at]
        assert not lines[at + 1 :][:1] or "Traceback" not in lines[at + 1]
