"""The baseline: a Celery app with nothing of the service, run as
`celery -A compute.bench.raw_celery worker`.

Configured as the service's worker is (late acknowledgement, one message prefetched per
process, JSON only, no result backend), so the difference measured is the service's own
work per job. Its tasks report back through the broker's Redis itself, the one channel a
Celery app without a result backend has: a counter for throughput, a list for latency,
a list of start and end times for a makespan.
"""

from __future__ import annotations

import json
import os
import time
from functools import cache
from typing import Any

import redis
from celery import Celery

BROKER_VARIABLE = "COMPUTE_BENCH_BROKER_URL"
QUEUE = "compute.bench.raw"
NOOP_TASK = "compute.bench.noop"
ECHO_TASK = "compute.bench.echo"
SLEEP_TASK = "compute.bench.sleep"


def configured(app: Celery) -> Celery:
    """`app` set up as the service's worker app is (worker/celery_app.py)."""
    app.conf.update(
        task_ignore_result=True,
        task_acks_late=True,
        worker_prefetch_multiplier=1,
        task_default_queue=QUEUE,
        broker_connection_retry_on_startup=True,
        accept_content=["json"],
        task_serializer="json",
    )
    return app


app = configured(Celery("compute-bench-raw", broker=os.environ.get(BROKER_VARIABLE)))


@cache
def _redis() -> redis.Redis:
    # Made on first use in each pool process, never inherited across the fork.
    return redis.Redis.from_url(os.environ[BROKER_VARIABLE])


@app.task(name=NOOP_TASK)
def noop(value: Any, counter_key: str) -> Any:
    """Count itself done, so the bench sees when every task has run."""
    _redis().incr(counter_key)
    return value


@app.task(name=ECHO_TASK)
def echo(value: Any, reply_key: str) -> Any:
    """Send `value` back on `reply_key`, where the bench waits for it."""
    _redis().lpush(reply_key, json.dumps(value))
    return value


@app.task(name=SLEEP_TASK)
def sleep(seconds: float, times_key: str) -> None:
    """Sleep `seconds`, then append when it started and ended (UNIX time) to `times_key`."""
    started = time.time()
    time.sleep(seconds)
    _redis().rpush(times_key, json.dumps([started, time.time()]))
