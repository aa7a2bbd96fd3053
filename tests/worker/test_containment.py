"""A hostile job, end to end on a real worker: it cannot reach the service's network
services, another user's running job, or past its limits, at import time included.

Each test is an attack a user could submit; see the README's "Containment".
"""

from __future__ import annotations

import importlib
import os
import re
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import pytest

from compute import Function, JobStatus
from tests.capabilities import ROOT, requires
from tests.conftest import ApiClient
from tests.worker import functions
from tests.worker.conftest import KILL_GRACE_SECONDS, ExecutionStack, running_stack
from tests.worker.execution.netns import peer_namespace
from worker.execution.job_user import resolve_job_identities

pytestmark = requires(ROOT, "root (jobs are contained only by a worker running as root)")

IMPORT_TIME_CODE = {
    "import_hog": "HELD = bytearray(1024 ** 3)\nHELD[::4096] = b'x' * len(HELD[::4096])\n",
    "import_sleeper": "import time\ntime.sleep(150)\n",
}
MAIN = "def main(*args):\n    return 'imported'\n"


def _finish(job, timeout: float = 120) -> None:  # noqa: ANN001 - a compute.Job
    job.wait_for_completion(timeout=timeout, interval=0.1)


@pytest.fixture
def loopback_listener() -> Iterator[int]:
    """A TCP service on the worker's loopback that no job may reach."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]


def test_a_job_reaches_no_loopback_service_but_reaches_other_hosts(
    exec_user: ApiClient, execution_stack: ExecutionStack, loopback_listener: int
) -> None:
    with peer_namespace() as peer:
        fn = Function(functions.try_connect, name="connect", timeout=60)
        fn.save()
        targets = [
            ["127.0.0.1", 6379],  # the broker of this stack
            ["127.0.0.1", 5432],  # PostgreSQL
            ["127.0.0.1", loopback_listener],
            ["::1", 6379],
            [peer.host_address, loopback_listener],  # the host's own address on the link
            [peer.address, peer.port],  # another machine
        ]
        job = fn(targets)
        _finish(job)
    assert job.status == JobStatus.SUCCESS, job.log()
    outcomes = job.result()
    reached = {target for target, outcome in outcomes.items() if outcome == "connected"}
    assert reached == {f"{peer.address}:{peer.port}"}, outcomes


def test_a_job_finds_nothing_of_another_users_running_job(
    execution_stack: ExecutionStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import compute

    alice, bob = execution_stack.user_api("alice"), execution_stack.user_api("bob")
    base = execution_stack.server.base_url
    monkeypatch.setenv("COMPUTE_URL", base)
    monkeypatch.setenv("COMPUTE_CONFIG", str(tmp_path / "none.json"))

    def act_as(user: ApiClient) -> None:
        monkeypatch.setenv("COMPUTE_TOKEN", user.token or "")
        compute.configure(url=base, token=user.token)

    act_as(alice)
    hers = Function(functions.sleep_recording_own_pid, name="alice", timeout=60)
    hers.save()
    her_job = hers(str(tmp_path), "alice", 8)
    pid_file = tmp_path / "alice.pid"
    deadline = time.monotonic() + 90
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pid_file.exists(), her_job.log()
    # The worker's directories of her job and of its executor, as bob would guess them.
    work = Path(execution_stack.server.app.config["WORK_DIR"])
    # Her job's directory and her executor's: the worker's, with her uid as their group.
    her_uid = psutil.Process(int(pid_file.read_text())).uids().real
    directories = [str(p) for p in (work / "jobs").iterdir() if p.stat().st_gid == her_uid]
    assert len(directories) >= 1
    # And where the worker keeps every function's unpacked code.
    directories.append(str(work / "bundles"))
    act_as(bob)
    snoop = Function(functions.snoop_on, name="bob", timeout=60)
    snoop.save()
    his_job = snoop(str(pid_file), directories)
    _finish(his_job)
    assert his_job.status == JobStatus.SUCCESS, his_job.log()
    tried = his_job.result()
    act_as(alice)
    _finish(her_job)
    assert her_job.status == JobStatus.SUCCESS
    assert her_job.result() == "alice"
    compute.configure(url=None, token=None)
    assert directories and all(outcome.startswith("denied") for outcome in tried.values()), tried
    # Refused, not missing: each of these exists while her job runs.
    listed = [outcome for attempt, outcome in tried.items() if attempt.startswith("list ")]
    assert listed and all(outcome == "denied: Permission denied" for outcome in listed), tried


@pytest.fixture
def shipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory on sys.path for modules a function ships with `include_modules`."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        sys.modules.pop(name, None)


def _ship(directory: Path, name: str, top_level: str) -> str:
    """Write module `name` (its hostile top level, then `main`); return the dotted path
    of its `main`, which the worker's executor imports: `from name import main`."""
    path = directory / f"{name}.py"
    # Imported here without its top level, which must run on the worker only; the SDK
    # ships the file as it is on disk when the function is saved.
    path.write_text(MAIN)
    importlib.import_module(name)
    path.write_text(top_level + MAIN)
    return f"{name}.main"


