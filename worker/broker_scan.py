"""Read, without consuming, which jobs have a message in the broker (kombu's Redis layout).

A queue is a Redis list of JSON envelopes; a message delivered to a consumer but not yet
acknowledged sits in the `unacked` hash, timed in the `unacked_index` sorted set. Only
JSON envelopes are read and only a job id is taken from them: nothing here is ever
unpickled, and an envelope that does not parse is simply not counted.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections import defaultdict
from typing import Any, cast

import redis

from compute.server.dispatch import RUN_TASK

# kombu's Redis transport defaults.
UNACKED_KEY = "unacked"
UNACKED_INDEX_KEY = "unacked_index"
LIST_PAGE = 5000


def job_id_of(raw: Any, task: str | None = None) -> str | None:
    """The first positional argument of a Celery protocol-2 JSON message, if a string;
    with `task`, only of a message of that task."""
    try:
        envelope = json.loads(raw) if isinstance(raw, (bytes, str)) else raw
        if envelope.get("content-type") != "application/json":
            return None
        if task is not None and envelope.get("headers", {}).get("task") != task:
            return None
        body = envelope["body"]
        if envelope.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        return args[0] if args and isinstance(args[0], str) else None
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, binascii.Error):
        return None


def run_job_id_of(raw: Any) -> str | None:
    """The job a message of the run task names; None for any other message."""
    return job_id_of(raw, task=RUN_TASK)


def waiting_count(client: redis.Redis, queue: str) -> int:
    return int(client.llen(queue))


def waiting_job_ids(client: redis.Redis, queue: str) -> set[str]:
    """Job ids of the messages waiting in `queue`."""
    ids: set[str] = set()
    start = 0
    while True:
        page = client.lrange(queue, start, start + LIST_PAGE - 1)
        ids.update(job_id for raw in page if (job_id := job_id_of(raw)))
        if len(page) < LIST_PAGE:
            return ids
        start += LIST_PAGE


def delivered_job_ids(client: redis.Redis, max_age_seconds: float | None) -> dict[str, set[str]]:
    """Job ids of delivered, unacknowledged messages, by queue (routing key).

    With `max_age_seconds`, only messages delivered that recently count: an older one is
    held by a consumer that is likely gone, and would come back only after the broker's
    visibility timeout.
    """
    tags: list[bytes] | None = None
    if max_age_seconds is not None:
        # redis-py types the answer alike with and without scores; without, it is the
        # members alone, as bytes (the broker's client decodes nothing).
        tags = cast(
            "list[bytes]",
            client.zrangebyscore(UNACKED_INDEX_KEY, time.time() - max_age_seconds, "+inf"),
        )
        if not tags:
            return {}
    entries = client.hmget(UNACKED_KEY, tags) if tags is not None else client.hvals(UNACKED_KEY)
    by_queue: dict[str, set[str]] = defaultdict(set)
    for entry in entries:
        if entry is None:
            continue
        try:
            raw, _exchange, routing_key = json.loads(entry)
        except (ValueError, TypeError):
            continue
        if isinstance(routing_key, str) and (job_id := job_id_of(raw)):
            by_queue[routing_key].add(job_id)
    return by_queue
