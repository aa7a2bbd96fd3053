"""A job sees none of the service's secrets: not in its environment, argv or its parents'."""

from __future__ import annotations

from typing import Any

import pytest

from compute import Function, JobStatus
from tests.conftest import ApiClient
from tests.worker import functions
from tests.worker.conftest import ExecutionStack


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


@pytest.mark.xfail(
    strict=True,
    reason="the job runs as the worker's user, so it can read /proc/<worker pid>/environ, "
    "which holds DATABASE_URL and REDIS_URL as the worker was started with them",
)
def test_no_secret_in_the_environments_of_its_parents(
    seen: dict[str, Any], execution_stack: ExecutionStack
) -> None:
    texts = {f"/proc/{a['pid']}/environ": a["environ"] for a in seen["ancestors"]}
    assert _found(_secrets(execution_stack), texts) == []


@pytest.mark.xfail(
    strict=True,
    reason="the job runs as the worker's user, so it can read the data directory's "
    "secret.key (its path is in the worker's environ as COMPUTE_DATA_DIR)",
)
def test_the_signing_key_file_is_out_of_reach(
    exec_user: ApiClient, execution_stack: ExecutionStack
) -> None:
    fn = Function(functions.read_text, name="key-reader", timeout=60)
    fn.save()
    job = fn(str(execution_stack.server.data_dir / "secret.key"))
    job.wait_for_completion(timeout=120, interval=0.1)
    assert _secrets(execution_stack)["signing key"] not in job.result()
