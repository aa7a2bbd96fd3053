"""Run a function's queued jobs one after another in the pool process already running one.

A Celery delivery costs a no-op job more than the job itself: the worker's main process
takes the message, hands it to a pool process over a pipe, and acknowledges it after.
So the pool process that ran a job of a function goes on taking that function's next
messages straight from its queue, oldest first, for up to `DRAIN_SECONDS`, then returns
to Celery, so other functions' queues wait no longer than that for their turn.

A message taken here leaves the broker before its job is claimed; nothing is lost if the
process dies in between, because the job row is still pending and the reconciler
publishes pending jobs that have no message. Only the job id is read from a message,
from JSON, and only from a message of the run task: anything else goes back to the
front of the queue for Celery to judge.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import cast

import redis

from compute.server.dispatch import function_queue

from .broker_scan import run_job_id_of
from .jobs import AttemptResult

logger = logging.getLogger(__name__)

DRAIN_SECONDS = 1.0


def drain_function_queue(
    client: redis.Redis,
    function_id: str,
    run: Callable[[str], AttemptResult],
    republish: Callable[[str], None],
    seconds: float = DRAIN_SECONDS,
) -> int:
    """Run the jobs queued for `function_id`, one at a time, for about `seconds`.

    Args:
        run: runs one attempt of a job (`jobs.run_attempt`).
        republish: publishes a new message for a job a failed attempt made pending again.

    Returns:
        How many messages were taken and kept.
    """
    queue = function_queue(function_id)
    deadline = time.monotonic() + seconds
    taken = 0
    while time.monotonic() < deadline:
        # kombu's Redis transport pushes on the left and pops on the right.
        raw = cast("bytes | None", client.rpop(queue))
        if raw is None:
            break
        job_id = run_job_id_of(raw)
        if job_id is None:
            client.rpush(queue, raw)
            break
        result = run(job_id)
        if result is AttemptResult.AT_CAPACITY:
            # Not started: the message goes back where it was, for Celery to hold and
            # offer again once a slot may be free.
            client.rpush(queue, raw)
            break
        taken += 1
        if result is AttemptResult.RETRY:
            republish(job_id)
    return taken
