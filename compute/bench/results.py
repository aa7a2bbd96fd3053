"""Figure 5: `fn.results()` of figure 1's jobs, against reading the same result blobs
straight from the blob store's directory."""

from __future__ import annotations

import time
from pathlib import Path

from compute import Function
from compute._serializable import decode_result

from . import throughput
from .context import Bench
from .report import Row

TARGET_SECONDS = 1.0


def result_path(blob_dir: Path, function_id: str, job_id: str) -> Path:
    """Where a `file://` store keeps a job's result: `jobs/<function>/<job>/result`, the
    layout of compute/server/blobstore.py's `job_result_key`."""
    return blob_dir / "jobs" / function_id / job_id / "result"


def measure(bench: Bench) -> list[Row]:
    if not bench.mapped:  # figure 1 not selected: its jobs are still needed
        throughput.service_seconds(bench, bench.size.map_jobs)
    jobs = len(bench.mapped)
    expected = list(range(jobs))
    function = Function.get(bench.noop.id)

    started = time.perf_counter()
    values = function.results()
    service = time.perf_counter() - started
    if values != expected:
        raise AssertionError("fn.results() did not return the inputs of the no-op jobs")

    started = time.perf_counter()
    direct = [
        decode_result(result_path(bench.service.blob_dir, function.id, job_id).read_bytes())
        for job_id in bench.mapped
    ]
    baseline = time.perf_counter() - started
    if direct != expected:
        raise AssertionError("the blob store does not hold the inputs of the no-op jobs")

    return [
        Row(
            figure=5,
            label=f"fn.results() of {jobs:,} jobs",
            unit="s",
            service=service,
            baseline=baseline,
            target=f"<= {TARGET_SECONDS:g} s",
            met=service <= TARGET_SECONDS,
            details={"jobs": jobs},
        )
    ]
