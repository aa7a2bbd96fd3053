"""Redis databases for test runs: each run claims its own, so concurrent runs on one
machine never flush each other's queues."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import redis

REDIS_HOST = os.environ.get("COMPUTE_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = 6379
# Database 0 holds the claims; a claim left by a killed run expires on its own.
CLAIM_DATABASE = 0
CLAIM_SECONDS = 4 * 3600
DATABASES = range(1, 16)


@contextlib.contextmanager
def claimed_redis_url() -> Iterator[str]:
    """The URL of a Redis database no other test run is using, flushed before and after."""
    claims = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=CLAIM_DATABASE)
    for number in DATABASES:
        key = f"compute-tests:database:{number}"
        if not claims.set(key, os.getpid(), nx=True, ex=CLAIM_SECONDS):
            continue
        url = f"redis://{REDIS_HOST}:{REDIS_PORT}/{number}"
        database = redis.Redis.from_url(url)
        database.flushdb()
        try:
            yield url
        finally:
            database.flushdb()
            database.close()
            claims.delete(key)
            claims.close()
        return
    raise RuntimeError("every Redis test database is claimed by another test run")
