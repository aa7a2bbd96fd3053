"""A real worker whose environment names a private CA and a package index, as one behind a
TLS-intercepting proxy or using a company's index has: a function's build installs from
that index, and the network policy the worker gives its builds leaves it, on loopback,
within their reach."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from compute import Function, JobStatus
from compute.server.settings import INSTALLER_PREFIXES, INSTALLER_VARIABLES
from tests.conftest import running_api
from tests.redis_databases import claimed_redis_url
from tests.worker import functions
from tests.worker.conftest import (
    ExecutionStack,
    job_reachable_directory,
    start_worker,
    stop_tree,
    wait_ready,
    worker_environment,
)
from worker.execution.job_user import BUILD_UID_COUNT
from worker.execution.network import remove_network_policy

from .tls_index import PrivateCa, TlsIndex, make_private_ca, serving_index

# A range of the test's own, so the worker's nftables tables are its own too.
JOB_UID_BASE = 340_000
JOB_UID_COUNT = 8
# What of the host's own installer settings must not reach the worker under test.
HOST_ONLY = ("HOME", "XDG_CONFIG_HOME", "XDG_CONFIG_DIRS")


@pytest.fixture(scope="module")
def private_ca(tmp_path_factory: pytest.TempPathFactory) -> PrivateCa:
    return make_private_ca(tmp_path_factory.mktemp("private-ca"))


@pytest.fixture(scope="module")
def index(private_ca: PrivateCa, local_wheels: list[Path]) -> Iterator[TlsIndex]:
    with serving_index(private_ca, local_wheels) as served:
        yield served


@pytest.fixture(scope="module")
def stack(private_ca: PrivateCa, index: TlsIndex) -> Iterator[ExecutionStack]:
    """A worker with no package setting of the service's: its environment names the
    index (`PIP_INDEX_URL`, as pip's users set it) and the CA that signed it."""
    with (
        job_reachable_directory("compute-tls-") as scratch,
        claimed_redis_url() as redis_url,
        running_api("sqlite", scratch / "data", {"REDIS_URL": redis_url}) as server,
    ):
        environment = {
            name: value
            for name, value in worker_environment(server, redis_url).items()
            if name in HOST_ONLY
            or not (name.startswith(INSTALLER_PREFIXES) or name in INSTALLER_VARIABLES)
        }
        del environment["COMPUTE_WHEELHOUSE"]
        environment.update(
            PIP_INDEX_URL=index.url,
            SSL_CERT_FILE=str(private_ca.certificate),
            COMPUTE_JOB_UID_BASE=str(JOB_UID_BASE),
            COMPUTE_JOB_UID_COUNT=str(JOB_UID_COUNT),
        )
        log_path = server.data_dir / "worker.log"
        worker = start_worker(environment, log_path, processes=1)
        try:
            wait_ready(log_path, worker)
            yield ExecutionStack(server, worker, log_path)
        finally:
            stop_tree(worker)
            remove_network_policy(JOB_UID_BASE, JOB_UID_COUNT)
            remove_network_policy(JOB_UID_BASE + JOB_UID_COUNT, BUILD_UID_COUNT)


@pytest.fixture
def sdk_of(stack: ExecutionStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The `compute` SDK acts as a fresh user of `stack` meanwhile."""
    import compute

    token = stack.server.token(f"user-{uuid.uuid4().hex[:10]}")
    monkeypatch.setenv("COMPUTE_URL", stack.server.base_url)
    monkeypatch.setenv("COMPUTE_TOKEN", token)
    monkeypatch.setenv("COMPUTE_CONFIG", str(stack.server.data_dir / "none.json"))
    compute.configure(url=stack.server.base_url, token=token)
    yield
    compute.configure(url=None, token=None)


@pytest.mark.usefixtures("sdk_of")
def test_a_function_builds_from_the_index_and_with_the_ca_of_the_workers_environment(
    stack: ExecutionStack, index: TlsIndex
) -> None:
    fn = Function(functions.uses_tinypkg, name="private-index", requirements=["tinypkg"])
    fn.save()
    job = fn()
    job.wait_for_completion(timeout=180, interval=0.2)
    log = fn.read_build_log()
    assert job.status == JobStatus.SUCCESS, f"{log}\n{job.log()}\n{stack.worker_output()}"
    assert job.result() == {"value": 42, "hello": "hello from tinypkg"}
    assert f"--index-url {index.url}" in log, log
    assert "/files/tinypkg-1.0-py3-none-any.whl" in index.requested
    # Where builds are held to their policy, the index on loopback is its exception.
    started = stack.worker_output()
    if "build network: nftables" in started:
        assert f"except 127.0.0.1:{index.port}" in started, started
