"""The Procfile, docker-compose.yml, Dockerfile and README describe a stack that can start.

No container engine runs here, so these tests read the files: the services agree on the
blob store, database and broker, and every command names code that imports.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from compute.cli.commands import worker_queues

ROOT = Path(__file__).resolve().parent.parent
BLOB_URL = "file:///data/blobs"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def procfile() -> dict[str, list[str]]:
    entries = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, command = line.partition(":")
            entries[name.strip()] = shlex.split(command)
    return entries


def code_services(compose: dict) -> dict[str, dict]:
    """The services built from our Dockerfile, i.e. those that run our code."""
    return {name: service for name, service in compose["services"].items() if "build" in service}


def import_in_subprocess(module: str, attribute: str, tmp_path: Path) -> None:
    """Import `module` and read `attribute` in a fresh interpreter with a minimal config."""
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env.update(COMPUTE_DATA_DIR=str(tmp_path / "data"), REDIS_URL="redis://127.0.0.1:6379/0")
    code = "import importlib, sys; getattr(importlib.import_module(sys.argv[1]), sys.argv[2])"
    result = subprocess.run(
        [sys.executable, "-c", code, module, attribute],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def option_value(argv: list[str], name: str) -> str:
    for index, arg in enumerate(argv):
        if arg == name:
            return argv[index + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    raise AssertionError(f"{name} missing from {argv}")


def test_every_code_service_shares_the_blob_volume(compose: dict) -> None:
    services = code_services(compose)
    assert {"api", "worker"} <= set(services)
    mounts = {name: set(service["volumes"]) for name, service in services.items()}
    shared = set.intersection(*mounts.values())
    named = [mount for mount in shared if mount.split(":")[0] in compose["volumes"]]
    assert len(named) == 1, mounts
    mount_path = named[0].split(":")[1]
    for service in services.values():
        blob_url = service["environment"]["COMPUTE_BLOB_URL"]
        assert blob_url == BLOB_URL
        assert urlparse(blob_url).path.startswith(mount_path.rstrip("/") + "/")


def test_database_and_broker_urls_name_their_services(compose: dict) -> None:
    for service in code_services(compose).values():
        environment = service["environment"]
        assert urlparse(environment["DATABASE_URL"]).hostname == "postgres"
        assert urlparse(environment["DATABASE_URL"]).scheme.startswith("postgres")
        assert urlparse(environment["REDIS_URL"]).hostname == "redis"
    assert {"postgres", "redis"} <= set(compose["services"])


def test_api_runs_gunicorn_on_the_wsgi_app(compose: dict) -> None:
    command = compose["services"]["api"]["command"]
    assert command[0] == "gunicorn"
    assert command[-1] == "api.wsgi:app"


def test_worker_runs_celery_on_the_queues_compute_up_uses(
    compose: dict, procfile: dict[str, list[str]]
) -> None:
    for command in (compose["services"]["worker"]["command"], procfile["worker"]):
        assert command[:3] == ["celery", "-A", "worker.celery_app"]
        assert option_value(command, "-Q").split(",") == worker_queues()


def test_compose_builds_from_the_dockerfile(compose: dict) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for service in code_services(compose).values():
        assert service["build"] == "."
    for package in ("compute", "api", "worker"):
        assert f"COPY {package} {package}" in dockerfile


def web_steps(procfile: dict[str, list[str]]) -> list[list[str]]:
    """The commands `web` chains with `&&`."""
    steps: list[list[str]] = [[]]
    for word in procfile["web"]:
        if word == "&&":
            steps.append([])
        else:
            steps[-1].append(word)
    return steps


def test_procfile_web_serves_an_importable_app(
    procfile: dict[str, list[str]], tmp_path: Path
) -> None:
    command = web_steps(procfile)[-1]
    # exec: the runner's signals reach gunicorn itself, not a shell waiting on it.
    assert command[:2] == ["exec", "gunicorn"]
    assert "$PORT" in option_value(command, "--bind")
    module, attribute = command[-1].split(":")
    import_in_subprocess(module, attribute, tmp_path)


def test_procfile_worker_app_imports(procfile: dict[str, list[str]], tmp_path: Path) -> None:
    import_in_subprocess(option_value(procfile["worker"], "-A"), "app", tmp_path)


def test_procfile_runs_no_one_off_process(procfile: dict[str, list[str]]) -> None:
    # honcho and foreman stop every process when one exits: a `release` entry would stop
    # the service as soon as the migrations were done.
    assert set(procfile) == {"web", "worker"}


def test_procfile_web_migrates_the_database_first(
    procfile: dict[str, list[str]], tmp_path: Path
) -> None:
    migrate = web_steps(procfile)[0]
    assert migrate == ["compute", "db", "upgrade"]
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env["COMPUTE_DATA_DIR"] = str(tmp_path / "data")
    argv = [sys.executable, "-m", "compute.cli", *migrate[1:]]
    result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "compute.db").exists()


def test_readme_set_up_is_two_commands_the_second_running_ci() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```sh\n(.*?)\n```", section, flags=re.S)
    assert len(commands) == 2, commands
    assert "\n" not in commands[0] and "compute up" in commands[0]
    assert commands[1] == "bash .ci/run"
    assert (ROOT / ".ci" / "run").exists()


def test_the_compose_worker_contains_jobs_as_compute_up_does(compose: dict) -> None:
    """Root in its container with the capabilities containment needs, as `compute up` is
    on a host: jobs switch to uids of their own, mounts and nftables rules are allowed."""
    services = code_services(compose)
    worker = services["worker"]
    assert worker["user"] == "0:0"
    assert {"SYS_ADMIN", "NET_ADMIN"} <= set(worker["cap_add"])
    assert "apparmor:unconfined" in worker["security_opt"]
    # The blobs are private to whoever writes them: every service runs as one user.
    assert {service["user"] for service in services.values()} == {"0:0"}


def test_the_image_installs_what_the_network_policy_needs() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "nftables" in dockerfile


def test_the_image_installs_the_service() -> None:
    # `pip install .` alone is the SDK: no gunicorn, Celery or database driver to run.
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'pip install ".[server]"' in dockerfile
