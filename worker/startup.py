"""What a worker does when it starts: say how limits are enforced, pick up existing queues."""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import worker_ready

from api.dispatch import function_queue

from .celery_app import flask_app
from .execution.limits import describe_enforcement
from .queues import active_function_ids

logger = logging.getLogger(__name__)


@worker_ready.connect
def on_worker_ready(sender: Any = None, **_: Any) -> None:
    mode = flask_app.config.get("RESOURCE_ENFORCEMENT", "auto")
    for limit, mechanism in describe_enforcement(mode).items():
        logger.info("limit %s enforced by: %s", limit, mechanism)
    with flask_app.app_context():
        function_ids = active_function_ids()
    consumer = sender  # the worker's Consumer
    for function_id in function_ids:
        consumer.add_task_queue(function_queue(function_id))
    logger.info("consuming the queues of %d functions with outstanding jobs", len(function_ids))
