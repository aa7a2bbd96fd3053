"""The service on an S3 blob store: bundles, results and logs in a bucket, and a store
that goes down while a job ends.

The API and a real worker share `COMPUTE_BLOB_URL=s3://bucket/prefix` on a local
S3-protocol server. With the server down a job's result cannot be stored, so its attempt
is given back on the service's budget and the job is never `success` without it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from compute import Function, JobStatus
from compute.server.s3_blobstore import PART_BYTES
from tests.conftest import ApiClient
from tests.s3 import S3Server, running_s3_server
from tests.worker import functions
from tests.worker.conftest import (
    ExecutionStack,
    running_stack,
)
from tests.worker.support import job_json, job_log
from worker.queue_drain import DRAIN_SECONDS

BLOB_PREFIX = "service/blobs"
# Attempts the store may fail while it is down: far more than the test needs, so the job
# is still waiting for its result when the store comes back.
LOST_WORKER_RETRIES = 1000
WAIT_SECONDS = 90
GIVEN_BACK = "the worker failed running attempt"


@pytest.fixture
def s3_stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ExecutionStack, S3Server]]:
    with running_s3_server() as s3:
        # The API serves in this process: boto3 finds the store in its environment, as
        # the worker does in its own.
        for name, value in s3.environment().items():
            monkeypatch.setenv(name, value)
        blob_url = s3.blob_url(BLOB_PREFIX)
        worker_settings = {
            "COMPUTE_BLOB_URL": blob_url,
            "COMPUTE_LOST_WORKER_RETRIES": str(LOST_WORKER_RETRIES),
        }
        with running_stack(
            "sqlite",
            "compute-s3-",
            api_settings={"BLOB_URL": blob_url},
            worker_settings=lambda env: {**env, **worker_settings},
            processes=2,
        ) as stack:
            yield stack, s3


@pytest.fixture
def s3_user(
    s3_stack: tuple[ExecutionStack, S3Server], monkeypatch: pytest.MonkeyPatch
) -> Iterator[ApiClient]:
    stack, _ = s3_stack
    with stack.sdk_user(monkeypatch) as api:
        yield api


def test_jobs_store_their_results_in_the_bucket_and_wait_out_a_store_that_is_down(
    s3_stack: tuple[ExecutionStack, S3Server], s3_user: ApiClient
) -> None:
    stack, s3 = s3_stack
    fn = Function(functions.double, name="s3", timeout=60)
    fn.save()
    job = fn(21)
    job.wait_for_completion(timeout=WAIT_SECONDS, interval=0.2)
    assert job.status == JobStatus.SUCCESS, stack.worker_output()
    assert job.result() == 42
    assert s3_user.get(f"/jobs/{job.id}/result").content  # streamed from the bucket
    assert "[attempt 1]" in job_log(s3_user, job.id)
    stored = set(s3.object_keys(BLOB_PREFIX + "/"))
    assert {
        f"{BLOB_PREFIX}/bundles/{fn.id}.zip",
        f"{BLOB_PREFIX}/jobs/{fn.id}/{job.id}/result",
        f"{BLOB_PREFIX}/jobs/{fn.id}/{job.id}/log.ndjson",
    } <= stored
    assert not (stack.server.data_dir / "blobs").exists()

    s3.stop()
    try:
        waiting = fn(5)
        # Each attempt runs the job and then cannot store its log and result: it is given
        # back, pending again, and never recorded `success`.
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            found = job_json(s3_user, waiting.id)
            assert found["status"] != JobStatus.SUCCESS
            if GIVEN_BACK in (found["error"] or ""):
                break
            assert time.monotonic() < deadline, stack.worker_output()
            time.sleep(0.2)
        assert found["status"] in (JobStatus.PENDING, JobStatus.RUNNING)
    finally:
        s3.start()

    waiting.wait_for_completion(timeout=WAIT_SECONDS, interval=0.2)
    assert waiting.status == JobStatus.SUCCESS, stack.worker_output()
    assert waiting.result() == 10
    assert f"{BLOB_PREFIX}/jobs/{fn.id}/{waiting.id}/result" in s3.object_keys(BLOB_PREFIX + "/")


def test_a_large_result_is_streamed_to_the_bucket_a_part_at_a_time(
    s3_stack: tuple[ExecutionStack, S3Server], s3_user: ApiClient
) -> None:
    stack, s3 = s3_stack
    size = 2 * PART_BYTES + 1  # three parts of a multipart upload
    fn = Function(functions.returns_pattern, name="s3-large", timeout=60)
    fn.save()
    job = fn(size)
    job.wait_for_completion(timeout=WAIT_SECONDS, interval=0.2)
    assert job.status == JobStatus.SUCCESS, stack.worker_output()
    assert s3_user.get(f"/jobs/{job.id}/result").content == functions.returns_pattern(size)
    key = f"{BLOB_PREFIX}/jobs/{fn.id}/{job.id}/result"
    stored = s3.client().head_object(Bucket=s3.bucket, Key=key)
    # A multipart upload's ETag ends with its number of parts: the worker streamed it.
    assert stored["ContentLength"] == size and stored["ETag"].endswith('-3"')


def test_a_machine_downloads_a_bundle_once_for_all_its_processes(
    s3_stack: tuple[ExecutionStack, S3Server], s3_user: ApiClient
) -> None:
    stack, s3 = s3_stack
    fn = Function(functions.timed_sleep, name="s3-once", timeout=60)
    fn.save()
    first = fn(0.1)
    first.wait_for_completion(timeout=WAIT_SECONDS, interval=0.2)
    time.sleep(DRAIN_SECONDS + 0.5)  # its process has gone back to Celery for messages
    # Two at once: each in a pool process of its own, so the second process prepares the
    # function too, from what the first unpacked on this machine.
    side_by_side = fn.map([1.5, 1.5])
    for job in side_by_side:
        job.wait_for_completion(timeout=WAIT_SECONDS, interval=0.2)
        assert job.status == JobStatus.SUCCESS, stack.worker_output()
    (start_a, end_a), (start_b, end_b) = (job.result() for job in side_by_side)
    assert start_a < end_b and start_b < end_a, "the two jobs did not run at once"
    # The build's check, then this machine's copy: never once per process.
    assert s3.gets_of(f"{BLOB_PREFIX}/bundles/{fn.id}.zip") == 2
