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


# A running job its owner canceled: the worker running it checks for this key while the
# job runs and stops it. The database records the request too; the key only makes the
# stop prompt, so it may expire long before any job runs that long.
STOP_KEY_PREFIX = "compute:stop:"
STOP_KEY_SECONDS = 24 * 3600


def stop_key(job_id: str) -> str:
    return STOP_KEY_PREFIX + job_id


# Each worker node says it is alive, and what it offers, under a key of its own that
# expires unless renewed (`compute.server.presence`); the set names the nodes that have
# said so, so a reader needs no scan of the keyspace.
WORKERS_KEY = "compute:workers"
WORKER_KEY_PREFIX = "compute:worker:"
WORKER_PRESENCE_REFRESH_SECONDS = 5.0
WORKER_PRESENCE_TTL_SECONDS = 15


def worker_key(node: str) -> str:
    return WORKER_KEY_PREFIX + node


def run_task_shadow(function_name: str, job_id: str) -> str:
    """The name monitors (Flower) and the worker's log show for a job's run task."""
    return f"{RUN_TASK}:{function_name}:{job_id}"
