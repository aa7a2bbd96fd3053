"""`pip install opencompute` alone is the SDK and the client CLI, without the service.

A machine that only submits work installs no Flask, Celery or SQLAlchemy; the service
commands there say which extra they need instead of failing with a traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from api import API_PREFIX
from compute.cli.server_extra import INSTALL_SERVER
from compute.cli.service import API_PREFIX as CLIENT_API_PREFIX
from tests.capabilities import missing_capability
from tests.project_copy import copy_of_the_project

SERVER_MODULES = ("flask", "celery", "sqlalchemy", "redis", "psutil", "boto3")
INSTALL_TIMEOUT_SECONDS = 300
COMMAND_TIMEOUT_SECONDS = 60
# Settings of the developer's shell that would point pip, uv or Python elsewhere.
ISOLATED_VARIABLES = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "UV_PROJECT_ENVIRONMENT")


def clean_environment() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key not in ISOLATED_VARIABLES}


def run(argv: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        cwd=cwd,
        env=clean_environment(),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
    )


def test_importing_the_sdk_and_the_cli_loads_no_server_library(tmp_path: Path) -> None:
    loaded = (
        "import compute, compute.cli, sys; "
        f"print(sorted({set(SERVER_MODULES)!r} & set(sys.modules)))"
    )

    result = run([sys.executable, "-c", loaded], tmp_path, COMMAND_TIMEOUT_SECONDS)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_client_names_the_apis_prefix() -> None:
    # The client restates it so as not to import the API, which needs Flask.
    assert CLIENT_API_PREFIX == API_PREFIX


@pytest.fixture(scope="module")
def sdk_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A new virtualenv with the project installed from a copy, without any extra."""
    uv = Path(sys.executable).parent / "uv"
    if not uv.exists():
        missing_capability(f"uv beside the test interpreter ({uv})")
    root = tmp_path_factory.mktemp("sdk-only")
    project = root / "opencompute"
    copy_of_the_project(project)
    venv = root / "venv"
    created = run([sys.executable, "-m", "venv", "--without-pip", str(venv)], root, 120)
    assert created.returncode == 0, created.stderr
    python = venv / "bin" / "python"
    install = [str(uv), "pip", "install", "--quiet", "--python", str(python), str(project)]
    installed = run(install, root, INSTALL_TIMEOUT_SECONDS)
    assert installed.returncode == 0, installed.stderr
    yield venv


def test_the_sdk_installs_without_the_service(sdk_only: Path, tmp_path: Path) -> None:
    probe = (
        "import importlib.util, compute; "
        "print(compute.__file__); "
        "print(hasattr(compute, 'Function')); "
        f"print([m for m in {SERVER_MODULES!r} if importlib.util.find_spec(m) is not None])"
    )

    result = run([str(sdk_only / "bin" / "python"), "-c", probe], tmp_path, 60)

    assert result.returncode == 0, result.stderr
    location, has_function, installed = result.stdout.splitlines()
    assert Path(location).is_relative_to(sdk_only)
    assert has_function == "True"
    assert installed == "[]"


def test_the_client_cli_runs_without_the_service(sdk_only: Path, tmp_path: Path) -> None:
    compute = str(sdk_only / "bin" / "compute")

    result = run([compute, "--help"], tmp_path, COMMAND_TIMEOUT_SECONDS)
    helps = [
        run([compute, *command, "--help"], tmp_path, COMMAND_TIMEOUT_SECONDS)
        for command in (["functions", "list"], ["jobs", "list"], ["login"], ["up"])
    ]

    assert result.returncode == 0, result.stderr
    commands = result.stdout.split("Commands:", 1)[1].split()
    assert {"functions", "jobs", "login", "up"} <= set(commands)
    for shown in helps:
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.startswith("Usage: compute "), shown.stdout


@pytest.mark.parametrize(
    "command",
    [["up"], ["db", "upgrade"], ["token", "create", "--user", "ada"]],
    ids=["up", "db", "token"],
)
def test_a_service_command_names_the_extra_it_needs(
    sdk_only: Path, tmp_path: Path, command: list[str]
) -> None:
    compute = str(sdk_only / "bin" / "compute")
    argv = [compute, *command, "--data-dir", str(tmp_path / "data")]

    result = run(argv, tmp_path, COMMAND_TIMEOUT_SECONDS)

    assert result.returncode != 0
    assert "opencompute[server]" in result.stderr
    assert INSTALL_SERVER in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr  # one line, no traceback
    assert not (tmp_path / "data").exists()
