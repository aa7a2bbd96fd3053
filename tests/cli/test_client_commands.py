"""The client commands run as a user runs them: `compute ...` in a subprocess against the
real API, checked for their output and their exit codes (`compute.cli.exit_codes`)."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest

from compute import JobStatus
from compute.cli.exit_codes import ExitCode
from compute.server.blobstore import build_log_key
from tests.compute.outcomes import finish_job
from tests.conftest import create_function

from .conftest import cli_environment, compute_cli, free_port

if TYPE_CHECKING:
    from tests.conftest import ApiClient, ApiServer, TestUser

Cli = Callable[..., subprocess.CompletedProcess[str]]
TIMEOUT_SECONDS = 60


def run_compute(
    *args: str, url: str, token: str | None, config: Path, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """`compute *args` with the SDK pointed at `url` and `token` (no token: none at all)."""
    env = cli_environment(COMPUTE_URL=url, COMPUTE_CONFIG=str(config))
    for name in ("COMPUTE_TOKEN", "DESCARTESLABS_TOKEN", "DESCARTESLABS_COMPUTE_URL"):
        env.pop(name, None)
    if token is not None:
        env["COMPUTE_TOKEN"] = token
    return subprocess.run(
        compute_cli(*args),
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT_SECONDS,
    )


@pytest.fixture
def cli(api_server: ApiServer, user: TestUser, tmp_path: Path) -> Cli:
    """`cli(*args)` runs `compute` as `user` against the API under test."""

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        config = tmp_path / "absent.json"
        return run_compute(
            *args, url=api_server.base_url, token=user.token, config=config, stdin=stdin
        )

    return run


def submit(api: ApiClient, function_id: str, count: int) -> list[dict[str, Any]]:
    body = {"function_id": function_id, "bulk_args": [[n] for n in range(count)]}
    response = api.post("/jobs/bulk", json=body)
    assert response.status_code in (200, 201), response.text
    jobs: list[dict[str, Any]] = response.json()
    return jobs


def finish(api_server: ApiServer, job: dict[str, Any], **outcome: Any) -> None:
    record = SimpleNamespace(id=job["id"], function_id=job["function_id"])
    finish_job(api_server, record, **outcome)


def assert_fails(result: subprocess.CompletedProcess[str], code: ExitCode, *words: str) -> None:
    """`result` exited with `code`, saying so on one line of stderr naming `words`."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""
    line = result.stderr.strip()
    assert "\n" not in line and line.startswith("Error: "), result.stderr
    for word in words:
        assert word in line, line


