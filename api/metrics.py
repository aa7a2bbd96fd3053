"""`/metrics`: the service's state for Prometheus, computed when it is scraped.

Job counts come from the functions' own per-status counts (no scan of the jobs table),
queue depths from the lengths of the functions' queues in the broker, live workers and
warm executors from the workers' presence records. The API keeps no metric state of its
own, so every process of a gunicorn answers alike, and each scrape builds a fresh
registry without the per-process collectors (CPU, memory, GC) that would differ between
them. The worker nodes' event metrics (job durations, OOMs, timeouts, retries, builds,
lost workers) are merged in from their files when the nodes share this API's data
directory (`compute.server.metric_files`).

Functions are labelled by id only: their names are their owners'. `/metrics` needs no
token unless the operator sets one (`COMPUTE_METRICS_TOKEN`) for the scraper to send.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterator
from typing import Any

import redis
import sqlalchemy as sa
from flask import Blueprint, Response, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from compute.server.dispatch import BUILD_QUEUE, function_queue
from compute.server.extensions import db
from compute.server.metric_files import MetricFiles
from compute.server.models import Function
from compute.server.presence import live_workers
from compute.server.settings import current_settings
from compute.statuses import JobStatus

from .broker import api_broker
from .errors import Unauthorized

logger = logging.getLogger(__name__)

blueprint = Blueprint("metrics", __name__)

STATUSES = tuple(JobStatus)
_COUNTS = sa.select(Function.id, *(getattr(Function, f"{status}_count") for status in STATUSES))


@blueprint.get("/metrics")
def metrics() -> Response:
    expected = current_settings().metrics_token
    if expected and not hmac.compare_digest(
        request.headers.get("Authorization", "").encode(), f"Bearer {expected}".encode()
    ):
        raise Unauthorized("/metrics needs the scrape token (COMPUTE_METRICS_TOKEN).")
    registry = CollectorRegistry()
    registry.register(ServiceState(api_broker()))
    registry.register(MetricFiles.of_every_node(current_settings().metrics_dir))
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


class ServiceState(Collector):
    """The service's gauges, read from the database and the broker at each collection.

    A source that cannot be read leaves its gauges out and says so in
    `compute_metrics_source_up`, so a scrape never fails for one part being down.
    """

    def __init__(self, broker: redis.Redis | None) -> None:
        self.broker = broker

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "compute_metrics_source_up",
            "Whether the source of these metrics could be read (1) or not (0).",
            labels=["source"],
        )
        rows = self._function_counts()
        up.add_metric(["database"], rows is not None)
        if rows is not None:
            yield _jobs(rows)
        if self.broker is not None:
            try:
                yield from self._broker_state(self.broker, rows or [])
                up.add_metric(["broker"], 1)
            except (redis.RedisError, OSError) as error:
                logger.warning("metrics: the broker cannot be read: %s", error)
                up.add_metric(["broker"], 0)
        yield up

    def _function_counts(self) -> list[Any] | None:
        try:
            return list(db.session.execute(_COUNTS).all())
        except sa.exc.SQLAlchemyError as error:
            logger.warning("metrics: the database cannot be read: %s", error)
            db.session.rollback()
            return None

    def _broker_state(self, client: redis.Redis, rows: list[Any]) -> Iterator[Metric]:
        pending = STATUSES.index(JobStatus.PENDING) + 1
        waiting = [row[0] for row in rows if row[pending]]
        pipeline = client.pipeline(transaction=False)
        pipeline.llen(BUILD_QUEUE)
        for function_id in waiting:
            pipeline.llen(function_queue(function_id))
        build_depth, *depths = pipeline.execute()
        workers = live_workers(client)
        queue = GaugeMetricFamily(
            "compute_queue_depth",
            "Messages waiting in a function's queue (jobs published, not yet taken).",
            labels=["function"],
        )
        for function_id, depth in zip(waiting, depths):
            queue.add_metric([function_id], depth)
        yield queue
        yield GaugeMetricFamily(
            "compute_build_queue_depth", "Build requests waiting.", value=build_depth
        )
        yield GaugeMetricFamily(
            "compute_live_workers", "Worker nodes alive (presence renewed).", value=len(workers)
        )
        slots = GaugeMetricFamily(
            "compute_worker_slots", "Jobs a live worker node runs at once.", labels=["node"]
        )
        warm = GaugeMetricFamily(
            "compute_warm_executors", "Warm executors a live worker node keeps.", labels=["node"]
        )
        for worker in workers:
            slots.add_metric([worker.node], worker.slots)
            warm.add_metric([worker.node], worker.warm_executors)
        yield slots
        yield warm


def _jobs(rows: list[Any]) -> Metric:
    jobs = GaugeMetricFamily(
        "compute_jobs",
        "Jobs by function and status (functions that have any).",
        labels=["function", "status"],
    )
    for function_id, *counts in rows:
        if any(counts):
            for status, count in zip(STATUSES, counts):
                jobs.add_metric([function_id, status.value], count)
    return jobs
