"""The worker's Celery app, configured from the same settings as the API.

Start a worker with `celery -A worker.celery_app worker`. Tasks run inside the app
context of the service core (`compute.server.app`: settings, database, blob store, no
HTTP routes), built on first use in each process rather than at import. Every handler
Celery sets up for the worker's logs redacts credentials and the service's secrets.
"""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

from celery import Celery, Task
from celery.signals import after_setup_logger, after_setup_task_logger
from flask import Flask

from compute.server.app import service_app
from compute.server.dispatch import BUILD_QUEUE, CONTROL_EXCHANGE
from compute.server.redaction import install_log_filter, secret_values
from compute.server.settings import Settings, load_settings


@cache
def service() -> Flask:
    """The service core's app of this process: every task body runs in its context."""
    return service_app()


class ServiceTask(Task[Any, Any]):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with service().app_context():
            return self.run(*args, **kwargs)


def celery_for(settings: Settings) -> Celery:
    """The worker's Celery app, consuming from the broker the settings name."""
    broker_url = settings.redis_url
    if not broker_url:
        raise RuntimeError("REDIS_URL must name the broker the workers consume from")
    celery: Celery = Celery(
        "compute-worker",
        task_cls=ServiceTask,
        broker=broker_url,
        include=["worker.tasks", "worker.startup"],
    )
    celery.conf.update(
        task_ignore_result=True,
        task_acks_late=True,
        worker_prefetch_multiplier=1,
        task_default_queue=BUILD_QUEUE,
        broker_connection_retry_on_startup=True,
        # Anyone who reaches the broker can publish to it: never decode pickle.
        accept_content=["json"],
        task_serializer="json",
        control_exchange=CONTROL_EXCHANGE,
    )
    celery.set_default()
    _redact_logs()
    return celery


def _redact_logs() -> None:
    # Celery replaces the root and task loggers' handlers when the worker starts: the
    # filter goes on the handlers it makes, once they exist.
    def install(logger: logging.Logger, **_: Any) -> None:
        install_log_filter([logger], secret_values(service().config))

    after_setup_logger.connect(install, weak=False)
    after_setup_task_logger.connect(install, weak=False)


app = celery_for(load_settings())
