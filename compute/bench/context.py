"""What every figure is measured with: the running service, the raw Celery baseline, the
run's size, and what one figure leaves for another."""

from __future__ import annotations

from dataclasses import dataclass, field

from compute import Function

from .raw_worker import RawCelery
from .service import Service
from .sizes import Size


@dataclass
class Bench:
    """One run's processes and shared state.

    Attributes:
        service: `compute up`, its worker running `workers` processes.
        raw: The raw Celery worker with as many processes.
        size: How much work each figure does.
        workers: The process count of both workers.
        noop: The built, warm no-op function.
        mapped: The ids of figure 1's jobs, in submission order, once they all succeeded.
        broker_url: The run's redis-server, the service's database of it.
    """

    service: Service
    raw: RawCelery
    size: Size
    workers: int
    noop: Function
    broker_url: str
    mapped: list[str] = field(default_factory=list)
