"""`/healthz` and `/readyz`: whether the API can reach what it needs, and whether jobs
can run.

`/healthz` is polled (by `compute up`, load balancers, the tests), so it checks only the
database and the broker, one round trip each: 200 when both answer, 503 naming what does
not. `/readyz` adds the live workers and, limit by limit, the mechanisms that enforce
jobs' limits on them; it is 503 while no worker is alive. Neither needs a token, so
neither says more than which part is down: the reasons go to the API's log.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

import redis
import sqlalchemy as sa
from flask import Blueprint, Response, jsonify

from compute.server.extensions import db
from compute.server.presence import WorkerPresence, live_workers

from .broker import api_broker

logger = logging.getLogger(__name__)

blueprint = Blueprint("health", __name__)

OK = "ok"
DOWN = "unreachable"
NOT_CONFIGURED = "not configured"


def database_state() -> str:
    try:
        with db.engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except (sa.exc.SQLAlchemyError, OSError) as error:
        logger.warning("health: the database is unreachable: %s", error)
        return DOWN
    return OK


def broker_state() -> str:
    """`ok`, `unreachable`, or `not configured`: an API without a broker still serves
    everything but the running of jobs, so that is not counted as down."""
    client = api_broker()
    if client is None:
        return NOT_CONFIGURED
    try:
        client.ping()
    except (redis.RedisError, OSError) as error:
        logger.warning("health: the broker is unreachable: %s", error)
        return DOWN
    return OK


@blueprint.get("/healthz")
def health() -> tuple[Response, int]:
    checks = {"database": database_state(), "broker": broker_state()}
    return _answer(checks, {})


@blueprint.get("/readyz")
def ready() -> tuple[Response, int]:
    checks = {"database": database_state(), "broker": broker_state()}
    workers = _live_workers() if checks["broker"] == OK else []
    checks["workers"] = OK if workers else "none alive"
    detail = {"live_workers": len(workers), "limits": enforced_limits(workers)}
    return _answer(checks, detail)


def enforced_limits(workers: list[WorkerPresence]) -> dict[str, list[str]]:
    """Each limit, and the distinct mechanisms that enforce it across `workers`."""
    mechanisms: dict[str, set[str]] = defaultdict(set)
    for worker in workers:
        for limit, mechanism in worker.limits.items():
            mechanisms[limit].add(mechanism)
    return {limit: sorted(found) for limit, found in sorted(mechanisms.items())}


def _live_workers() -> list[WorkerPresence]:
    client = api_broker()
    try:
        return live_workers(client) if client is not None else []
    except (redis.RedisError, OSError) as error:
        logger.warning("health: the workers' presence cannot be read: %s", error)
        return []


def _answer(checks: dict[str, str], detail: dict[str, Any]) -> tuple[Response, int]:
    down = [name for name, state in checks.items() if state not in (OK, NOT_CONFIGURED)]
    body = {"status": "unavailable" if down else OK, **checks, "down": down, **detail}
    return jsonify(body), 503 if down else 200
