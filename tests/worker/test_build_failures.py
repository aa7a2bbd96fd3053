"""A function that cannot be built fails readably, and so do the jobs waiting for it."""

from __future__ import annotations

import gzip
from typing import Any

import pytest
import requests

from compute import BuildFailedError, Function, FunctionStatus, JobStatus
from compute._bundle import build_bundle
from tests.conftest import ApiClient
from tests.worker import functions
from tests.worker.support import wait_for_job, wait_until


def _create_with_waiting_jobs(
    api: ApiClient, image: str, requirements: list[str] | None
) -> tuple[dict[str, Any], list[str]]:
    """A function with two jobs submitted before its bundle arrives, then its bundle."""
    created = api.post("/functions", json={"name": "unbuildable", "image": image, "timeout": 60})
    assert created.status_code == 201, created.text
    function = created.json()["function"]
    jobs = api.post("/jobs/bulk", json={"function_id": function["id"], "bulk_args": [[1], [2]]})
    assert jobs.status_code == 201, jobs.text
    with build_bundle(functions.double, requirements) as bundle:
        upload = requests.put(
            created.json()["bundle_upload_url"], data=bundle.path.read_bytes(), timeout=30
        )
    assert upload.ok, upload.text
    assert api.post(f"/functions/{function['id']}/bundle").status_code == 200
    return function, [job["id"] for job in jobs.json()]


@pytest.mark.parametrize(
    ("image", "requirements", "reason", "in_log"),
    [
        (
            "python3.11:latest",
            ["no-such-package-anywhere==1.0"],
            "installing the requirements failed",
            "no-such-package-anywhere",
        ),
        ("python2.1:latest", None, "python2.1", "python2.1"),
    ],
    ids=["bad-requirement", "unknown-image"],
)
@pytest.mark.usefixtures("stack_wheelhouse")
def test_build_failure_fails_waiting_jobs_and_refuses_new_ones(
    exec_user: ApiClient, image: str, requirements: list[str] | None, reason: str, in_log: str
) -> None:
    function, job_ids = _create_with_waiting_jobs(exec_user, image, requirements)
    url = f"/functions/{function['id']}"
    failed = wait_until(
        lambda: (fn := exec_user.get(url).json())["status"] == "build_failed" and fn,
        describe=lambda: exec_user.get(url).json(),
    )
    assert failed["status"] == FunctionStatus.BUILD_FAILED

    log = gzip.decompress(exec_user.get(f"{url}/log").content).decode()
    assert in_log in log and "Build failed" in log, log

    for job_id in job_ids:
        job = wait_for_job(exec_user, job_id)
        assert job["status"] == JobStatus.FAILURE
        assert job["error"].startswith("the function failed to build: ")
        assert reason in job["error"]

    late = exec_user.post("/jobs", json={"function_id": function["id"], "args": [3]})
    assert late.status_code == 409, late.text
    assert "failed to build" in late.json()["detail"]

    sdk_function = Function.get(function["id"])
    with pytest.raises(BuildFailedError):
        sdk_function.wait_for_completion(timeout=30, interval=0.1)
    assert reason in sdk_function.read_build_log() or in_log in sdk_function.read_build_log()


def test_jobs_submitted_while_building_wait_and_run(exec_user: ApiClient) -> None:
    fn = Function(functions.double, name="early", timeout=60)
    fn.save()
    fn.map([1, 2, 3])
    fn.wait_for_completion(timeout=120, interval=0.1)
    assert fn.status == FunctionStatus.SUCCESS
    assert fn.results() == [2, 4, 6]


def test_jobs_submitted_before_the_bundle_wait_and_run(exec_user: ApiClient) -> None:
    function, job_ids = _create_with_waiting_jobs(exec_user, "python3.11:latest", None)
    assert [wait_for_job(exec_user, job_id)["status"] for job_id in job_ids] == ["success"] * 2
    results = [exec_user.get(f"/jobs/{job_id}/result").json() for job_id in job_ids]
    assert results == [2, 4]
