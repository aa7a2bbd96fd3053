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

import time
from collections.abc import Callable
from typing import cast

import redis

from compute.server.dispatch import function_queue
from compute.server.transitions import Claim, ClaimRefusal

from .broker_scan import run_job_id_of
from .jobs import AttemptResult, Handover, run_attempt, run_claimed_attempt
from .node_stopping import node_stopping

DRAIN_SECONDS = 1.0


class QueuedJobs:
    """A function's queue as the drain reads it: messages taken one at a time, each kept
    until its job is settled, so one whose job could not start goes back where it was."""

    def __init__(self, client: redis.Redis, function_id: str, deadline: float) -> None:
        self.client = client
        self.queue = function_queue(function_id)
        self.deadline = deadline
        self.taken: dict[str, bytes] = {}
        self.foreign: bytes | None = None

    def take(self) -> str | None:
        """The next queued job's id; None when the queue is empty, the time is up, the
        node is stopping, or the next message is not one of the run task's (it goes back
        for Celery to judge)."""
        if time.monotonic() >= self.deadline or self.foreign is not None or node_stopping():
            return None
        # kombu's Redis transport pushes on the left and pops on the right.
        raw = cast("bytes | None", self.client.rpop(self.queue))
        if raw is None:
            return None
        job_id = run_job_id_of(raw)
        if job_id is None:
            self.foreign = raw
            self.client.rpush(self.queue, raw)
            return None
        self.taken[job_id] = raw
        return job_id

    def settled(self, job_id: str) -> None:
        self.taken.pop(job_id, None)

    def give_back(self, job_id: str) -> None:
        """Put a job's message back at the front of the queue: its job did not start."""
        raw = self.taken.pop(job_id, None)
        if raw is not None:
            self.client.rpush(self.queue, raw)


def drain_function_queue(
    client: redis.Redis,
    function_id: str,
    republish: Callable[[str], None],
    seconds: float = DRAIN_SECONDS,
) -> int:
    """Run the jobs queued for `function_id`, one at a time, for about `seconds`.

    Each attempt that ends takes the next job's message and hands it its function slot
    in the transaction recording its own end (`jobs.Handover`).

    Args:
        republish: publishes a new message for a job a failed attempt made pending again.

    Returns:
        How many jobs it ran.
    """
    queued = QueuedJobs(client, function_id, time.monotonic() + seconds)
    ran = 0
    claimed: Claim | None = None
    job_id = None
    while True:
        handover = Handover(next_job=queued.take)
        if claimed is None:
            job_id = queued.take()
            if job_id is None:
                break
            result = run_attempt(job_id, handover)
        else:
            job_id = claimed.job_id
            result = run_claimed_attempt(claimed, handover)
        if result is AttemptResult.AT_CAPACITY:
            # Not started: the message goes back where it was, for Celery to hold and
            # offer again once a slot may be free.
            queued.give_back(job_id)
            break
        queued.settled(job_id)
        ran += 1
        if result is AttemptResult.RETRY:
            republish(job_id)
        claimed = None
        if handover.job_id is not None:
            if isinstance(handover.claimed, Claim):
                claimed = handover.claimed
            elif handover.claimed is ClaimRefusal.GONE:
                queued.settled(handover.job_id)  # deleted, or run elsewhere
            else:
                # At capacity, or the attempt failed before it could claim it.
                queued.give_back(handover.job_id)
                if handover.claimed is ClaimRefusal.AT_CAPACITY:
                    break
    for unsettled in list(queued.taken):
        queued.give_back(unsettled)
    return ran
