"""What the runner needs in a function's environment comes from the worker, not an index.

A pickled function (lambda, closure) requires nothing: the runner loads it with the
worker's own cloudpickle, so it builds and runs on a worker whose package index cannot
be reached, warm or cold. A function that requires cloudpickle itself is loaded with
that one, and a pickle that the worker's cloudpickle cannot load fails naming both
versions.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Callable, Iterator
from typing import Any

import cloudpickle
import pytest
import requests

from compute import Function, FunctionStatus, JobStatus
from compute._entrypoint import ENTRYPOINT, PICKLE_FILE, PYTHON_VERSION, make_entrypoint
from tests.conftest import ApiClient
from tests.worker.build.zips import make_zip
from tests.worker.conftest import (
    ExecutionStack,
    running_stack,
)
from tests.worker.support import job_log, wait_for_job

RUNNER_SCRIPTS = {"warm": "executor_main.py", "cold": "bootstrap.py"}
# Ways an installer could be pointed at an index or a wheel directory from outside.
INSTALLER_PREFIXES = ("PIP_", "UV_")


def reporter(offset: int) -> Callable[[int], dict[str, Any]]:
    """A closure (so it is shipped pickled) that says what loaded it and from where."""

    def report(x: int) -> dict[str, Any]:
        import os
        import sys

        return {
            "value": x + offset,
            "runner": os.path.basename(sys.argv[0]),
            "cloudpickle": sys.modules["cloudpickle"].__file__,
            "prefix": sys.prefix,
            "last_path": sys.path[-1],
        }

    return report


@contextlib.contextmanager
def refused_port() -> Iterator[int]:
    """A loopback port held but not listened on: every connection to it is refused."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]


@pytest.fixture(scope="module", params=["warm", "cold"])
def offline_stack(request: pytest.FixtureRequest) -> Iterator[tuple[ExecutionStack, str]]:
    """A worker whose only package index refuses connections, with no wheelhouse, and
    warm executors on or off."""

    def offline(env: dict[str, str]) -> dict[str, str]:
        env = {
            name: value
            for name, value in env.items()
            if not name.startswith(INSTALLER_PREFIXES) and name != "COMPUTE_WHEELHOUSE"
        }
        env["COMPUTE_PACKAGE_INDEX_URL"] = f"http://127.0.0.1:{port}/simple"
        env["COMPUTE_WARM_EXECUTORS"] = json.dumps(request.param == "warm")
        return env

    with (
        refused_port() as port,
        running_stack("sqlite", "compute-offline-", worker_settings=offline, processes=2) as stack,
    ):
        yield stack, request.param


@pytest.fixture
def offline_user(
    offline_stack: tuple[ExecutionStack, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[ApiClient]:
    """A fresh user of the offline stack; the SDK acts as them meanwhile."""
    stack, _ = offline_stack
    with stack.sdk_user(monkeypatch) as api:
        yield api


def run_all(*functions: Function) -> None:
    for fn in functions:
        fn.wait_for_completion(timeout=120, interval=0.1)
        assert fn.status == FunctionStatus.SUCCESS, fn.read_build_log()


def test_pickled_functions_build_and_run_with_no_package_index(
    offline_stack: tuple[ExecutionStack, str], offline_user: ApiClient
) -> None:
    _, mode = offline_stack
    closure = Function(reporter(10), name="closure", timeout=60)
    lam = Function(lambda x: x * 3, name="lambda", timeout=60)
    for fn in (closure, lam):
        fn.save()
        fn.map([1, 2])
    run_all(closure, lam)

    assert lam.results() == [3, 6]
    reports = closure.results()
    assert [report["value"] for report in reports] == [11, 12]
    for report in reports:
        assert report["runner"] == RUNNER_SCRIPTS[mode]
        # The worker's copy, beside the runner's scripts and last on the path.
        assert report["cloudpickle"].startswith(report["last_path"] + os.sep)
        assert not report["cloudpickle"].startswith(report["prefix"])
    log = closure.read_build_log()
    assert "Requirements: none" in log and "Build succeeded" in log, log


# The execution stack's wheelhouse holds a wheel of the installed cloudpickle.
@pytest.mark.usefixtures("stack_wheelhouse")
def test_a_function_requiring_cloudpickle_loads_with_its_own(exec_user: ApiClient) -> None:
    fn = Function(
        reporter(1),
        name="own-cloudpickle",
        requirements=[f"cloudpickle=={cloudpickle.__version__}"],
        timeout=60,
    )
    fn.save()
    fn.map([1])
    run_all(fn)
    [report] = fn.results()
    assert report["value"] == 2
    assert report["cloudpickle"].startswith(report["prefix"] + os.sep)
    assert f"cloudpickle=={cloudpickle.__version__}" in fn.read_build_log()


def unloadable_bundle(pickled_with: str) -> bytes:
    """A pickled-function bundle whose pickle names a cloudpickle function that no
    cloudpickle has, as if an incompatible version had written it."""
    loader = make_entrypoint(lambda x: x).source  # the SDK's own loader
    pickle = b"ccloudpickle.cloudpickle\n_made_by_no_cloudpickle\n."
    meta = {"python": PYTHON_VERSION, "kind": "cloudpickle", "cloudpickle": pickled_with}
    return make_zip(
        [
            (ENTRYPOINT, loader.encode()),
            (PICKLE_FILE, pickle),
            ("__dlmeta__.json", json.dumps(meta).encode()),
        ]
    )


def run_bundle(api: ApiClient, data: bytes) -> dict[str, Any]:
    """Create a function from the bundle `data`, run one job on it, return the job."""
    created = api.post("/functions", json={"name": "unloadable", "timeout": 60})
    assert created.status_code == 201, created.text
    function_id = created.json()["function"]["id"]
    job = api.post("/jobs", json={"function_id": function_id, "args": [1]})
    assert job.status_code == 201, job.text
    upload = requests.put(created.json()["bundle_upload_url"], data=data, timeout=30)
    assert upload.status_code == 200, upload.text
    assert api.post(f"/functions/{function_id}/bundle").status_code == 200
    return wait_for_job(api, job.json()["id"])


def test_a_pickle_the_worker_cannot_load_fails_naming_both_versions(
    offline_user: ApiClient,
) -> None:
    job = run_bundle(offline_user, unloadable_bundle("0.0.1"))
    assert job["status"] == JobStatus.FAILURE
    text = "\n".join(job_log(offline_user, job["id"]))
    expected = (
        f"the function was pickled with cloudpickle 0.0.1; this worker loads it with "
        f"cloudpickle {cloudpickle.__version__}: AttributeError: "
    )
    assert expected in text, text
    assert "_made_by_no_cloudpickle" in text
    # The failure reason is the traceback's last line: the loader's own error.
    assert expected in job["error"], job


def test_the_same_versions_fail_with_the_error_alone(offline_user: ApiClient) -> None:
    job = run_bundle(offline_user, unloadable_bundle(cloudpickle.__version__))
    assert job["status"] == JobStatus.FAILURE
    text = "\n".join(job_log(offline_user, job["id"]))
    assert "AttributeError: " in text and "_made_by_no_cloudpickle" in text, text
    assert "pickled with cloudpickle" not in text
