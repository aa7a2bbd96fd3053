"""The names the API and the workers agree on: tasks, queues and the broker keys the
service keeps beside Celery's. Publishing itself is `worker.publishing`'s.
"""

from __future__ import annotations

BUILD_TASK = "compute.build_function"
RUN_TASK = "compute.run_job"
BUILD_QUEUE = "compute.builds"
FUNCTION_QUEUE_PREFIX = "compute.function."
# Celery's remote control (telling workers to consume a new function's queue) goes over
# an exchange of the service's own: a Celery app of someone else's on the same Redis
# database listens on the default one and must not start taking the service's jobs.
CONTROL_EXCHANGE = "compute"
# While a background publish of a function's jobs is under way this key exists, so the
# reconciler does not re-publish what is merely not published yet. It expires on its
# own when the publishing process dies.
PUBLISHING_KEY_PREFIX = "compute:publishing:"
PUBLISHING_KEY_SECONDS = 15


def function_queue(function_id: str) -> str:
    """Each function's jobs wait on their own queue."""
    return FUNCTION_QUEUE_PREFIX + function_id


def publishing_key(function_id: str) -> str:
    return PUBLISHING_KEY_PREFIX + function_id
