"""The API's client of the broker's Redis, for what it reads there itself: worker
presence, queue lengths, and whether the broker answers at all.

Its timeouts are short, so a broker that hangs fails a health check or a listing in a
second or two instead of holding a request thread.
"""

from __future__ import annotations

from functools import cache

import redis

from compute.server.settings import current_settings

BROKER_TIMEOUT_SECONDS = 2.0


def api_broker() -> redis.Redis | None:
    """A client of the configured broker; None when the API has none."""
    url = current_settings().redis_url
    return _client(url) if url else None


@cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=BROKER_TIMEOUT_SECONDS,
        socket_timeout=BROKER_TIMEOUT_SECONDS,
    )