def test_memory_used_at_import_counts_against_the_limit(
    exec_user: ApiClient, shipped: Path
) -> None:
    main = _ship(shipped, "import_hog", IMPORT_TIME_CODE["import_hog"])
    fn = Function(main, name="import-hog", memory=256, include_modules=["import_hog"], timeout=60)
    fn.save()
    job = fn()
    _finish(job)
    assert job.status == JobStatus.FAILURE, job.log()
    assert "exceeded its 256 MB memory limit" in (job.error or "")


def test_time_spent_importing_counts_against_the_timeout(
    exec_user: ApiClient, shipped: Path
) -> None:
    main = _ship(shipped, "import_sleeper", IMPORT_TIME_CODE["import_sleeper"])
    fn = Function(main, name="import-sleeper", include_modules=["import_sleeper"], timeout=5)
    fn.save()
    job = fn()
    _finish(job)
    assert job.status == JobStatus.TIMEOUT, job.log()
    assert job.runtime is not None and job.runtime <= 5 + KILL_GRACE_SECONDS + 2
    assert "took longer than its 5 s timeout" in "\n".join(job.iter_log())


def test_a_daemon_started_at_import_ends_with_the_job(exec_user: ApiClient, shipped: Path) -> None:
    body = (
        "import os, time\n"
        f"PID_FILE = {str(shipped / 'daemon.pid')!r}\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        open(PID_FILE + '.tmp', 'w').write(str(os.getpid()))\n"
        "        os.rename(PID_FILE + '.tmp', PID_FILE)\n"
        "        time.sleep(600)\n"
        "    os._exit(0)\n"
        "while not os.path.exists(PID_FILE):\n"
        "    time.sleep(0.01)\n"
    )
    main = _ship(shipped, "import_daemon", body)
    fn = Function(main, name="import-daemon", include_modules=["import_daemon"], timeout=60)
    fn.save()
    job = fn()
    _finish(job)
    assert job.status == JobStatus.SUCCESS, job.log()
    pid = int((shipped / "daemon.pid").read_text())
    assert not _alive(pid), f"the daemon {pid} started at import outlived the job"


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def test_a_job_writing_past_its_disk_limit_fails_and_leaves_nothing(
    exec_user: ApiClient, execution_stack: ExecutionStack
) -> None:
    marker = f"disk-{os.getpid()}-{time.monotonic_ns()}"
    fn = Function(functions.fill_disk, name="disk", timeout=120)
    fn.save()
    job = fn(600, marker)  # past the stack's COMPUTE_JOB_DISK_MB of 256
    _finish(job)
    assert job.status == JobStatus.FAILURE, job.log()
    assert "MB of scratch space" in (job.error or ""), job.error
    work = Path(execution_stack.server.app.config["WORK_DIR"])
    left = [
        path
        for root in (work, Path("/tmp"), Path("/var/tmp"))
        for path in (root.rglob(f"{marker}*") if root == work else root.glob(f"{marker}*"))
    ]
    assert left == []


def test_the_worker_says_at_start_how_jobs_and_builds_are_contained(
    execution_stack: ExecutionStack,
) -> None:
    started = execution_stack.worker_output()
    assert "job network: nftables owner match on uids 200000-200999" in started
    assert "build network: nftables owner match on uids 201000-201099" in started
    assert "job file system: a mount namespace per job" in started
    # Its broker, refused by address too, as it would be on another machine.
    broker = urlsplit(execution_stack.server.app.config["REDIS_URL"])
    assert len(re.findall(r"the service's own \d+ endpoints refused", started)) == 2, started
    [listed] = re.findall(r"jobs and builds are refused the service's own (.*)", started)
    assert f"{broker.hostname}:{broker.port or 6379}" in listed, listed
    # Users read how jobs are contained, not where the service's broker is.
    shown = execution_stack.user_api().get("/workers").text
    assert "endpoints refused" in shown and f":{broker.port or 6379}" not in shown, shown


def test_every_job_runs_as_a_uid_of_the_range(exec_user: ApiClient) -> None:
    identities = resolve_job_identities()
    fn = Function(functions.who_am_i, name="whoami", timeout=60)
    fn.save()
    job = fn()
    _finish(job)
    uid = job.result()["uid"]
    assert identities.first_uid <= uid <= identities.last_uid


def test_jobs_running_side_by_side_are_pinned_to_cpus_of_their_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One slot per CPU, as a node has by default: each slot's jobs get a CPU of their own
    # rather than every job the node's first.
    available = sorted(os.sched_getaffinity(0))
    assert len(available) >= 2, "this test needs a machine of two CPUs or more"
    slots = len(available)
    with (
        running_stack("sqlite", "compute-cpus-", processes=slots) as stack,
        stack.sdk_user(monkeypatch),
    ):
        fn = Function(
            functions.cpus_while_busy,
            name="pinned",
            cpus=1,
            timeout=60,
            maximum_concurrency=slots,
        )
        fn.save()
        jobs = fn.map([1.5] * (2 * slots))
        for job in jobs:
            _finish(job)
        runs = [job.result() for job in jobs]
    assert all(len(run["cpus"]) == 1 for run in runs), runs
    overlapping = [
        (first, second)
        for index, first in enumerate(runs)
        for second in runs[index + 1 :]
        if first["start"] < second["end"] and second["start"] < first["end"]
    ]
    assert overlapping, runs
    assert all(first["cpus"] != second["cpus"] for first, second in overlapping), runs
    assert {cpu for run in runs for cpu in run["cpus"]} == set(available)
