"""What the broker says: queue depths per function, and the workers alive.

Queue depth is the length of each function's Redis list (kombu keeps a queue's waiting
messages there; see `compute.server.dispatch`): read in one pipelined round trip. The
workers alive are those whose presence record has not expired (`compute.server.presence`).
A broker that does not answer makes these panels say so; it never fails a page.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

import redis

from compute.server.dispatch import BUILD_QUEUE, function_queue
from compute.server.presence import WorkerPresence, live_workers

from ..broker import api_broker

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BrokerView:
    """Queue depths per function id, the build queue's, and the live workers; `error`
    says why the broker could not be read (then the rest is empty)."""

    depths: dict[str, int] = field(default_factory=dict)
    build_queue: int = 0
    workers: list[WorkerPresence] = field(default_factory=list)
    error: str | None = None

    @property
    def waiting(self) -> int:
        return sum(self.depths.values())


def broker_view(function_ids: Iterable[str], with_workers: bool = False) -> BrokerView:
    """The queue depths of `function_ids` and of the build queue; the live workers too
    `with_workers`."""
    client = api_broker()
    if client is None:
        return BrokerView(error="No broker is configured (REDIS_URL).")
    ids = list(dict.fromkeys(function_ids))
    try:
        pipeline = client.pipeline(transaction=False)
        for function_id in ids:
            pipeline.llen(function_queue(function_id))
        pipeline.llen(BUILD_QUEUE)
        *lengths, build_queue = pipeline.execute()
        workers = live_workers(client) if with_workers else []
    except redis.RedisError as error:
        logger.warning("broker unreachable for the admin pages: %s", error)
        return BrokerView(error="The broker did not answer.")
    return BrokerView(dict(zip(ids, map(int, lengths))), int(build_queue), workers)
