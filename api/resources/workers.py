"""`/workers` and `/images`: the live worker nodes, and the images they can run.

Both are read from the workers' presence records in the broker (`compute.server.presence`),
never from the database: a worker that stopped drops out within seconds.
"""

from __future__ import annotations

from collections import defaultdict

import redis
from flask import Blueprint, Response, jsonify

from compute.server.presence import WorkerPresence, live_workers

from ..auth import authenticate_request
from ..broker import api_broker
from ..errors import ApiError

blueprint = Blueprint("workers", __name__)
blueprint.before_request(authenticate_request)


@blueprint.get("/workers")
def list_workers() -> Response:
    return jsonify({"data": [worker.as_dict() for worker in _live_workers()]})


@blueprint.get("/images")
def list_images() -> Response:
    """Each image some live worker offers: the newest Python release serving it, and how
    many workers offer it."""
    versions: dict[str, set[str]] = defaultdict(set)
    offered_by: dict[str, int] = defaultdict(int)
    for worker in _live_workers():
        for offered in worker.images:
            offered_by[offered.image] += 1
            versions[offered.image].add(offered.python)
    data = [
        {
            "image": image,
            "python": max(versions[image], key=_release),
            "workers": offered_by[image],
        }
        for image in sorted(offered_by, key=_release)
    ]
    return jsonify({"data": data})


def _live_workers() -> list[WorkerPresence]:
    client = api_broker()
    if client is None:
        return []
    try:
        return live_workers(client)
    except (redis.RedisError, OSError) as error:
        raise ApiError("The broker cannot be reached to list the workers.", status=503) from error


def _release(text: str) -> tuple[int, ...]:
    """`3.11.7` and `python3.11:latest` as numbers, so 3.9 sorts before 3.10."""
    digits = "".join(char if char.isdigit() else " " for char in text)
    return tuple(int(part) for part in digits.split())
