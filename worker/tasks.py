"""The Celery tasks: thin wrappers that take ids, call plain functions, and re-publish.

Nothing in a message is trusted beyond the id it names: the job, its function, owner
and arguments are read again from the database.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from celery import Task

from compute.server.dispatch import BUILD_TASK, RUN_TASK
from compute.server.presence import live_workers

from .build_step import BuildElsewhere, run_build
from .celery_app import app
from .jobs import AttemptResult, function_of_job, run_attempt
from .publishing import broker_client, function_label, publish_jobs
from .queue_drain import drain_function_queue
from .queues import publish_pending_jobs
from .task_results import JobFailed, task_result

logger = logging.getLogger(__name__)

CAPACITY_RETRY_SECONDS = 0.25
# How often, and how soon, a build goes back for a node offering its image.
BUILD_HAND_ON_LIMIT = 20
BUILD_HAND_ON_SECONDS = 0.5


@app.task(name=BUILD_TASK, bind=True, acks_late=True, max_retries=None)
def build_task(self: Task[Any, Any], function_id: str) -> None:
    # A node lacking the image hands the build on while another live node offers it, a
    # bounded number of times: the shared build queue may bring it back here.
    may_hand_on = self.request.retries < BUILD_HAND_ON_LIMIT
    offered = functools.partial(offered_by_another_node, self.request.hostname)
    try:
        built = run_build(function_id, offered if may_hand_on else None)
    except BuildElsewhere:
        raise self.retry(countdown=BUILD_HAND_ON_SECONDS) from None
    if built:
        publish_pending_jobs(function_id)


def offered_by_another_node(this_node: str | None, image: str) -> bool:
    """Whether a live node other than `this_node` offers `image`, as their presence says."""
    workers = live_workers(broker_client(app.conf.broker_url))
    return any(
        worker.node != this_node and any(offered.image == image for offered in worker.images)
        for worker in workers
    )


# A failed job fails its task, for monitors; `task_results` says why delivery is unchanged.
@app.task(
    name=RUN_TASK,
    bind=True,
    acks_late=True,
    acks_on_failure=True,
    max_retries=None,
    throws=(JobFailed,),
)
def run_job_task(self: Task[Any, Any], job_id: str) -> str:
    result = run_attempt(job_id)
    if result is not AttemptResult.AT_CAPACITY:
        _run_queued_jobs(job_id)
    # Both re-deliver the same message on the same function queue; the job row, not the
    # message, counts attempts against the function's retry_count.
    if result is AttemptResult.AT_CAPACITY:
        raise self.retry(countdown=CAPACITY_RETRY_SECONDS)
    if result is AttemptResult.RETRY:
        raise self.retry(countdown=0)
    return task_result(job_id, result)


def _run_queued_jobs(job_id: str) -> None:
    """Go on with the next queued jobs of the same function (see `queue_drain`)."""
    function_id = function_of_job(job_id)
    if function_id is None:
        return
    # Its name (a query) only if a message must go back on the queue, and then once.
    name = functools.cache(lambda: function_label(function_id))
    drain_function_queue(
        broker_client(app.conf.broker_url),
        function_id,
        republish=lambda retried: publish_jobs(app, function_id, [retried], name()),
    )
