"""The worker's Celery app, configured from the same settings as the API.

Start a worker with `celery -A worker.celery_app worker`. Tasks run inside the Flask
app context so they share the API's models, database and blob store. Every handler
Celery sets up for the worker's logs redacts credentials and the service's secrets.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery, Task
from celery.signals import after_setup_logger, after_setup_task_logger
from flask import Flask

from api import create_app
from api.dispatch import BUILD_QUEUE
from api.redaction import install_log_filter, secret_values


def celery_init_app(app: Flask) -> Celery:
    """A Celery app bound to `app`: every task body runs inside its app context."""

    class FlaskTask(Task[Any, Any]):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with app.app_context():
                return self.run(*args, **kwargs)

    broker_url = app.config.get("REDIS_URL")
    if not broker_url:
        raise RuntimeError("REDIS_URL must name the broker the workers consume from")
    celery: Celery = Celery(
        app.name,
        task_cls=FlaskTask,
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
    )
    celery.set_default()
    app.extensions["celery"] = celery
    _redact_logs(secret_values(app.config))
    return celery


def _redact_logs(secrets: list[str]) -> None:
    # Celery replaces the root and task loggers' handlers when the worker starts: the
    # filter goes on the handlers it makes, once they exist.
    def install(logger: logging.Logger, **_: Any) -> None:
        install_log_filter([logger], secrets)

    after_setup_logger.connect(install, weak=False)
    after_setup_task_logger.connect(install, weak=False)


flask_app = create_app()
app = celery_init_app(flask_app)
