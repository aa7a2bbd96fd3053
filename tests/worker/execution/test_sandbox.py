"""A job's view of the file system (`sandbox.py`), on real processes: its own /tmp, the
directories it runs from still there, every listening Unix socket covered."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.capabilities import ROOT, requires
from tests.worker.execution.conftest import job_python
from worker.execution.sandbox import JobSandbox, listening_socket_paths

needs_root = requires(ROOT, "root (only root makes a mount namespace)")
JOB_UID = 340_000

LOOK = """
import json, os, socket, sys
kept, service = sys.argv[1], sys.argv[2]
client = socket.socket(socket.AF_UNIX)
try:
    client.connect(service)
    reached = "connected"
except OSError as error:
    reached = error.strerror
with open("/tmp/written-by-the-job", "w") as handle:
    handle.write("x")
print(json.dumps({
    "tmp": sorted(os.listdir("/tmp")),
    "kept": open(os.path.join(kept, "file")).read(),
    "service": reached,
}))
"""


@pytest.fixture
def host_tmp_dir() -> Iterator[Path]:
    """A directory of the host's /tmp, where a service listens on a Unix socket."""
    directory = Path(f"/tmp/compute-sandbox-test-{os.getpid()}")
    directory.mkdir(mode=0o755)
    try:
        yield directory
    finally:
        subprocess.run(["rm", "-rf", str(directory)], check=False)


@needs_root
def test_a_job_sees_its_own_tmp_and_no_listening_socket(host_tmp_dir: Path) -> None:
    private = host_tmp_dir / "private"
    private.mkdir(mode=0o700)
    os.chown(private, JOB_UID, JOB_UID)
    kept = host_tmp_dir / "kept"  # under /tmp, like a work directory in tests
    kept.mkdir(mode=0o755)
    (kept / "file").write_text("kept")
    service_dir = Path(f"/var/lib/compute-sandbox-test-{os.getpid()}")
    service_dir.mkdir(mode=0o755, exist_ok=True)
    service_path = service_dir / "service.sock"
    with socket.socket(socket.AF_UNIX) as service:
        service.bind(str(service_path))
        os.chmod(service_path, 0o777)
        service.listen()
        assert str(service_path) in listening_socket_paths()
        sandbox = JobSandbox(private, [kept])

        def confine() -> None:
            sandbox.enter()
            os.setgroups([])
            os.setgid(JOB_UID)
            os.setuid(JOB_UID)

        shown = subprocess.run(
            [job_python(), "-I", "-c", LOOK, str(kept), str(service_path)],
            preexec_fn=confine,
            capture_output=True,
            text=True,
            cwd="/",
        )
    service_dir_cleanup = [service_path, service_dir]
    for path in service_dir_cleanup:
        if path.is_dir():
            path.rmdir()
        else:
            path.unlink(missing_ok=True)
    assert shown.returncode == 0, shown.stderr
    seen = json.loads(shown.stdout)
    # Its /tmp holds what it wrote and the way to the kept directory, nothing of the host's.
    assert seen["tmp"] == sorted(["written-by-the-job", host_tmp_dir.name])
    assert seen["kept"] == "kept"
    assert seen["service"] != "connected"
    # What it wrote is in its private directory on the host, and nowhere else.
    assert (private / "written-by-the-job").exists()
    assert not Path("/tmp/written-by-the-job").exists()
    # No mount leaked to the host.
    assert str(private) not in Path("/proc/self/mounts").read_text()


def test_a_worker_that_is_not_root_runs_jobs_without_a_namespace(tmp_path: Path) -> None:
    """Constructed by a non-root process, the sandbox does nothing (rather than failing
    every job); the worker says so at start."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        try:
            if os.geteuid() == 0:
                os.setgid(JOB_UID)
                os.setuid(JOB_UID)
            sandbox = JobSandbox(tmp_path, [tmp_path])
            sandbox.enter()
            os.write(write, b"ok" if not sandbox.enabled else b"enabled")
        except BaseException as error:  # noqa: BLE001 - reported to the parent
            os.write(write, repr(error).encode())
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read, "rb") as reader:
        assert reader.read() == b"ok"
