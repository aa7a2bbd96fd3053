"""The published descarteslabs==2.0.3 client, unmodified, runs real jobs on the execution stack."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.published_client.conftest import client_python, make_runner
from tests.worker.conftest import ExecutionStack

__all__ = ["client_python"]  # the fixture, used by name below

pytestmark = pytest.mark.published_client


def test_published_client_runs_jobs_and_reads_results_and_logs(
    client_python: Path, execution_stack: ExecutionStack, tmp_path: Path
) -> None:
    server = execution_stack.server
    run = make_runner(client_python, server.base_url, server.root_url, tmp_path)
    token = server.token("published-client-execution")
    result = run("execution", "execution", token, image="python3.10:latest", timeout=120).result

    assert result["statuses"] == ["success"] * 3, result
    assert result["function"]["status"] == "success"
    assert result["squares"] == [1, 4, 9]
    assert result["raw"] == [[0, 1, 2]]
    assert result["points"] == [[3, 4]]
    assert "squaring 2" in result["job_log"]
    assert "Build succeeded" in result["build_log"]
    assert "python3.10" in result["build_log"]
