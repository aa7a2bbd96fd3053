"""Small helpers the execution tests share: job JSON and logs over HTTP, polling, blobs."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import ApiClient

WAIT_SECONDS = 120


def job_json(api: ApiClient, job_id: str) -> dict[str, Any]:
    response = api.get(f"/jobs/{job_id}")
    assert response.status_code == 200, response.text
    return response.json()


def job_log(api: ApiClient, job_id: str) -> list[str]:
    """The job's log lines, without their dates."""
    response = api.get(f"/jobs/{job_id}/log")
    assert response.status_code == 200, response.text
    return [json.loads(line)["log"] for line in response.text.splitlines()]


def wait_until(
    condition: Callable[[], Any],
    timeout: float = WAIT_SECONDS,
    interval: float = 0.1,
    describe: Callable[[], Any] | None = None,
) -> Any:
    """Poll `condition` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            state = f": {describe()}" if describe else ""
            raise AssertionError(f"condition not met within {timeout} s{state}")
        time.sleep(interval)


def wait_for_job(api: ApiClient, job_id: str, timeout: float = WAIT_SECONDS) -> dict[str, Any]:
    """The job's JSON once it is final."""
    final = {"success", "failure", "timeout"}
    return wait_until(
        lambda: (job := job_json(api, job_id))["status"] in final and job,
        timeout=timeout,
        describe=lambda: job_json(api, job_id),
    )


def parse_date(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def job_blob_dir(data_dir: Path, function_id: str, job_id: str) -> Path:
    """Where the file blob store keeps a job's result and log."""
    return data_dir / "blobs" / "jobs" / function_id / job_id
