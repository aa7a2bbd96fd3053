"""Asking the worker running a canceled job to stop it, through a key on the broker.

The database records the cancel (`cancel_requested_at`); this key is what makes the
stop prompt: the worker checks it a few times a second while the job runs, which a
query of the database for every running job would cost far more for. A key that
cannot be set (the broker is down) leaves the job to run to its end, as it would have.
"""

from __future__ import annotations

import logging

import redis

from compute.server.dispatch import STOP_KEY_SECONDS, stop_key
from compute.server.settings import current_settings

from .publishing import broker_client

logger = logging.getLogger(__name__)


def ask_to_stop(job_ids: list[str]) -> None:
    """After committing the cancel of running jobs: tell their workers to stop them."""
    url = current_settings().redis_url
    if not url or not job_ids:
        return
    try:
        with broker_client(url).pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.set(stop_key(job_id), b"1", ex=STOP_KEY_SECONDS)
            pipe.execute()
    except redis.RedisError as error:
        logger.warning("could not ask %d jobs to stop: %s", len(job_ids), error)


def stop_asked(client: redis.Redis, job_id: str) -> bool:
    """Whether the job's owner canceled it; False when the broker cannot say."""
    try:
        return bool(client.exists(stop_key(job_id)))
    except redis.RedisError:
        return False