def test_version_is_the_installed_packages() -> None:
    result = subprocess.run(
        compute_cli("--version"), capture_output=True, text=True, timeout=TIMEOUT_SECONDS
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"compute, version {importlib.metadata.version('opencompute')}"


def test_functions_list_shows_the_newest_first_in_human_units(cli: Cli, user: TestUser) -> None:
    names = ["first", "second", "third"]
    created = [create_function(user.api, name=name, memory=2048) for name in names]

    table = cli("functions", "list")
    limited = cli("functions", "list", "--limit", "2", "--json")

    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split() == ["ID", "NAME", "STATUS", "IMAGE", "CPUS", "MEMORY", "CREATION_DATE"]
    assert [row.split()[1] for row in rows] == ["third", "second", "first"]
    assert rows[0].split()[5] == "2048MB"
    assert rows[0].split()[6].endswith("Z") and "." not in rows[0].split()[6]
    assert [f["id"] for f in json.loads(limited.stdout)] == [created[2]["id"], created[1]["id"]]


def test_functions_get_counts_the_jobs(cli: Cli, api_server: ApiServer, user: TestUser) -> None:
    function = create_function(user.api, name="counted")
    jobs = submit(user.api, function["id"], 3)
    finish(api_server, jobs[0], status=JobStatus.FAILURE, error="ValueError: no")

    shown = cli("functions", "get", function["id"])
    as_json = json.loads(cli("functions", "get", function["id"], "--json").stdout)

    assert shown.returncode == 0, shown.stderr
    fields = dict(line.split(None, 1) for line in shown.stdout.splitlines())
    assert fields["NAME"] == "counted"
    assert "pending 2" in fields["JOB_STATISTICS"] and "failure 1" in fields["JOB_STATISTICS"]
    assert as_json["id"] == function["id"]
    assert as_json["job_statistics"]["pending"] == 2


def test_an_unknown_function_is_not_found_for_every_command(cli: Cli) -> None:
    for args in (
        ("functions", "get", "nosuchfunction"),
        ("functions", "build-log", "nosuchfunction"),
        ("functions", "delete", "nosuchfunction", "--yes"),
        ("jobs", "list", "--function", "nosuchfunction"),
        ("jobs", "rerun", "--function", "nosuchfunction"),
    ):
        assert_fails(cli(*args), ExitCode.NOT_FOUND, "function nosuchfunction not found")


def test_functions_build_log_prints_it(cli: Cli, api_server: ApiServer, user: TestUser) -> None:
    function = create_function(user.api)
    store = api_server.app.extensions["blobstore"]
    store.put(build_log_key(function["id"]), b"Collecting numpy\nInstalled numpy\n")

    result = cli("functions", "build-log", function["id"])

    assert result.returncode == 0, result.stderr
    assert result.stdout == "Collecting numpy\nInstalled numpy\n"


def test_functions_delete_asks_first(cli: Cli, user: TestUser) -> None:
    function = create_function(user.api, name="doomed")

    declined = cli("functions", "delete", function["id"], stdin="n\n")
    kept = user.api.get(f"/functions/{function['id']}").status_code
    accepted = cli("functions", "delete", function["id"], stdin="y\n")
    again = cli("functions", "delete", function["id"], "--yes")

    assert declined.returncode == ExitCode.ERROR and "Delete function doomed" in declined.stdout
    assert kept == 200
    assert accepted.returncode == 0, accepted.stderr
    assert user.api.get(f"/functions/{function['id']}").status_code == 404
    assert_fails(again, ExitCode.NOT_FOUND, f"function {function['id']} not found")


def test_functions_delete_yes_does_not_ask(cli: Cli, user: TestUser) -> None:
    function = create_function(user.api)

    result = cli("functions", "delete", function["id"], "--yes")

    assert result.returncode == 0, result.stderr
    assert user.api.get(f"/functions/{function['id']}").status_code == 404


def test_jobs_list_shows_the_newest_first_in_human_units(
    cli: Cli, api_server: ApiServer, user: TestUser
) -> None:
    function = create_function(user.api)
    jobs = submit(user.api, function["id"], 3)
    finish(api_server, jobs[2], runtime=0.19765073499979735)

    table = cli("jobs", "list", "--function", function["id"])
    limited = cli("jobs", "list", "--function", function["id"], "--limit", "2", "--json")

    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split()[:4] == ["ID", "FUNCTION_ID", "STATUS", "RUNTIME"]
    assert [row.split()[0] for row in rows] == [job["id"] for job in reversed(jobs)]
    assert rows[0].split()[3] == "0.20s"
    assert [job["args"] for job in json.loads(limited.stdout)] == [[2], [1]]


def test_jobs_get_shows_one_job(cli: Cli, api_server: ApiServer, user: TestUser) -> None:
    function = create_function(user.api)
    (job,) = submit(user.api, function["id"], 1)
    finish(api_server, job, status=JobStatus.FAILURE, runtime=2.5, error="ValueError: bad tile 17")

    shown = cli("jobs", "get", job["id"])
    as_json = json.loads(cli("jobs", "get", job["id"], "--json").stdout)

    assert shown.returncode == 0, shown.stderr
    fields = dict(line.split(None, 1) for line in shown.stdout.splitlines())
    assert fields["STATUS"] == "failure"
    assert fields["RUNTIME"] == "2.50s"
    assert fields["ERROR"] == "ValueError: bad tile 17"
    assert as_json["runtime"] == 2.5 and as_json["function_id"] == function["id"]
    assert_fails(cli("jobs", "get", "nosuchjob"), ExitCode.NOT_FOUND, "job nosuchjob not found")


def test_jobs_result_prints_the_value(cli: Cli, api_server: ApiServer, user: TestUser) -> None:
    function = create_function(user.api)
    done, raw, failed, pending = submit(user.api, function["id"], 4)
    finish(api_server, done, result=json.dumps({"area": [1, 2.5]}).encode())
    finish(api_server, raw, result=b"\x89PNG\x00\xff")
    finish(api_server, failed, status=JobStatus.FAILURE, error="ValueError: bad tile 17")

    value = cli("jobs", "result", done["id"])
    image = subprocess.run(
        compute_cli("jobs", "result", raw["id"]),
        capture_output=True,
        env=cli_environment(
            COMPUTE_URL=api_server.base_url, COMPUTE_TOKEN=user.token, COMPUTE_CONFIG="/nonexistent"
        ),
        timeout=TIMEOUT_SECONDS,
    )

    assert value.returncode == 0, value.stderr
    assert json.loads(value.stdout) == {"area": [1, 2.5]}
    assert image.returncode == 0 and image.stdout == b"\x89PNG\x00\xff"
    assert_fails(
        cli("jobs", "result", failed["id"]), ExitCode.ERROR, "failed: ValueError: bad tile 17"
    )
    assert_fails(cli("jobs", "result", pending["id"]), ExitCode.ERROR, "is pending", "no result")
    assert_fails(cli("jobs", "result", "nosuchjob"), ExitCode.NOT_FOUND, "job nosuchjob")


def test_jobs_rerun_resubmits_the_failed(cli: Cli, api_server: ApiServer, user: TestUser) -> None:
    function = create_function(user.api)
    ok, bad = submit(user.api, function["id"], 2)
    finish(api_server, ok)
    finish(api_server, bad, status=JobStatus.FAILURE, error="boom")

    result = cli("jobs", "rerun", "--function", function["id"], "--json")

    assert result.returncode == 0, result.stderr
    assert [job["id"] for job in json.loads(result.stdout)] == [bad["id"]]
    assert user.api.get(f"/jobs/{bad['id']}").json()["status"] == "pending"


def test_whoami_names_the_user(cli: Cli, user: TestUser) -> None:
    shown = cli("whoami")
    as_json = json.loads(cli("whoami", "--json").stdout)

    assert shown.returncode == 0, shown.stderr
    fields = dict(line.split(None, 1) for line in shown.stdout.splitlines())
    assert fields["USER"] == user.name and fields["ADMIN"] == "False"
    assert as_json["user"] == user.name and as_json["admin"] is False
    assert set(as_json["token"]) >= {"id", "created", "expires"}
    assert fields["TOKEN"] == as_json["token"]["id"]


def test_a_refused_token_exits_4(api_server: ApiServer, tmp_path: Path) -> None:
    for args in (("whoami",), ("functions", "list"), ("jobs", "get", "x")):
        result = run_compute(
            *args, url=api_server.base_url, token="not-a-token", config=tmp_path / "none.json"
        )
        assert_fails(result, ExitCode.NOT_AUTHORIZED, "refused the token", "401")


def test_no_token_exits_4(api_server: ApiServer, tmp_path: Path) -> None:
    result = run_compute(
        "functions", "list", url=api_server.base_url, token=None, config=tmp_path / "none.json"
    )

    assert_fails(result, ExitCode.NOT_AUTHORIZED, "No compute service token configured")


def test_an_unreachable_service_exits_5(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/compute/v1"

    result = run_compute("jobs", "list", url=url, token="t", config=tmp_path / "none.json")

    assert_fails(result, ExitCode.UNREACHABLE, "cannot reach the compute service")


def test_a_usage_error_exits_2(cli: Cli) -> None:
    assert cli("jobs", "list", "--status", "sleeping").returncode == ExitCode.USAGE
    assert cli("jobs", "rerun").returncode == ExitCode.USAGE


def test_login_saves_a_token_the_service_takes(
    api_server: ApiServer, user: TestUser, tmp_path: Path
) -> None:
    config = tmp_path / "config.json"
    login = ("login", "--url", api_server.base_url)

    wrong = run_compute(*login, "--token", "garbage", url="", token=None, config=config)
    unreachable_url = f"http://127.0.0.1:{free_port()}/compute/v1"
    down = run_compute(
        "login", "--url", unreachable_url, "--token", user.token, url="", token=None, config=config
    )
    no_api = run_compute(
        "login",
        "--url",
        api_server.root_url,
        "--token",
        user.token,
        url="",
        token=None,
        config=config,
    )
    assert not config.exists()
    right = run_compute(*login, url="", token=None, config=config, stdin=user.token + "\n")

    assert_fails(wrong, ExitCode.NOT_AUTHORIZED, "refused the token")
    assert_fails(down, ExitCode.UNREACHABLE, "cannot reach")
    assert_fails(no_api, ExitCode.ERROR, f"no compute service at {api_server.root_url}")
    assert right.returncode == 0, right.stderr
    assert f"as {user.name}" in right.stderr
    assert json.loads(config.read_text()) == {"url": api_server.base_url, "token": user.token}


def test_jobs_cancel_cancels_each_job_named(cli: Cli, user: TestUser) -> None:
    function = create_function(user.api)
    first, second, untouched = submit(user.api, function["id"], 3)

    result = cli("jobs", "cancel", first["id"], "nosuchjob", second["id"])

    assert result.returncode == ExitCode.NOT_FOUND, result.stderr
    assert result.stdout.splitlines() == [f"{first['id']}  canceled", f"{second['id']}  canceled"]
    assert result.stderr.splitlines() == [
        "Error: job nosuchjob not found",
        "Error: 1 of 3 jobs not found",
    ]
    canceled_too = {"X-Compute-Statuses": "canceled"}  # as our SDK reads statuses
    statuses = {
        job["id"]: user.api.get(f"/jobs/{job['id']}", headers=canceled_too).json()["status"]
        for job in (first, second, untouched)
    }
    assert statuses == {
        first["id"]: "canceled",
        second["id"]: "canceled",
        untouched["id"]: "pending",
    }


def test_functions_cancel_cancels_its_pending_jobs(cli: Cli, user: TestUser) -> None:
    function = create_function(user.api)
    submit(user.api, function["id"], 2)

    result = cli("functions", "cancel", function["id"], "--json")
    again = cli("functions", "cancel", function["id"])

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"canceled": 2, "stopping": 0}
    assert again.stdout.strip() == "Canceled 0 pending jobs; 0 running jobs are stopping."
    assert_fails(cli("functions", "cancel", "nosuchfunction"), ExitCode.NOT_FOUND, "nosuchfunction")


def test_jobs_logs_prints_the_log(cli: Cli, api_server: ApiServer, user: TestUser) -> None:
    function = create_function(user.api)
    (job,) = submit(user.api, function["id"], 1)
    lines = [("2026-01-01T00:00:00.000000Z", "tile 1"), ("2026-01-01T00:00:01.000000Z", "tile 2")]
    finish(api_server, job, log=lines)

    plain = cli("jobs", "logs", "--no-timestamps", job["id"])
    stamped = cli("jobs", "logs", job["id"])

    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.splitlines() == ["tile 1", "tile 2"]
    assert [line.split()[-2:] for line in stamped.stdout.splitlines()] == [
        ["tile", "1"],
        ["tile", "2"],
    ]
    assert_fails(cli("jobs", "logs", "nosuchjob"), ExitCode.NOT_FOUND, "job nosuchjob not found")


def test_jobs_logs_follow_waits_for_the_job_to_end(
    api_server: ApiServer, user: TestUser, tmp_path: Path
) -> None:
    from compute.server.extensions import db
    from tests.job_moves import move_job

    function = create_function(user.api)
    (job,) = submit(user.api, function["id"], 1)
    with api_server.app.app_context():
        move_job(db.session, job["id"], JobStatus.RUNNING)
    env = cli_environment(
        COMPUTE_URL=api_server.base_url,
        COMPUTE_TOKEN=user.token,
        COMPUTE_CONFIG=str(tmp_path / "none.json"),
    )
    follower = subprocess.Popen(
        compute_cli("jobs", "logs", "-f", "--no-timestamps", job["id"]),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            follower.wait(timeout=3)  # the job runs: it keeps following
        finish(api_server, job, log=[("2026-01-01T00:00:00.000000Z", "last words")])
        out, err = follower.communicate(timeout=TIMEOUT_SECONDS)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()

    assert follower.returncode == 0, err
    assert out.splitlines() == ["last words"]


def test_images_lists_what_live_workers_offer(tmp_path: Path) -> None:
    import redis

    from compute.server.dispatch import WORKERS_KEY, worker_key
    from compute.server.presence import OfferedImage, WorkerPresence
    from tests.conftest import running_api
    from tests.redis_databases import claimed_redis_url

    with claimed_redis_url() as url, running_api("sqlite", tmp_path, {"REDIS_URL": url}) as server:
        broker = redis.Redis.from_url(url)
        for node in ("celery@a", "celery@b"):
            images = [OfferedImage("python3.11:latest", "3.11.7")]
            if node == "celery@b":
                images.append(OfferedImage("python3.12:latest", "3.12.1"))
            presence = WorkerPresence(node, "host", 1, 4, 0, tuple(images))
            broker.set(worker_key(node), presence.to_json(), ex=60)
            broker.sadd(WORKERS_KEY, node)
        broker.close()
        token = server.token("imager")
        config = tmp_path / "none.json"
        table = run_compute("images", url=server.base_url, token=token, config=config)
        as_json = run_compute("images", "--json", url=server.base_url, token=token, config=config)

    assert table.returncode == 0, table.stderr
    assert [line.split() for line in table.stdout.splitlines()] == [
        ["IMAGE", "PYTHON", "WORKERS"],
        ["python3.11:latest", "3.11.7", "2"],
        ["python3.12:latest", "3.12.1", "1"],
    ]
    assert json.loads(as_json.stdout)[1] == {
        "image": "python3.12:latest",
        "python": "3.12.1",
        "workers": 1,
    }
