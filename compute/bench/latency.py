"""Figure 4: one warm call, `fn(x)` until its result is back, against a raw Celery round
trip plus one request to the API.

The SDK learns that a job is done by polling, so the service is measured twice: waiting
as the SDK waits by default (`job.wait_for_completion()`), which is what a user gets, and
polling every 5 ms, which leaves mostly the service's own path from submit to result. The
three kinds of call take turns, so that a busy moment of a shared machine falls on all
of them alike.
"""

from __future__ import annotations

import contextlib
import functools
import io
import statistics
import time
from collections.abc import Callable

import requests

from .context import Bench
from .report import Row

WARM_UP_CALLS = 5
FAST_POLL_SECONDS = 0.005
JOB_TIMEOUT_SECONDS = 60.0
TARGETS_MS = {"p50": 15.0, "p95": 50.0}
BASELINE = "baseline"
# How the service's calls wait: the SDK's default, then fast polls.
WAITS: dict[str, float | None] = {"SDK's wait": None, "5 ms polls": FAST_POLL_SECONDS}


def measure(bench: Bench) -> list[Row]:
    calls = bench.size.latency_calls
    with requests.Session() as session:
        kinds: dict[str, Callable[[int], None]] = {
            BASELINE: functools.partial(raw_call, bench, session, bench.service.root_url),
            **{
                wait: functools.partial(service_call, bench, interval=interval)
                for wait, interval in WAITS.items()
            },
        }
        times = samples(kinds, calls)
    rows = []
    for wait, interval in WAITS.items():
        for name, target in TARGETS_MS.items():
            value = percentile(times[wait], name)
            rows.append(
                Row(
                    figure=4,
                    label=f"warm call {name}, {wait}, {calls} calls",
                    unit="ms",
                    service=value,
                    baseline=percentile(times[BASELINE], name),
                    target=f"<= {target:g} ms",
                    met=value <= target,
                    details={"calls": calls, "poll_interval_seconds": interval},
                )
            )
    return rows


def samples(kinds: dict[str, Callable[[int], None]], calls: int) -> dict[str, list[float]]:
    """Milliseconds each of `calls` calls of each kind took, the kinds taking turns, after
    warm-up calls of each."""
    for value in range(WARM_UP_CALLS):
        for call in kinds.values():
            call(value)
    times: dict[str, list[float]] = {kind: [] for kind in kinds}
    for value in range(calls):
        for kind, call in kinds.items():
            started = time.perf_counter()
            call(value)
            times[kind].append((time.perf_counter() - started) * 1000)
    return times


def service_call(bench: Bench, value: int, interval: float | None) -> None:
    """Submit one job, wait for it and fetch its result, as a user of the SDK does;
    polling at most every `interval` seconds, or as the SDK does by default."""
    # The SDK's waiting reports each status on stderr: nothing the run should print.
    with contextlib.redirect_stderr(io.StringIO()):
        job = bench.noop(value)
        if interval is None:
            job.wait_for_completion(timeout=JOB_TIMEOUT_SECONDS)
        else:
            job.wait_for_completion(timeout=JOB_TIMEOUT_SECONDS, interval=interval)
    if job.result() != value:
        raise AssertionError(f"job {job.id} did not return {value}")


def raw_call(bench: Bench, session: requests.Session, root_url: str, value: int) -> None:
    """A raw Celery round trip, then the cheapest request the API answers."""
    if bench.raw.round_trip(value) != value:
        raise AssertionError("the raw Celery worker did not echo the value")
    session.get(f"{root_url}/healthz", timeout=JOB_TIMEOUT_SECONDS).raise_for_status()


def percentile(times: list[float], name: str) -> float:
    """`p50` or `p95` of `times`."""
    cut = int(name[1:])
    return statistics.quantiles(times, n=100, method="inclusive")[cut - 1]
