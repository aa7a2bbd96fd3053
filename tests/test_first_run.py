"""The README's first run, as a newcomer does it: verbatim, from a fresh copy of the project.

The copy sits under a directory closed to other users (as root's home is), the project is
installed with the README's own command into a new virtualenv from the package index this
machine reaches (through its TLS setup), `compute up` runs from the copy, the token is
saved from another directory, and the README's first function, numpy and all, prints 9.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from tests.capabilities import ROOT, requires
from tests.cli.conftest import ISOLATED_VARIABLES, free_port, survivors
from tests.project_copy import PROJECT, copy_of_the_project

README = PROJECT / "README.md"
INSTALL_TIMEOUT_SECONDS = 900
READY_TIMEOUT_SECONDS = 120
JOB_TIMEOUT_SECONDS = 600


def readme_block(heading: str, language: str) -> str:
    """The first ```language block of the README section under `heading`."""
    text = README.read_text()
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(rf"```{language}\n(.*?)```", section, re.DOTALL)
    assert match, f"no {language} block under {heading!r} in the README"
    return match.group(1)


def readme_commands(heading: str) -> list[str]:
    return [line for line in readme_block(heading, "sh").splitlines() if line.strip()]


def newcomer_environment(home: Path, venv: Path) -> dict[str, str]:
    """A shell with the project's virtualenv active and nothing of this test run's service."""
    env = {key: value for key, value in os.environ.items() if key not in ISOLATED_VARIABLES}
    env.pop("VIRTUAL_ENV", None)
    env.update(
        PATH=f"{venv / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}",
        VIRTUAL_ENV=str(venv),
        COMPUTE_CONFIG=str(home / "config.json"),
        # The newcomer's own data directory, not this machine's /var/lib/compute, placed
        # under the closed directory too: the service must cope with that.
        COMPUTE_DATA_DIR=str(home / "data"),
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture
def closed_home() -> Iterator[Path]:
    home = Path(tempfile.mkdtemp(prefix="newcomer-"))
    home.chmod(0o700)
    try:
        yield home
    finally:
        for root, names, _ in os.walk(home):  # built environments are read-only
            for name in names:
                os.chmod(os.path.join(root, name), 0o700)
        shutil.rmtree(home, ignore_errors=True)


@requires(ROOT, "root (the newcomer of this test is root)")
def test_the_readme_first_example_prints_9(closed_home: Path) -> None:
    clone = closed_home / "opencompute"
    copy_of_the_project(clone)
    venv = closed_home / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = newcomer_environment(closed_home, venv)
    install, up = readme_commands("Set-up: two commands")[0].split(" && ")
    assert install == 'pip install -e ".[server]"' and up == "compute up"
    port = free_port()
    subprocess.run(
        shlex.split(install), cwd=clone, env=env, check=True, timeout=INSTALL_TIMEOUT_SECONDS
    )

    log_path = closed_home / "up.log"
    with log_path.open("wb") as log:
        service = subprocess.Popen(
            [*shlex.split(up), "--port", str(port)],
            cwd=clone,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: "Compute is running at" in log_path.read_text(), service, log_path)
        elsewhere = closed_home / "elsewhere"
        elsewhere.mkdir()
        (token_command,) = readme_commands("A first function")
        subprocess.run(shlex.split(token_command), cwd=elsewhere, env=env, check=True, timeout=120)
        script = elsewhere / "first.py"
        script.write_text(readme_block("A first function", "python"))

        ran = subprocess.run(
            [str(venv / "bin" / "python"), str(script)],
            cwd=elsewhere,
            env=env,
            capture_output=True,
            text=True,
            timeout=JOB_TIMEOUT_SECONDS,
        )

        assert ran.returncode == 0, f"{ran.stdout}\n{ran.stderr}\n{log_path.read_text()}"
        assert ran.stdout.strip() == "9"
        assert not (elsewhere / ".compute").exists() and not (clone / ".compute").exists()
    finally:
        stop(service)


def wait_for(
    condition: Callable[[], bool], service: subprocess.Popen[bytes], log_path: Path
) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if condition():
            return
        if service.poll() is not None:
            break
        time.sleep(0.2)
    raise AssertionError(f"compute up did not start:\n{log_path.read_text()}")


def stop(service: subprocess.Popen[bytes]) -> None:
    if service.poll() is not None:
        return
    tree = psutil.Process(service.pid).children(recursive=True)
    service.send_signal(signal.SIGTERM)
    try:
        service.wait(timeout=30)
    except subprocess.TimeoutExpired:
        service.kill()
        service.wait()
    for leftover in survivors(tree):
        leftover.kill()
