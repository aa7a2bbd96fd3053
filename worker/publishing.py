"""Publishing work to the workers: the broker is a doorbell, the database the truth.

Callers commit the rows first and ring afterwards, so a lost message never loses work:
the row is still there to be found again. The API rings for new jobs and builds; the
workers ring again for what a build released or the reconciler found unpublished. The
names rung under are `compute.server.dispatch`'s.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import cache

import redis
import sqlalchemy as sa
from celery import Celery
from flask import has_app_context

from compute.server.dispatch import (
    BUILD_QUEUE,
    BUILD_TASK,
    CONTROL_EXCHANGE,
    PUBLISHING_KEY_SECONDS,
    RUN_TASK,
    function_queue,
    publishing_key,
    run_task_shadow,
)
from compute.server.extensions import db
from compute.server.models import Function
from compute.server.settings import current_settings

logger = logging.getLogger(__name__)

INLINE_PUBLISH_LIMIT = 100
PUBLISH_CHUNK = 1000

# One thread keeps large submissions in submission order.
_background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="compute-publish")


@cache
def publisher(broker_url: str) -> Celery:
    app = Celery("compute-api", broker=broker_url)
    app.conf.broker_connection_retry_on_startup = True
    app.conf.broker_transport_options = {"max_retries": 3}
    app.conf.task_serializer = "json"
    app.conf.accept_content = ["json"]
    app.conf.control_exchange = CONTROL_EXCHANGE
    return app


def _publisher() -> Celery | None:
    url = current_settings().redis_url
    return publisher(url) if url else None


def request_build(function_id: str) -> None:
    """Ask a worker to build `function_id`'s environment."""
    app = _publisher()
    if app is None:
        logger.info("no broker configured; build of %s waits for one", function_id)
        return
    app.send_task(BUILD_TASK, args=[function_id], queue=BUILD_QUEUE)


@cache
def broker_client(broker_url: str) -> redis.Redis:
    """A plain Redis client of the broker, for the keys the service keeps beside Celery's."""
    return redis.Redis.from_url(broker_url)


def publish_jobs(
    app: Celery, function_id: str, job_ids: list[str], function_name: str | None = None
) -> None:
    """Ring the doorbell for each job on its function's queue, over one connection.

    Each message is named for monitors by its function's name and its job (Celery's
    `shadow`); the worker still finds the task by its own name.
    """
    queue = function_queue(function_id)
    name = function_name or function_label(function_id)
    with app.producer_or_acquire() as producer:
        for job_id in job_ids:
            app.send_task(
                RUN_TASK,
                args=[job_id],
                queue=queue,
                producer=producer,
                shadow=run_task_shadow(name, job_id),
            )


def function_label(function_id: str) -> str:
    """The function's name, for monitors; its id when it is gone, or when no database is
    at hand (a background publish, which is given the name instead)."""
    if not has_app_context():
        return function_id
    name = db.session.scalar(sa.select(Function.name).where(Function.id == function_id))
    return name or function_id


@contextlib.contextmanager
def publishing(app: Celery, function_id: str) -> Iterator[None]:
    """Mark a function's jobs as being published for as long as the block runs."""
    client = broker_client(app.conf.broker_url)
    key = publishing_key(function_id)
    client.set(key, "1", ex=PUBLISHING_KEY_SECONDS)
    try:
        yield
    finally:
        client.delete(key)


def publish_jobs_marked(
    app: Celery, function_id: str, job_ids: list[str], function_name: str | None = None
) -> None:
    """Publish in chunks under the publishing mark, renewing it as the chunks go out."""
    name = function_name or function_label(function_id)
    with publishing(app, function_id):
        client = broker_client(app.conf.broker_url)
        for start in range(0, len(job_ids), PUBLISH_CHUNK):
            client.expire(publishing_key(function_id), PUBLISHING_KEY_SECONDS)
            publish_jobs(app, function_id, job_ids[start : start + PUBLISH_CHUNK], name)


def function_deleted(function_id: str) -> None:
    """After committing a function's deletion: workers stop consuming its queue (which
    monitors such as Flower would list on), and the messages left on it go."""
    app = _publisher()
    if app is None:
        return
    queue = function_queue(function_id)
    try:
        app.control.cancel_consumer(queue, reply=False)
        broker_client(app.conf.broker_url).delete(queue)
    except (redis.RedisError, OSError) as error:
        # Left as it was: a message of a deleted job finds no job, and is dropped.
        logger.warning("could not retire the queue of deleted function %s: %s", function_id, error)


def consume_function_queue(app: Celery, function_id: str) -> None:
    """Tell every running worker to start consuming the function's queue."""
    app.control.add_consumer(function_queue(function_id), reply=False)


def jobs_submitted(
    function_id: str, job_ids: list[str], built: bool, wake_consumers: bool = False
) -> None:
    """After committing new pending jobs: publish them if the function is built.

    Jobs of a function still building are published by the build when it succeeds.
    Large submissions are published in the background, in order, so a 10,000-job map
    answers as soon as its rows are committed; the rows, not the messages, are the
    record, so a publish cut short by a crash loses no job: the reconciler publishes
    what is missing.
    """
    app = _publisher()
    if app is None or not built or not job_ids:
        return
    if wake_consumers:
        consume_function_queue(app, function_id)
    name = function_label(function_id)
    if len(job_ids) <= INLINE_PUBLISH_LIMIT:
        publish_jobs(app, function_id, job_ids, name)
    else:
        _background.submit(_publish_logged, app, function_id, job_ids, name)


def _publish_logged(app: Celery, function_id: str, job_ids: list[str], name: str) -> None:
    try:
        publish_jobs_marked(app, function_id, job_ids, name)
    except Exception:
        logger.exception("publishing %d jobs of %s failed", len(job_ids), function_id)
