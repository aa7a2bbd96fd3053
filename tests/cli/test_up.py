"""`compute up`: serving, issuing tokens against it, what it says, refusing a taken port,
giving up on a crash loop, and stopping without leftovers."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
import redis

from compute.cli.broker_config import PASSWORD_FILE_NAME
from tests.capabilities import ROOT, requires
from tests.redis_databases import claimed_redis_url

from .conftest import (
    STOP_TIMEOUT_SECONDS,
    RunningUp,
    cli_environment,
    compute_cli,
    create_token,
    free_port,
    get,
    survivors,
)

# Five quick deaths of the worker, each after its start-up and the growing delay.
CRASH_LOOP_SECONDS = 150


def jwt_claims(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_up_serves_the_api_and_says_how_to_reach_it(service: RunningUp) -> None:
    assert get(f"{service.root_url}/healthz").status_code == 200
    log = service.log()
    assert f"Compute is running at {service.base_url}" in log
    assert f"export DESCARTESLABS_COMPUTE_URL={service.base_url}" in log
    assert f"export DESCARTESLABS_IAM_URL={service.root_url}/iam" in log
    assert "export DESCARTESLABS_TOKEN=$(compute token create --user NAME" in log


def test_up_runs_an_embedded_broker_on_loopback(service: RunningUp) -> None:
    broker = service.child("redis-server")

    listening = [c for c in broker.net_connections("tcp") if c.status == psutil.CONN_LISTEN]
    assert listening
    assert {connection.laddr.ip for connection in listening} == {"127.0.0.1"}
    assert (service.data_dir / "redis").is_dir()


def test_token_create_prints_a_jwt_the_api_accepts(service: RunningUp) -> None:
    token = create_token(service, "alice")

    claims = jwt_claims(token)
    assert claims["name"] == "alice"
    assert claims["sub"]
    assert claims["exp"] > time.time() + 3600
    assert get(f"{service.base_url}/functions", token).status_code == 200
    assert get(f"{service.base_url}/functions").status_code == 401


def test_token_create_names_one_user_per_name(service: RunningUp) -> None:
    first, again, other = (create_token(service, name) for name in ("bob", "bob", "carol"))

    assert jwt_claims(first)["sub"] == jwt_claims(again)["sub"]
    assert jwt_claims(first)["sub"] != jwt_claims(other)["sub"]


def test_sigterm_stops_every_process_cleanly(start_up: Callable[..., RunningUp]) -> None:
    running = start_up()
    tree = running.tree()
    assert len(tree) >= 4, tree  # broker, worker and its pool, gunicorn and its workers

    started = time.monotonic()
    assert running.terminate() == 0

    assert time.monotonic() - started < STOP_TIMEOUT_SECONDS
    assert survivors(tree) == []
    assert "Stopped." in running.log()


def test_a_crash_loop_stops_everything_with_the_reason(tmp_path: Path) -> None:
    # Every Python process of the service reads this; only the worker's dies of it, at
    # each start, while the API and the broker are fine.
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "sitecustomize.py").write_text(
        "import os\nimport sys\n\n"
        'if "celery" in sys.orig_argv:\n'
        '    sys.stderr.write("broken on purpose\\n")\n'
        "    os._exit(3)\n"
    )
    argv = compute_cli("up", "--port", str(free_port()), "--data-dir", str(tmp_path / "data"))
    env = cli_environment(PYTHONPATH=str(broken))

    # Run from tmp_path, to find every process of this `compute up` by its directory.
    result = subprocess.run(
        argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=CRASH_LOOP_SECONDS
    )

    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stderr
    assert "broken on purpose" in out
    assert (
        len(re.findall(r"^The worker process \(pid \d+\) exited with code 3 at ", out, re.M)) == 4
    )
    assert re.search(
        r"^compute up: the worker process died 5 times within 60 s, the last time it exited "
        r"with code 3; stopping\.$",
        out,
        re.M,
    )
    assert out.rstrip().endswith("Stopped.")
    assert processes_working_in(tmp_path) == []


def processes_working_in(directory: Path) -> list[psutil.Process]:
    """Processes whose current directory is `directory` or below it."""
    found = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if Path(process.cwd()).is_relative_to(directory):
                found.append(process)
    return found


def test_a_second_up_on_a_taken_port_refuses_at_once_and_starts_nothing(
    service: RunningUp,
) -> None:
    first_tree = {process.pid for process in service.tree()}
    # The same data directory and broker: had it started a worker, that worker would
    # have joined the first one's queues and database.
    argv = compute_cli("up", "--port", str(service.port), "--data-dir", str(service.data_dir))
    env = cli_environment(REDIS_URL=embedded_broker_url(service))
    started = time.monotonic()
    second = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    children: set[int] = set()
    while second.poll() is None:
        with contextlib.suppress(psutil.Error):
            children |= {child.pid for child in psutil.Process(second.pid).children(True)}
        time.sleep(0.01)
    out = second.stdout.read().decode() if second.stdout else ""

    assert second.returncode == 1, out
    assert time.monotonic() - started < 15
    assert f"port {service.port} on 127.0.0.1 is already served by another compute up" in out
    assert children == set()
    assert "Database migrated" not in out and "Worker" not in out
    assert {process.pid for process in service.tree()} == first_tree
    assert get(f"{service.root_url}/healthz").status_code == 200


def embedded_broker_url(service: RunningUp) -> str:
    found = re.search(r"Embedded broker at redis://127\.0\.0\.1:(\d+)/0", service.log())
    assert found, service.log()
    password = (service.data_dir / PASSWORD_FILE_NAME).read_text().strip()
    return f"redis://:{password}@127.0.0.1:{found.group(1)}/0"


def test_the_worker_runs_a_task_per_cpu_by_default(service: RunningUp) -> None:
    cpus = len(os.sched_getaffinity(0))
    worker = service.child("worker.celery_app")

    pool = [child for child in worker.children() if child.cmdline() == worker.cmdline()]
    assert len(pool) == cpus
    assert f"Worker running {cpus} tasks at once from compute.builds (pid {worker.pid})" in (
        service.log()
    )


def test_up_says_one_line_per_component_and_leaves_out_the_noise(service: RunningUp) -> None:
    log = service.log()

    assert re.search(r"^Database migrated to \w+ \(\d+ migrations applied\)\.$", log, re.M)
    assert re.search(
        r"^Embedded broker at redis://127\.0\.0\.1:\d+/0 \(pid \d+; password in .*\)$", log, re.M
    )
    assert re.search(
        r"^Worker running \d+ tasks at once from compute\.builds \(pid \d+\)$", log, re.M
    )
    assert re.search(rf"^API at {re.escape(service.root_url)} \(pid \d+\)$", log, re.M)
    for noise in (
        "overcommit_memory = 1",  # Redis's paragraph
        "Redis is starting",
        "superuser privileges",  # Celery's advice to a worker that is root by design
        "[tasks]",  # Celery's banner
        "INFO  [alembic",
        "Running upgrade",
        "Context impl",  # alembic, when the worker reads the schema revision
        "Booting worker",  # gunicorn's start-up notes
        "GET /healthz",
    ):
        assert noise not in log
    if Path("/proc/sys/vm/overcommit_memory").read_text().strip() != "1":
        assert "broker: Redis asks for memory overcommit; to allow it, run as root: " in log


def test_commands_on_a_current_schema_say_nothing_of_migrations(service: RunningUp) -> None:
    argv = compute_cli("token", "create", "--user", "quiet", "--data-dir", str(service.data_dir))

    result = subprocess.run(argv, capture_output=True, text=True, env=cli_environment())

    assert result.returncode == 0, result.stderr
    assert "alembic" not in result.stderr and "migrat" not in result.stderr


@pytest.fixture
def external_redis() -> str:
    with claimed_redis_url() as url:
        yield url


def test_up_uses_the_redis_url_broker(
    start_up: Callable[..., RunningUp], external_redis: str
) -> None:
    running = start_up(REDIS_URL=external_redis)

    names = {process.name() for process in running.tree()}
    assert "redis-server" not in names
    # The worker declared its queue binding in that Redis.
    client = redis.Redis.from_url(external_redis)
    assert list(client.scan_iter("_kombu.binding.*"))
    client.close()
    assert "Embedded broker" not in running.log()


@requires(ROOT, "root (jobs run as other uids only under root)")
def test_up_refuses_a_work_directory_its_jobs_cannot_reach(tmp_path: Path) -> None:
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    argv = compute_cli("up", "--port", str(free_port()), "--data-dir", str(tmp_path / "data"))
    env = cli_environment(COMPUTE_WORK_DIR=str(closed / "work"))

    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)

    assert result.returncode == 1
    assert "cannot pass through /tmp/pytest-of-root" in result.stderr, result.stderr
    assert "set COMPUTE_WORK_DIR to a folder they can reach" in result.stderr
    assert "Worker" not in result.stderr and "broker" not in result.stderr.lower()


def test_up_serves_a_data_directory_closed_to_jobs_from_a_work_directory_they_reach(
    service: RunningUp,
) -> None:
    # pytest's temporary directories are closed to other users (0700), as /root is: the
    # worker keeps its work directory elsewhere rather than fail every job.
    assert "jobs cannot pass through" not in service.log()
    assert json.loads((service.data_dir / "service.json").read_text())["url"] == service.base_url
