"""One run of the suite: start what it needs, measure the selected figures, stop it all."""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from .children import Children
from .context import Bench
from .functions import deploy, warm_up
from .machine import describe, summary
from .plan import FIGURES, Figure
from .raw_worker import RawCelery, baseline_url
from .redis_server import start_redis
from .report import NOT_MEASURED_YET, NOT_SELECTED, Row, table, write_json
from .service import cached_work_dir, data_dir_of, start_service
from .sizes import Size

# Enough jobs that each worker process has run the function and keeps its executor warm.
WARM_UP_JOBS_PER_WORKER = 4


@dataclass(frozen=True)
class Options:
    size: Size
    only: frozenset[int]
    workers: int
    json_path: Path | None


def say(message: str) -> None:
    """Progress, on stderr: stdout holds the table alone."""
    print(message, file=sys.stderr, flush=True)


def run(options: Options) -> list[Row]:
    """Run the suite; print the table, write the JSON, and return the rows.

    The run's directory (logs, the service's data) is removed at the end, unless the run
    failed: then it is kept, with a line saying where.
    """
    run_dir = Path(tempfile.mkdtemp(prefix="compute-bench-"))
    # Open to other users' passage, so that a root worker's job uids reach the work
    # directory inside the data directory, and it goes with the run.
    run_dir.chmod(0o711)
    started = time.monotonic()
    try:
        rows, broker = measure(options, run_dir)
    except Exception:
        say(f"The run failed; its logs are in {run_dir}")
        raise
    except BaseException:  # Ctrl-C, SIGTERM: nothing to look into
        remove(run_dir)
        raise
    remove(run_dir)
    machine = describe()
    description: dict[str, Any] = {
        "suite": "python -m compute.bench",
        "size": options.size.name,
        "workers": options.workers,
        "database": "SQLite (compute up's default, in its data directory)",
        "broker": broker,
        "machine": machine,
        "duration_seconds": round(time.monotonic() - started, 1),
        "plan": [plan_entry(figure) for figure in FIGURES],
    }
    print(
        f"{summary(machine)}; size {options.size.name}, "
        f"{options.workers} worker processes, {description['duration_seconds']} s"
    )
    print()
    print(table(rows))
    if options.json_path is not None:
        write_json(options.json_path, rows, description)
    return rows


def measure(options: Options, run_dir: Path) -> tuple[list[Row], str]:
    """The rows of every figure of the plan, measured or not; and the broker's version."""
    measured: dict[int, list[Row]] = {}
    chosen = [figure for figure in FIGURES if figure.measure and figure.number in options.only]
    broker = ""
    if chosen:
        broker = measure_chosen(options, run_dir, chosen, measured)
    rows = []
    for figure in FIGURES:
        if figure.number in measured:
            rows.extend(measured[figure.number])
        else:
            note = NOT_MEASURED_YET if figure.measure is None else NOT_SELECTED
            rows.append(Row(figure.number, figure.title, target=figure.target, note=note))
    return rows, broker


def measure_chosen(
    options: Options, run_dir: Path, chosen: list[Figure], measured: dict[int, list[Row]]
) -> str:
    """Start the service and the baselines, measure the `chosen` figures into `measured`,
    stop everything; return the broker's description."""
    with Children(run_dir) as children:
        broker_url = start_redis(children, run_dir / "redis")
        broker = f"redis-server {redis_version(broker_url)}, private to the run"
        say(f"Starting compute up with {options.workers} worker processes")
        service = start_service(children, run_dir, broker_url, options.workers)
        say(f"Starting raw Celery with {options.workers} processes")
        raw = RawCelery(baseline_url(broker_url), children, options.workers)
        raw.start()
        say("Building and warming up the no-op function")
        noop = deploy("bench-noop")
        warm_up(noop, WARM_UP_JOBS_PER_WORKER * options.workers)
        bench = Bench(service, raw, options.size, options.workers, noop, broker_url)
        for figure in sorted(chosen, key=lambda figure: figure.order):
            assert figure.measure is not None
            say(f"Figure {figure.number}: {figure.title}")
            measured[figure.number] = figure.measure(bench)
        say("Stopping compute up, raw Celery and redis-server")
    return broker


def remove(run_dir: Path) -> None:
    """Remove the run's directory, with the service's work directory wherever it was."""
    shutil.rmtree(cached_work_dir(data_dir_of(run_dir)), ignore_errors=True)
    shutil.rmtree(run_dir, ignore_errors=True)


def redis_version(url: str) -> str:
    client = redis.Redis.from_url(url)
    try:
        return str(client.info("server")["redis_version"])
    finally:
        client.close()


def plan_entry(figure: Figure) -> dict[str, Any]:
    return {
        "figure": figure.number,
        "title": figure.title,
        "baseline": figure.baseline,
        "target": figure.target,
        "measured": figure.measure is not None,
    }
