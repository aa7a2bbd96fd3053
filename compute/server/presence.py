"""Which worker nodes are alive, and what each offers: read from the broker's Redis.

Each worker node's main process keeps a JSON record under a key of its own that expires
unless renewed every few seconds (`worker/presence.py` writes it); a node that stops or
dies simply drops out. Anything that reaches Redis can write there, jobs included on a
host whose network policy is not enforced, so a record is checked field by field and one
that does not parse is left out, never trusted.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import redis

from .dispatch import WORKERS_KEY, worker_key

logger = logging.getLogger(__name__)

__all__ = ["OfferedImage", "WorkerPresence", "live_workers"]


@dataclass(frozen=True)
class OfferedImage:
    """An image a worker can run functions of, and the Python release serving it."""

    image: str  # `python3.11:latest`
    python: str  # `3.11.7`


@dataclass(frozen=True)
class WorkerPresence:
    """One live worker node, as it last described itself.

    Attributes:
        node: the Celery node name (`celery@host`).
        hostname: the machine it runs on.
        pid: its main process.
        slots: how many jobs it runs at once (its pool's concurrency).
        warm_executors: function processes kept warm across its pool.
        images: what it can run.
        limits: how each limit is enforced on its jobs, limit by limit.
        metrics_port: where it serves its own metrics, when it does.
        seen_at: when it last said so (seconds since the epoch, its clock).
    """

    node: str
    hostname: str
    pid: int
    slots: int
    warm_executors: int
    images: tuple[OfferedImage, ...] = ()
    limits: Mapping[str, str] = field(default_factory=dict)
    metrics_port: int | None = None
    seen_at: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        described = asdict(self)
        described["images"] = [asdict(image) for image in self.images]
        described["limits"] = dict(self.limits)
        return described

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, raw: str | bytes) -> WorkerPresence:
        """Parse a record; `ValueError` when it is not one a worker writes."""
        try:
            values = json.loads(raw)
            images = tuple(
                OfferedImage(_text(item["image"]), _text(item["python"]))
                for item in _list(values["images"])
            )
            limits = {_text(name): _text(value) for name, value in _dict(values["limits"]).items()}
            port = values.get("metrics_port")
            return cls(
                node=_text(values["node"]),
                hostname=_text(values["hostname"]),
                pid=_count(values["pid"]),
                slots=_count(values["slots"]),
                warm_executors=_count(values["warm_executors"]),
                images=images,
                limits=limits,
                metrics_port=None if port is None else _count(port),
                seen_at=float(values.get("seen_at", 0.0)),
            )
        except (KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"not a worker's record: {error!r}") from error


def live_workers(redis_client: redis.Redis) -> list[WorkerPresence]:
    """The worker nodes whose record has not expired, by node name.

    Raises:
        redis.RedisError: the broker cannot be reached.
    """
    nodes = sorted(_decoded(name) for name in redis_client.smembers(WORKERS_KEY))
    if not nodes:
        return []
    records = redis_client.mget([worker_key(node) for node in nodes])
    live: list[WorkerPresence] = []
    gone: list[str] = []
    for node, raw in zip(nodes, records):
        if raw is None:
            gone.append(node)
            continue
        try:
            live.append(WorkerPresence.from_json(raw))
        except ValueError as error:
            logger.warning("ignoring the presence record of %r: %s", node, error)
    if gone:
        # Names of nodes whose record expired: every reader may drop them.
        redis_client.srem(WORKERS_KEY, *gone)
    return live


def _decoded(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, not {type(value).__name__}")
    return value


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TypeError(f"expected a whole number, not {value!r}")
    return value


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list, not {type(value).__name__}")
    return value


def _dict(value: Any) -> dict[Any, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"expected a mapping, not {type(value).__name__}")
    return value
