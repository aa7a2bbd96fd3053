"""Hostile bundles and requirements, end to end: through the API and a real worker.

Each bundle is uploaded as the published client uploads one and built by the worker.
The build must fail with the reason in its build log and in the waiting job's error,
having read no file a requirement names, connected to no host one names, and written
nothing outside the bundle's own directory.
"""

from __future__ import annotations

import gzip
import io
import socket
import threading
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import ApiClient
from tests.worker.build.zips import ENTRYPOINT_SOURCE, make_zip, symlink_entry, tree
from tests.worker.conftest import ExecutionStack
from tests.worker.support import wait_for_job, wait_until

REQUIREMENT_REFUSALS = [
    ("-r {secret}", "pip options are not accepted"),
    ("--requirement {secret}", "pip options are not accepted"),
    ("-c {secret}", "pip options are not accepted"),
    ("-e git+http://127.0.0.1:{port}/repo.git#egg=tinypkg", "pip options are not accepted"),
    ("--editable ./tinypkg", "pip options are not accepted"),
    ("--index-url http://127.0.0.1:{port}/simple", "pip options are not accepted"),
    ("-i http://127.0.0.1:{port}/simple", "pip options are not accepted"),
    ("--extra-index-url http://127.0.0.1:{port}/simple", "pip options are not accepted"),
    ("-f http://127.0.0.1:{port}/wheels/", "pip options are not accepted"),
    ("--find-links http://127.0.0.1:{port}/wheels/", "pip options are not accepted"),
    ("--find-links={secret_dir}", "pip options are not accepted"),
    ("tinypkg --index-url http://127.0.0.1:{port}/simple", "pip options are not accepted"),
    ("tinypkg @ http://127.0.0.1:{port}/tinypkg-1.0-py3-none-any.whl", "URLs and paths"),
    ("http://127.0.0.1:{port}/tinypkg-1.0.tar.gz", "URLs and paths"),
    ("tinypkg @ file://{secret}", "URLs and paths"),
    ("file://{secret}", "URLs and paths"),
    ("file:{secret_dir}", "URLs and paths"),
    ("{secret}", "URLs and paths"),
    ("{secret_dir}/tinypkg-1.0-py3-none-any.whl", "URLs and paths"),
    ("./tinypkg", "URLs and paths"),
    ("../tinypkg", "URLs and paths"),
]

# Installer configuration a bundle might carry to redirect the build; all of it ignored.
CONFIG_FILES = {
    "uv.toml": '[[index]]\nurl = "http://127.0.0.1:{port}/simple"\ndefault = true\n',
    "pip.conf": "[global]\nindex-url = http://127.0.0.1:{port}/simple\n",
    "pyproject.toml": (
        '[project]\nname = "x"\nversion = "1"\n\n'
        '[tool.uv]\nindex-url = "http://127.0.0.1:{port}/simple"\n'
    ),
    ".netrc": "machine 127.0.0.1 login user password {port}\n",
}


@dataclass
class Listener:
    """A TCP port on 127.0.0.1 that records every connection made to it."""

    port: int
    connections: list[Any] = field(default_factory=list)


@pytest.fixture(scope="module")
def listener() -> Iterator[Listener]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.2)
    found = Listener(server.getsockname()[1])
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, address = server.accept()
            except OSError:
                continue
            found.connections.append(address)
            connection.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    # The listener hears a connection, so hearing none later means none was made.
    socket.create_connection(("127.0.0.1", found.port), timeout=5).close()
    wait_until(lambda: found.connections, timeout=10)
    found.connections.clear()
    yield found
    stop.set()
    thread.join(timeout=5)
    server.close()


