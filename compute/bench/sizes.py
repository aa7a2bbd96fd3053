"""How much each figure does: `smoke` for CI, `full` for the sizes the targets name."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Size:
    """The amounts of work of one run.

    Attributes:
        name: `smoke` or `full`.
        map_jobs: No-op jobs of figure 1, whose results figure 5 reads back.
        submit_counts: Arguments of each `fn.map` that figure 3 times.
        latency_calls: Single calls that figure 4 times, after its warm-up calls.
        concurrency_jobs: 100 ms jobs of figure 2, at most four running at once.
        search_jobs: Job rows in PostgreSQL that figure 6 pages through.
    """

    name: str
    map_jobs: int
    submit_counts: tuple[int, ...]
    latency_calls: int
    concurrency_jobs: int
    search_jobs: int


SIZES = {
    # A whole run within about three minutes on two cores.
    "smoke": Size(
        "smoke",
        map_jobs=600,
        submit_counts=(2_000, 10_000),
        latency_calls=30,
        search_jobs=20_000,
        concurrency_jobs=40,
    ),
    "full": Size(
        "full",
        map_jobs=10_000,
        submit_counts=(10_000, 100_000),
        latency_calls=200,
        search_jobs=1_000_000,
        concurrency_jobs=200,
    ),
}
