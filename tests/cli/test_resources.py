"""`compute functions list` and `compute jobs list` against the real API, in process."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner, Result

from compute import JobStatus
from compute.cli import main
from tests.compute.outcomes import finish_job
from tests.conftest import create_function

if TYPE_CHECKING:
    from tests.conftest import ApiServer, TestUser


@pytest.fixture
def cli(api_server: ApiServer, user: TestUser, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("COMPUTE_URL", api_server.base_url)
    monkeypatch.setenv("COMPUTE_TOKEN", user.token)
    monkeypatch.setenv("COMPUTE_CONFIG", str(tmp_path / "absent.json"))

    def run(*args: str) -> Result:
        return CliRunner().invoke(main, list(args))

    return run


def test_functions_list_prints_a_table(cli, user: TestUser) -> None:
    function = create_function(user.api, name="squares")

    result = cli("functions", "list")

    assert result.exit_code == 0, result.output
    header, row = result.stdout.splitlines()
    assert header.split()[:3] == ["ID", "NAME", "STATUS"]
    assert row.split()[:3] == [function["id"], "squares", "awaiting_bundle"]


def test_jobs_list_filters_by_function_and_pages(cli, user: TestUser) -> None:
    mine = create_function(user.api)
    other = create_function(user.api)
    for function, count in ((mine, 3), (other, 1)):
        body = {"function_id": function["id"], "bulk_args": [[n] for n in range(count)]}
        assert user.api.post("/jobs/bulk", json=body).status_code in (200, 201)

    listed = json.loads(cli("jobs", "list", "--function", mine["id"], "--json").stdout)
    limited = json.loads(cli("jobs", "list", "--limit", "2", "--json").stdout)

    assert [job["args"] for job in listed] == [[2], [1], [0]]  # newest first
    assert {job["function_id"] for job in listed} == {mine["id"]}
    assert len(limited) == 2


def test_jobs_list_filters_by_status(cli, user: TestUser) -> None:
    function = create_function(user.api)
    user.api.post("/jobs", json={"function_id": function["id"], "args": [1]})

    pending = cli("jobs", "list", "--function", function["id"], "--status", "pending", "--json")
    done = cli("jobs", "list", "--function", function["id"], "--status", "success", "--json")

    assert len(json.loads(pending.stdout)) == 1
    assert json.loads(done.stdout) == []


def test_jobs_list_shows_why_jobs_failed(cli, api_server: ApiServer, user: TestUser) -> None:
    function = create_function(user.api)
    body = {"function_id": function["id"], "bulk_args": [[n] for n in range(4)]}
    jobs = user.api.post("/jobs/bulk", json=body).json()
    outcomes = [
        (JobStatus.SUCCESS, None),
        (JobStatus.FAILURE, "ValueError: bad tile 17"),
        (JobStatus.TIMEOUT, "exceeded its 2 s timeout"),
        (JobStatus.FAILURE, "KeyError: " + "k" * 300),
    ]
    for job, (status, error) in zip(jobs, outcomes):
        record = SimpleNamespace(id=job["id"], function_id=function["id"])
        finish_job(api_server, record, status=status, result=b"1", error=error)

    result = cli("jobs", "list", "--function", function["id"])

    assert result.exit_code == 0, result.output
    header, *rows = result.stdout.splitlines()
    rows.reverse()  # listed newest first
    assert header.split()[-1] == "REASON"
    assert rows[0].endswith(" -")
    assert rows[1].endswith(" ValueError: bad tile 17")
    assert rows[2].endswith(" exceeded its 2 s timeout")
    assert rows[3].endswith("k…") and len(rows[3].split("KeyError: ")[1]) == 100 - 10
    listed = json.loads(cli("jobs", "list", "--function", function["id"], "--json").stdout)
    assert [job["error"] for job in reversed(listed)] == [error for _, error in outcomes]


def test_a_rejected_token_is_a_clear_error(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPUTE_TOKEN", "not-a-token")

    result = cli("functions", "list")

    assert result.exit_code == 4  # ExitCode.NOT_AUTHORIZED
    assert "401" in result.stderr
