"""Another Celery app on the service's Redis database takes none of the service's jobs.

The API tells the workers to consume each new function's queue by Celery's remote
control; over the default control exchange every Celery worker on that database would
obey, take the job messages and drop them as unknown tasks.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery

from compute import Function, JobStatus
from compute.bench import raw_celery
from compute.bench.raw_worker import worker_command
from compute.server.dispatch import FUNCTION_QUEUE_PREFIX
from tests.conftest import ApiClient
from tests.worker import functions
from tests.worker.conftest import REPO_ROOT, ExecutionStack, stop_tree, wait_ready


@pytest.fixture
def foreign_worker(execution_stack: ExecutionStack, tmp_path: Path) -> Iterator[str]:
    """A plain Celery worker of another app on the stack's Redis database; its node name."""
    broker = execution_stack.server.app.config["REDIS_URL"]
    name = f"foreign-{os.getpid()}@localhost"
    log_path = tmp_path / "foreign.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                *worker_command(processes=1),
                *("--loglevel", "INFO", "--without-gossip", "--without-mingle", "-n", name),
            ],
            cwd=REPO_ROOT,
            env={**os.environ, raw_celery.BROKER_VARIABLE: broker},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_ready(log_path, process)
        yield name
    finally:
        stop_tree(process)


def test_a_foreign_celery_worker_is_not_told_to_take_the_service_jobs(
    exec_user: ApiClient, execution_stack: ExecutionStack, foreign_worker: str
) -> None:
    fn = Function(functions.double, name="beside-a-foreign-app", timeout=60)
    fn.save()
    jobs = fn.map([[n] for n in range(6)])
    fn.wait_for_completion(timeout=120, interval=0.2)
    assert [job.status for job in fn.jobs] == [JobStatus.SUCCESS] * len(jobs)
    # Asked over Celery's default control exchange, where the foreign worker listens.
    client = Celery("foreign-client", broker=execution_stack.server.app.config["REDIS_URL"])
    try:
        inspector = client.control.inspect(destination=[foreign_worker], timeout=5)
        queues = (inspector.active_queues() or {}).get(foreign_worker)
    finally:
        client.close()
    assert queues is not None, "the foreign worker did not answer"
    assert not [queue for queue in queues if queue["name"].startswith(FUNCTION_QUEUE_PREFIX)]
