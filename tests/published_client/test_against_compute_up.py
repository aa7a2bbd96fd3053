"""The published client against `compute up`: the API, worker and embedded broker together.

The API tests next door run the client against the API alone on both databases; this runs
one whole session against the service as a user starts it, with a token from
`compute token create`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from tests.cli.conftest import RunningUp, create_token, running_up

from .conftest import ScenarioRun, make_runner

pytestmark = pytest.mark.published_client

FUNCTION_STATUSES = {"awaiting_bundle", "building", "build_failed", "running", "success", "failure"}
JOB_STATUSES = {"pending", "running", "success", "failure", "timeout"}


@pytest.fixture(scope="module")
def service(client_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningUp]:
    """One `compute up` for this module, started only once the client venv is there."""
    with running_up(tmp_path_factory.mktemp("up")) as running:
        yield running


@pytest.fixture
def run_on_up(
    client_python: Path, service: RunningUp, tmp_path: Path
) -> Callable[..., ScenarioRun]:
    return make_runner(client_python, service.base_url, service.root_url, tmp_path)


def test_a_whole_session_against_compute_up(
    run_on_up: Callable[..., ScenarioRun], service: RunningUp
) -> None:
    token = create_token(service, "published-client")

    out = run_on_up("lifecycle", "lifecycle", token, name="multiply", image="python3.10:latest")
    result = out.result

    function_id = result["created"]["id"]
    assert result["created"]["status"] in FUNCTION_STATUSES - {"awaiting_bundle"}
    assert result["created"]["memory"] == 1024
    job_ids = [result["single"]["id"]] + [job["id"] for job in result["mapped"]]
    assert result["jobs"] == job_ids and result["job_count"] == 4
    assert (result["single"]["args"], result["single"]["kwargs"]) == ([6], {"b": 7})
    assert [job["args"] for job in result["mapped"]] == [[1, 2], [3, 4], [5, 6]]
    assert result["fetched"]["id"] == result["single"]["id"]
    assert all(job["status"] in JOB_STATUSES for job in [result["single"], *result["mapped"]])
    assert sum(result["statistics"].values()) == 4
    assert result["by_name"] == [function_id] and result["listed"] == [function_id]
    assert result["memory"] == 2048
    assert isinstance(result["build_log"], str)
    assert result["after_job_delete"] == 3 and result["after_delete"] == 0

    headers = {"Authorization": f"Bearer {token}"}
    gone = requests.get(f"{service.base_url}/functions/{function_id}", headers=headers, timeout=30)
    assert gone.status_code == 404
