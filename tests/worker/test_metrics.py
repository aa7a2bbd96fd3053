"""`/metrics` over HTTP: job counts from the database, and, with a real worker running
real jobs, queue depths, live workers and the workers' event metrics."""

from __future__ import annotations

import dataclasses

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from compute import Function, JobStatus
from tests.api.helpers import built_function, set_job_status, submit
from tests.conftest import ApiClient, ApiServer
from tests.worker import functions
from tests.worker.conftest import ExecutionStack


def scrape(root_url: str) -> list[Sample]:
    response = requests.get(root_url + "/metrics", timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    return [
        sample
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    ]


def value(samples: list[Sample], name: str, **labels: str) -> float:
    """The value of the sample `name` with (at least) `labels`; 0 when there is none."""
    return sum(s.value for s in samples if s.name == name and labels.items() <= s.labels.items())


def test_a_scrape_token_when_set_is_required(
    api_server: ApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = api_server.app.extensions["settings"]
    token = "scrape-me"
    monkeypatch.setitem(
        api_server.app.extensions, "settings", dataclasses.replace(settings, metrics_token=token)
    )
    url = api_server.root_url + "/metrics"
    for sent in ({}, {"Authorization": "Bearer nope"}, {"Authorization": token}):
        answer = requests.get(url, headers=sent, timeout=30)
        assert answer.status_code == 401 and "COMPUTE_METRICS_TOKEN" in answer.json()["detail"]
    answer = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert answer.status_code == 200 and "compute_metrics_source_up" in answer.text


def test_jobs_by_function_and_status_come_from_the_functions_counts(
    api_server: ApiServer, api: ApiClient
) -> None:
    function = built_function(api_server, api)
    jobs = submit(api, function["id"], [[1], [2], [3]])
    set_job_status(api_server, [jobs[0]["id"]], JobStatus.SUCCESS)
    samples = scrape(api_server.root_url)
    assert value(samples, "compute_jobs", function=function["id"], status="pending") == 2
    assert value(samples, "compute_jobs", function=function["id"], status="success") == 1
    assert value(samples, "compute_jobs", function=function["id"], status="timeout") == 0
    assert value(samples, "compute_metrics_source_up", source="database") == 1
    # The function's name is its owner's: only its id is shown.
    assert not any("function_name" in s.labels for s in samples)


def test_a_real_worker_s_jobs_show_in_the_metrics(
    exec_user: ApiClient,  # noqa: F811
    execution_stack: ExecutionStack,  # noqa: F811
) -> None:
    root = execution_stack.server.root_url
    before = scrape(root)
    ok = Function(functions.double, name="metrics-ok", timeout=60)
    failing = Function(functions.explode, name="metrics-fail", timeout=60, retry_count=1)
    slow = Function(functions.timed_sleep, name="metrics-slow", timeout=1)
    runs = [(ok, (2,)), (failing, ("bad",)), (slow, (30,))]
    for fn, args in runs:
        fn.save()
        fn(*args).wait_for_completion(timeout=120, interval=0.1)

    after = scrape(root)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    for fn, status in ((ok, "success"), (failing, "failure"), (slow, "timeout")):
        assert value(after, "compute_jobs", function=fn.id, status=status) == 1
        assert value(after, "compute_jobs", function=fn.id, status="pending") == 0
    # Event metrics, merged from the worker's processes' files.
    assert grew("compute_job_duration_seconds_count", status="success") >= 1
    assert grew("compute_job_duration_seconds_count", status="failure") >= 1
    assert grew("compute_job_duration_seconds_count", status="timeout") >= 1
    assert value(after, "compute_job_timeouts_total", function=slow.id) == 1
    assert value(after, "compute_job_retries_total", function=failing.id) == 1
    assert value(after, "compute_job_out_of_memory_total", function=ok.id) == 0
    assert grew("compute_build_duration_seconds_count", outcome="built") >= 3
    # The broker's side: no message left waiting, the worker alive with its slots.
    assert value(after, "compute_metrics_source_up", source="broker") == 1
    assert value(after, "compute_queue_depth", function=ok.id) == 0
    assert value(after, "compute_live_workers") >= 1
    assert value(after, "compute_worker_slots") >= 1


def test_an_out_of_memory_attempt_is_counted(
    exec_user: ApiClient,  # noqa: F811
    execution_stack: ExecutionStack,  # noqa: F811
) -> None:
    fn = Function(functions.hog_memory, name="metrics-hog", memory=100, timeout=60, retry_count=0)
    fn.save()
    job = fn(400)
    job.wait_for_completion(timeout=120, interval=0.1)
    assert job.status == JobStatus.FAILURE
    samples = scrape(execution_stack.server.root_url)
    assert value(samples, "compute_job_out_of_memory_total", function=fn.id) == 1
    assert value(samples, "compute_job_timeouts_total", function=fn.id) == 0
