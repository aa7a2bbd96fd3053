"""A job sees none of the service's secrets: not in its environment, argv or its parents',
nor in the data directory: it runs as the job user, who may read none of it."""

from __future__ import annotations

from typing import Any

import pytest

from compute import Function, JobStatus
from tests.capabilities import requires
from tests.conftest import ApiClient
from tests.worker import functions
from tests.worker.conftest import ExecutionStack
from worker.execution.job_user import resolve_job_identities

IDENTITIES = resolve_job_identities()
JOB_USER = IDENTITIES.representative()
# A worker that is not root runs jobs as itself: they can read what it can.
needs_root = requires(
    JOB_USER.switches, "root (only a worker running as root runs jobs as another user)"
)


def _secrets(stack: ExecutionStack) -> dict[str, str]:
    config = stack.server.app.config
    return {
        "DATABASE_URL": config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": config["REDIS_URL"],
        "signing key": (stack.server.data_dir / "secret.key").read_text().strip(),
    }


def _found(secrets: dict[str, str], texts: dict[str, str]) -> list[str]:
    return [
        f"{name} in {where}"
        for name, secret in secrets.items()
        for where, text in texts.items()
        if secret in text
    ]


@pytest.fixture
def seen(exec_user: ApiClient) -> dict[str, Any]:
    """What a job finds in its environment, argv, and /proc of each of its ancestors."""
    fn = Function(functions.what_the_job_sees, name="snoop", timeout=60)
    fn.save()
    job = fn()
    job.wait_for_completion(timeout=120, interval=0.1)
    assert job.status == JobStatus.SUCCESS
    return job.result()


def test_no_secret_in_the_jobs_environment_or_argv(
    seen: dict[str, Any], execution_stack: ExecutionStack
) -> None:
    texts = {
        "os.environ": repr(seen["environ"]),
        "argv": repr(seen["argv"]),
        "/proc/self/environ": seen["own_environ"],
    }
    assert _found(_secrets(execution_stack), texts) == []
    assert not {"DATABASE_URL", "REDIS_URL", "COMPUTE_DATA_DIR"} & set(seen["environ"])


def test_no_secret_in_the_command_lines_of_its_parents(
    seen: dict[str, Any], execution_stack: ExecutionStack
) -> None:
    assert seen["ancestors"], "the job found no parent processes"
    texts = {f"/proc/{a['pid']}/cmdline": a["cmdline"] for a in seen["ancestors"]}
    assert _found(_secrets(execution_stack), texts) == []


@needs_root
def test_no_secret_in_the_environments_of_its_parents(
    seen: dict[str, Any], execution_stack: ExecutionStack
) -> None:
    texts = {f"/proc/{a['pid']}/environ": a["environ"] for a in seen["ancestors"]}
    assert _found(_secrets(execution_stack), texts) == []


@needs_root
def test_the_signing_key_file_is_out_of_reach(
    exec_user: ApiClient, execution_stack: ExecutionStack
) -> None:
    fn = Function(functions.read_text, name="key-reader", timeout=60)
    fn.save()
    job = fn(str(execution_stack.server.data_dir / "secret.key"))
    job.wait_for_completion(timeout=120, interval=0.1)
    assert _secrets(execution_stack)["signing key"] not in job.result()
    assert "Permission denied" in job.result()  # the file is there, its mode refuses


def _run(function: Any, *args: Any) -> Any:
    fn = Function(function, name=function.__name__, timeout=60)
    fn.save()
    job = fn(*args)
    job.wait_for_completion(timeout=120, interval=0.1)
    assert job.status == JobStatus.SUCCESS, "\n".join(job.iter_log())
    return job.result()


@needs_root
def test_the_job_runs_as_the_job_user_with_no_way_back(
    exec_user: ApiClient, execution_stack: ExecutionStack
) -> None:
    assert f"jobs run as: {IDENTITIES.describe()}" in execution_stack.worker_output()
    identity = _run(functions.who_am_i)
    assert IDENTITIES.first_uid <= identity["uid"] <= IDENTITIES.last_uid
    assert (identity["gid"], identity["groups"]) == (identity["uid"], [])
    assert identity["no_new_privs"] == "1"
    assert int(identity["effective_capabilities"], 16) == 0
    assert identity["regained_root"] is False


@needs_root
def test_the_database_and_the_blob_store_are_out_of_reach(
    exec_user: ApiClient, execution_stack: ExecutionStack
) -> None:
    data_dir = execution_stack.server.data_dir
    fn = Function(functions.read_text, name="blob-reader", timeout=60)
    fn.save()
    files = [data_dir / "blobs" / "bundles" / f"{fn.id}.zip"]
    if execution_stack.server.database == "sqlite":
        files.append(data_dir / "compute.db")
    assert all(path.exists() for path in files)
    jobs = fn.map([str(path) for path in files])
    fn.wait_for_completion(timeout=120, interval=0.1)
    for path, job in zip(files, jobs):
        assert job.result().startswith("<unreadable:"), (path, job.result()[:80])
    listings = [_run(functions.list_dir, str(path)) for path in (data_dir, data_dir / "blobs")]
    assert all(str(listing).startswith("<unlistable:") for listing in listings), listings


@needs_root
def test_the_jobs_environment_is_read_only_to_it(exec_user: ApiClient) -> None:
    assert _run(functions.write_into_environment).startswith("<refused:")
