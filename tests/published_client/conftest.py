"""The published `descarteslabs==2.0.3` client, run unmodified against our API.

The client needs Python 3.10, so it lives in its own venv, built once and cached across
runs. Scenario scripts under `scenarios/` run in that venv as subprocesses, pointed at the
API under test; everything they do stays on 127.0.0.1.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.capabilities import missing_capability

CLIENT_REQUIREMENTS = ("descarteslabs==2.0.3", "setuptools<82")
CLIENT_VERSION = "2.0.3"
SCENARIOS = Path(__file__).parent / "scenarios"
REPO_ROOT = Path(__file__).parents[2]
INSTALL_TIMEOUT_SECONDS = 900
SCENARIO_TIMEOUT_SECONDS = 180


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "compute-tests"


def python_version(executable: str) -> tuple[int, int] | None:
    """(major, minor) of `executable`, or None if it does not run (e.g. a dangling shim)."""
    try:
        result = subprocess.run(
            [executable, "-c", "import sys; print(*sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    major, minor = result.stdout.split()
    return int(major), int(minor)


def find_python310() -> tuple[str | None, list[str]]:
    """A working Python 3.10, and the candidates tried (to name when none works)."""
    candidates: list[str] = []
    explicit = os.environ.get("COMPUTE_TEST_PYTHON310")
    if explicit:
        candidates.append(explicit)
    on_path = shutil.which("python3.10")
    if on_path:
        candidates.append(on_path)
    pyenv = Path.home() / ".pyenv" / "versions"
    candidates.extend(str(path) for path in sorted(pyenv.glob("3.10*/bin/python"), reverse=True))
    for candidate in candidates:
        if python_version(candidate) == (3, 10):
            return candidate, candidates
    return None, candidates


def client_importable(venv_python: Path) -> bool:
    if not venv_python.exists():
        return False
    check = (
        "import descarteslabs, descarteslabs.compute; "
        f"assert descarteslabs.__version__ == {CLIENT_VERSION!r}, descarteslabs.__version__"
    )
    result = subprocess.run(
        [str(venv_python), "-W", "ignore", "-c", check], capture_output=True, timeout=120
    )
    return result.returncode == 0


def run_checked(command: list[str], what: str) -> None:
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_SECONDS
    )
    if result.returncode != 0:
        pytest.fail(
            f"{what} failed ({' '.join(command)}):\n{result.stdout}\n{result.stderr}",
            pytrace=False,
        )


def build_client_venv(python310: str, venv: Path) -> Path:
    """Create `venv` with the published client installed, unless it already works."""
    venv_python = venv / "bin" / "python"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel sessions build it once
        if client_importable(venv_python):
            return venv_python
        shutil.rmtree(venv, ignore_errors=True)
        uv = REPO_ROOT / ".venv" / "bin" / "uv"
        if uv.exists():
            run_checked([python310, "-m", "venv", "--without-pip", str(venv)], "creating the venv")
            install = [str(uv), "pip", "install", "--python", str(venv_python)]
        else:
            run_checked([python310, "-m", "venv", str(venv)], "creating the venv")
            install = [str(venv_python), "-m", "pip", "install", "--disable-pip-version-check"]
        run_checked([*install, *CLIENT_REQUIREMENTS], "installing the published client")
        if not client_importable(venv_python):
            pytest.fail(f"descarteslabs=={CLIENT_VERSION} is not importable in {venv}")
    return venv_python


@pytest.fixture(scope="session")
def client_python() -> Path:
    """The Python of a venv holding `descarteslabs==2.0.3`; needs a Python 3.10."""
    python310, tried = find_python310()
    if python310 is None:
        missing_capability(
            "Python 3.10, for the published descarteslabs==2.0.3 client "
            f"(set COMPUTE_TEST_PYTHON310; tried: {', '.join(tried) or 'nothing'})"
        )
    return build_client_venv(python310, cache_root() / f"dl-{CLIENT_VERSION}-py310")


class ScenarioFailed(AssertionError):
    pass


@dataclass
class ScenarioRun:
    returncode: int
    stdout: str
    stderr: str
    result: Any


def client_environment(base_url: str, root_url: str, token: str, home: Path) -> dict[str, str]:
    """Only what the client needs: nothing from the developer's shell leaks in.

    With only a token (no client id or refresh token) the client never calls IAM unless
    the token is within 500 s of expiry; IAM and the token cache point at local places
    anyway, so a mistake fails fast on 127.0.0.1 instead of reaching the network.
    """
    home.mkdir(parents=True, exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "TZ": "UTC",
        "NO_PROXY": "*",
        "DESCARTESLABS_ENV": "aws-production",
        "DESCARTESLABS_COMPUTE_URL": base_url,
        "DESCARTESLABS_IAM_URL": f"{root_url}/iam",
        "DESCARTESLABS_TOKEN": token,
        "DESCARTESLABS_TOKEN_INFO_PATH": str(home / "no-token-info.json"),
        "DESCARTESLABS_NO_JWT_CACHE": "true",
        "PYTHONWARNINGS": "ignore",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


@pytest.fixture
def run_scenario(
    client_python: Path, api_server: Any, tmp_path: Path
) -> Callable[..., ScenarioRun]:
    """`run_scenario(script, case, token, expect_failure=False, **inputs)`.

    Runs `scenarios/<script>.py <case>` with the published client against `api_server`
    as the user holding `token`. By default the case must succeed and its JSON result is
    returned in `.result`; with `expect_failure=True` it must exit non-zero.
    """
    return make_runner(client_python, api_server.base_url, api_server.root_url, tmp_path)


def make_runner(
    client_python: Path, base_url: str, root_url: str, tmp_path: Path
) -> Callable[..., ScenarioRun]:
    runs = iter(range(1_000_000))

    def run(
        script: str, case: str, token: str, expect_failure: bool = False, **inputs: Any
    ) -> ScenarioRun:
        number = next(runs)
        output = tmp_path / f"scenario-{number}.json"
        env = client_environment(base_url, root_url, token, tmp_path / "home")
        env["SCENARIO_INPUT"] = json.dumps(inputs)
        env["SCENARIO_OUTPUT"] = str(output)
        completed = subprocess.run(
            [str(client_python), str(SCENARIOS / f"{script}.py"), case],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=SCENARIO_TIMEOUT_SECONDS,
        )
        result = json.loads(output.read_text()) if output.exists() else None
        run = ScenarioRun(completed.returncode, completed.stdout, completed.stderr, result)
        where = f"scenario {script}.py {case}"
        if expect_failure and completed.returncode == 0:
            raise ScenarioFailed(f"{where} was expected to fail but exited 0:\n{completed.stdout}")
        if not expect_failure and completed.returncode != 0:
            raise ScenarioFailed(
                f"{where} exited {completed.returncode}:\n"
                f"--- stdout\n{completed.stdout}\n--- stderr\n{completed.stderr}"
            )
        return run

    return run
