"""Builds run unprivileged: an sdist's build backend is code the function's owner chose.

Each build leases a uid of its own and runs in a mount namespace with a private /tmp and
no service's socket; what it made becomes root's and read-only before any job uses it.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.capabilities import ROOT, requires
from tests.worker.execution.conftest import job_python
from worker.build import InstallerOptions
from worker.build.environments import EnvironmentCache
from worker.build.errors import EnvironmentBuildError
from worker.build.images import InterpreterRegistry
from worker.execution.job_user import JobIdentities
from worker.execution.network import apply_network_policy, remove_network_policy

pytestmark = requires(ROOT, "root (only root switches a build's uid)")

FIRST_UID = 330_000
SNOOP_BACKEND = """
import json, os, socket

def _snoop(*_args, **_kwargs):
    seen = {{"uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups()}}
    try:
        with open({secret!r}) as handle:
            seen["secret"] = handle.read()
    except OSError as error:
        seen["secret"] = error.strerror
    client = socket.socket(socket.AF_UNIX)
    try:
        client.connect({socket_path!r})
        seen["socket"] = "connected"
    except OSError as error:
        seen["socket"] = error.strerror
    seen["tmp"] = sorted(os.listdir("/tmp"))
    tcp = socket.socket()
    tcp.settimeout(5)
    try:
        tcp.connect(("127.0.0.1", {port}))
        seen["loopback"] = "connected"
    except OSError as error:
        seen["loopback"] = error.strerror
    raise RuntimeError("SNOOP " + json.dumps(seen) + " END")

get_requires_for_build_wheel = _snoop
build_wheel = _snoop
"""


@pytest.fixture
def reachable(tmp_path: Path) -> Iterator[Path]:
    """A directory outside /tmp that other uids may pass through (pytest's is closed)."""
    directory = Path("/var/lib/compute-tests") / f"build-{tmp_path.name}"
    directory.mkdir(parents=True, mode=0o711)
    directory.chmod(0o711)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def identities(tmp_path: Path) -> Iterator[JobIdentities]:
    """Build uids of the test's own, under the network policy a worker gives builds."""
    policy = apply_network_policy(FIRST_UID, 4, "outbound", who="build")
    yield JobIdentities(FIRST_UID, 4, switches=True, lock_dir=tmp_path / "locks")
    if policy.enforced:
        remove_network_policy(FIRST_UID, 4)


@pytest.fixture
def loopback_service() -> Iterator[int]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]


@pytest.fixture
def interpreter():  # noqa: ANN201 - an images.Interpreter
    python = Path(job_python())
    registry = InterpreterRegistry([python], search_path=False, runs_as=(FIRST_UID, FIRST_UID))
    return next(iter(registry.interpreters().values()))


def _sdist(directory: Path, name: str, backend: str) -> None:
    files = {
        f"{name}-1.0/pyproject.toml": (
            f'[project]\nname = "{name}"\nversion = "1.0"\n\n'
            '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n'
        ),
        f"{name}-1.0/backend.py": backend,
        f"{name}-1.0/PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
    }
    with tarfile.open(directory / f"{name}-1.0.tar.gz", "w:gz") as archive:
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(path)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


def test_a_build_backend_runs_as_a_uid_of_its_own_and_sees_no_secret(
    reachable: Path,
    identities: JobIdentities,
    interpreter,  # noqa: ANN001 - an images.Interpreter
    loopback_service: int,
) -> None:
    secret = reachable / "secret.key"
    secret.write_text("the signing key")
    secret.chmod(0o600)
    sockets = [path for path in Path("/var/run/postgresql").glob(".s.PGSQL.*")]
    socket_path = str(sockets[0]) if sockets else str(reachable / "no.sock")
    wheelhouse = reachable / "wheelhouse"
    wheelhouse.mkdir(mode=0o755)
    _sdist(
        wheelhouse,
        "snooppkg",
        SNOOP_BACKEND.format(secret=str(secret), socket_path=socket_path, port=loopback_service),
    )
    options = InstallerOptions(wheelhouse=wheelhouse, timeout_seconds=120, builds_as=identities)
    cache = EnvironmentCache(reachable / "envs", options)
    with pytest.raises(EnvironmentBuildError) as failed:
        cache.get(interpreter, ["snooppkg"])
    log = failed.value.log
    assert "RuntimeError: SNOOP " in log, log
    seen = json.loads(log.split("RuntimeError: SNOOP ", 1)[1].split(" END", 1)[0])
    assert FIRST_UID <= seen["uid"] < FIRST_UID + 4
    assert (seen["gid"], seen["groups"]) == (seen["uid"], [])
    assert seen["secret"] == "Permission denied"
    assert seen["socket"] != "connected"
    if shutil.which("nft"):  # the worker says at start when it cannot filter
        assert seen["loopback"] != "connected"
    # Its /tmp is its own: nothing of the host's (pytest's directories, other builds').
    assert not any(name.startswith("pytest-of") for name in seen["tmp"]), seen["tmp"]
    assert [path.name for path in (reachable / "envs").iterdir() if path.name != ".locks"] == []


def shared_wheelhouse(reachable: Path, wheelhouse: Path) -> Path:
    """A copy of the test wheelhouse that build uids can read."""
    shared = reachable / "wheelhouse"
    shutil.copytree(wheelhouse, shared)
    for path in (shared, *shared.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return shared


def tinypkg_value(python: Path) -> str:
    """What the environment's tinypkg says its value is."""
    shown = subprocess.run(
        [str(python), "-c", "import tinypkg; print(tinypkg.VALUE)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return shown.strip()


def test_an_unprivileged_build_leaves_an_environment_of_root_that_nobody_can_change(
    reachable: Path,
    identities: JobIdentities,
    interpreter,
    wheelhouse: Path,  # noqa: ANN001
) -> None:
    shared = shared_wheelhouse(reachable, wheelhouse)
    options = InstallerOptions(wheelhouse=shared, timeout_seconds=120, builds_as=identities)
    environment = EnvironmentCache(reachable / "envs", options).get(interpreter, ["tinypkg"])
    owners = {
        os.lstat(os.path.join(directory, name)).st_uid
        for directory, names, files in os.walk(environment.path)
        for name in (*names, *files)
    }
    assert owners == {0}
    writable = [
        os.path.join(directory, name)
        for directory, names, files in os.walk(environment.path)
        for name in (*names, *files)
        if not os.path.islink(os.path.join(directory, name))
        and os.lstat(os.path.join(directory, name)).st_mode & 0o222
    ]
    assert writable == []
    assert tinypkg_value(environment.python) == "42"


def test_a_cache_under_tmp_builds_requirements_its_namespace_hides_the_rest_of(
    reachable: Path,
    identities: JobIdentities,
    interpreter,
    wheelhouse: Path,  # noqa: ANN001
) -> None:
    # /tmp is private in the build's namespace: only its scratch, its environment taking
    # shape and the package sources are bound back in, and the requirements must be too.
    shared = shared_wheelhouse(reachable, wheelhouse)
    under_tmp = Path(tempfile.mkdtemp(prefix="compute-tests-", dir="/tmp"))
    try:
        under_tmp.chmod(0o711)
        options = InstallerOptions(wheelhouse=shared, timeout_seconds=120, builds_as=identities)
        environment = EnvironmentCache(under_tmp / "envs", options).get(interpreter, ["tinypkg"])
        assert tinypkg_value(environment.python) == "42"
    finally:
        shutil.rmtree(under_tmp, ignore_errors=True)