@pytest.fixture(scope="module")
def secret(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A file on the worker's machine whose content no build log may show."""
    directory = tmp_path_factory.mktemp("worker-secrets")
    content = f"worker-secret-{uuid.uuid4().hex}"
    path = directory / "credentials.txt"
    path.write_text(f"{content}\n")
    return path, content


def bundle(*extra: tuple[Any, bytes]) -> bytes:
    return make_zip([("__dlentrypoint__.py", ENTRYPOINT_SOURCE), *extra])


def build(api: ApiClient, data: bytes) -> tuple[dict[str, Any], str]:
    """Create a function with one job waiting, upload `data` as its bundle and build it.

    Returns the function once its build has ended, and the waiting job's id.
    """
    created = api.post("/functions", json={"name": "hostile", "timeout": 60})
    assert created.status_code == 201, created.text
    function_id = created.json()["function"]["id"]
    job = api.post("/jobs", json={"function_id": function_id, "args": [1]})
    assert job.status_code == 201, job.text
    upload = requests.put(created.json()["bundle_upload_url"], data=data, timeout=30)
    assert upload.status_code == 200, upload.text
    assert api.post(f"/functions/{function_id}/bundle").status_code == 200
    path = f"/functions/{function_id}"
    ended = wait_until(
        lambda: (
            (fn := api.get(path).json())["status"] not in {"building", "awaiting_bundle"} and fn
        ),
        describe=lambda: api.get(path).json(),
    )
    return ended, job.json()["id"]


def build_log(api: ApiClient, function_id: str) -> str:
    response = api.get(f"/functions/{function_id}/log")
    assert response.status_code == 200
    return gzip.decompress(response.content).decode()


def assert_build_failed(api: ApiClient, data: bytes, reason: str) -> str:
    """Build `data`; it must fail for `reason`, in the log and the waiting job's error."""
    function, job_id = build(api, data)
    assert function["status"] == "build_failed", function
    log = build_log(api, function["id"])
    assert "Build failed" in log and reason in log, log
    job = wait_for_job(api, job_id)
    assert job["status"] == "failure" and reason in job["error"], job
    return log


@pytest.mark.parametrize(
    ("line", "reason"), REQUIREMENT_REFUSALS, ids=[r[0] for r in REQUIREMENT_REFUSALS]
)
def test_refused_requirement_fails_the_build_and_says_why(
    exec_user: ApiClient,
    listener: Listener,
    secret: tuple[Path, str],
    line: str,
    reason: str,
) -> None:
    path, content = secret
    hostile = line.format(secret=path, secret_dir=path.parent, port=listener.port)
    requirements = f"tinypkg\n{hostile}\n".encode()
    log = assert_build_failed(
        exec_user, bundle(("requirements.txt", requirements)), f"line 2: {hostile!r}: {reason}"
    )
    assert content not in log
    assert listener.connections == []


@pytest.mark.usefixtures("stack_wheelhouse")
def test_installer_configuration_in_the_bundle_is_ignored(
    exec_user: ApiClient, listener: Listener
) -> None:
    files = [
        (name, text.format(port=listener.port).encode()) for name, text in CONFIG_FILES.items()
    ]
    data = bundle(("requirements.txt", b"tinypkg\n"), *files)
    function, job_id = build(exec_user, data)
    assert function["status"] != "build_failed", build_log(exec_user, function["id"])
    log = build_log(exec_user, function["id"])
    assert "Requirements (1):\n  tinypkg\n" in log and "Build succeeded" in log, log
    assert wait_for_job(exec_user, job_id)["status"] == "success"
    assert listener.connections == []


def _bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("__dlentrypoint__.py", ENTRYPOINT_SOURCE)
        for number in range(100):
            archive.writestr(f"data/{number}.bin", bytes(1024 * 1024))
    return buffer.getvalue()


def _many_entries() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("__dlentrypoint__.py", ENTRYPOINT_SOURCE)
        for number in range(100_000):
            archive.writestr(f"f{number}", b"")
    return buffer.getvalue()


BUNDLE_REFUSALS = {
    "zip slip": (lambda: bundle(("../../escaped.py", b"owned")), "'..'"),
    "absolute path": (lambda: bundle(("/tmp/escaped.py", b"owned")), "is an absolute path"),
    "symlink": (
        lambda: bundle(symlink_entry("data", "../../../sentinel"), ("data/keep.txt", b"owned")),
        "is a symbolic link",
    ),
    "zip bomb": (_bomb, "compression ratio"),
    "100,000 entries": (_many_entries, "100,001 entries; the limit is 10,000"),
    "not a zip": (lambda: b"PK\x03\x04 but nothing more", "not a valid zip"),
}


@pytest.mark.parametrize("kind", list(BUNDLE_REFUSALS))
def test_refused_bundle_fails_the_build_and_writes_nothing_outside(
    exec_user: ApiClient, execution_stack: ExecutionStack, kind: str
) -> None:
    make, reason = BUNDLE_REFUSALS[kind]
    work_dir = Path(execution_stack.server.app.config["WORK_DIR"])
    sentinel = work_dir / "sentinel"
    sentinel.mkdir(parents=True, exist_ok=True)
    (sentinel / "keep.txt").write_bytes(b"untouched")
    before = tree(sentinel)
    assert_build_failed(exec_user, make(), reason)
    assert tree(sentinel) == before
    assert not list(execution_stack.server.data_dir.rglob("escaped.py"))
    assert not Path("/tmp/escaped.py").exists()
    scratch = work_dir / "scratch"
    assert not scratch.exists() or not list(scratch.rglob("escaped.py"))
