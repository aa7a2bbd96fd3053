"""The SDK's Job against the real API over HTTP (jobs do not execute here)."""

from __future__ import annotations

import json
import pickle
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from compute import (
    ComputeError,
    DocumentState,
    Function,
    Job,
    JobFailedError,
    JobStatus,
    NotFoundError,
    Serializable,
    ValidationError,
)
from compute._client import get_default_client
from compute._job import LOG_TAIL_LINES

from .outcomes import finish_job


def double(x):
    return x * 2


@pytest.fixture
def fn(sdk_user) -> Function:
    function = Function(double, name="double")
    function.save()
    return function


def test_create_get_and_refresh(fn):
    job = Job(fn.id, args=[1, 2], kwargs={"k": "v"})
    assert job.state == DocumentState.NEW
    job.save()
    assert job.state == DocumentState.SAVED
    assert job.status == JobStatus.PENDING
    assert job.creation_date is not None and job.runtime is None
    fetched = Job.get(job.id)
    assert fetched.to_dict() == job.to_dict()
    fetched.refresh()
    assert fetched.args == [1, 2]
    assert job.function.id == fn.id


def test_patch_sends_only_changed_arguments(fn):
    job = fn(1)
    job.args = [5]
    assert job.to_dict(only_modified=True) == {"args": [5]}
    job.save()
    assert Job.get(job.id).args == [5]
    job.update(kwargs={"x": 1})
    job.save()
    assert Job.get(job.id).kwargs == {"x": 1}


def test_readonly_and_immutable_attributes(fn):
    job = fn(1)
    with pytest.raises(ValueError, match="readonly attribute 'status'"):
        job.status = JobStatus.SUCCESS
    with pytest.raises(ValueError, match="readonly attribute 'runtime'"):
        job.runtime = 3
    with pytest.raises(ValueError, match="immutable attribute 'function_id'"):
        job.function_id = "other"


def test_missing_function_id_is_a_validation_error(sdk_user):
    with pytest.raises(ValidationError) as info:
        Job().save()
    assert "function_id" in info.value.errors


def test_unknown_ids_are_not_found(fn):
    with pytest.raises(NotFoundError):
        Job.get("no-such-job")
    with pytest.raises(NotFoundError):
        Job(fn.id + "-missing").save()


def test_delete(fn):
    job = fn(1)
    job_id = job.id
    job.delete()
    assert job.state == DocumentState.DELETED
    with pytest.raises(NotFoundError):
        Job.get(job_id)
    with pytest.raises(ValueError, match="deleted"):
        job.save()


def test_result_and_log_before_running(fn, capsys):
    job = fn(1)
    assert job.result() is None
    assert list(job.iter_log()) == []
    job.log()
    assert capsys.readouterr().out == ""


def test_wait_for_completion_times_out_with_short_intervals(fn):
    job = fn(1)
    start = time.perf_counter()
    with pytest.raises(TimeoutError, match=job.id):
        job.wait_for_completion(timeout=0.25, interval=0.05)
    assert time.perf_counter() - start < 5


def test_search_filter_sort_limit_count_and_paging(fn):
    other = Function(double, name="other")
    other.save()
    jobs = fn.map(range(5))
    other.map(range(3))
    ids = [job.id for job in jobs]
    assert Job.search().count() == 8
    assert fn.jobs.count() == 5
    paged = list(fn.jobs.param(page_size=2))
    assert [job.id for job in paged] == ids
    assert [job.id for job in Job.list(page_size=2, function_id=fn.id)] == ids
    legacy = Job.list(page_size=2, function_id=fn.id, status=["pending", "running"])
    assert len(list(legacy)) == 5
    newest = fn.jobs.sort(-Job.creation_date, -Job.id).limit(3).collect()
    assert [job.id for job in newest] == ids[::-1][:3]
    assert len(fn.jobs.param(page_size=2).limit(3).collect()) == 3
    pending = Job.search().filter(Job.status.in_([JobStatus.PENDING, JobStatus.RUNNING]))
    assert pending.count() == 8
    assert Job.search().filter(Job.status == JobStatus.SUCCESS).count() == 0
    assert Job.search().filter(Job.runtime.isnull).count() == 8
    assert Job.search().filter(Job.runtime.isnotnull).count() == 0
    first = jobs[0].creation_date
    since = Job.search().filter(Job.creation_date >= first - timedelta(seconds=1))
    assert since.count() == 8
    assert Job.search().filter(Job.creation_date > first + timedelta(days=1)).count() == 0
    both = Job.search().filter((Job.function_id == fn.id) | (Job.id == ids[0]))
    assert both.count() == 5
    by_id = Job.search().filter(Job.id.in_(ids[:2])).sort(Job.id).collect()
    assert sorted(ids[:2]) == [job.id for job in by_id]


class Point(Serializable):
    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y

    def serialize(self) -> bytes:
        return f"{self.x},{self.y}".encode()

    @classmethod
    def deserialize(cls, data: bytes) -> Point:
        return cls(*map(int, data.decode().split(",")))


@pytest.mark.parametrize(
    ("stored", "expected"),
    [(b"", None), (b"[1, 2]", [1, 2]), (b'"text"', "text"), (b"\x00raw", b"\x00raw")],
)
def test_result_decoding(fn, api_server, stored, expected):
    job = fn(1)
    finish_job(api_server, job, result=stored)
    assert job.result() == expected


def test_result_cast_type(fn, api_server):
    job = fn(1)
    finish_job(api_server, job, result=b"3,4")
    point = job.result(cast_type=Point)
    assert (point.x, point.y) == (3, 4)
    with pytest.raises(ValueError, match="Serializable"):
        job.result(cast_type=int)


def test_log_lines(fn, api_server, capsys):
    job = fn(1)
    log = [("2026-01-01T00:00:00.000000Z", "hello"), ("2026-01-01T00:00:01.500000Z", "world")]
    finish_job(api_server, job, log=log)
    assert list(job.iter_log(timestamps=False)) == ["hello", "world"]
    stamped = list(job.iter_log())
    local = datetime(2026, 1, 1, tzinfo=timezone.utc).astimezone()
    assert stamped[0] == f"{local} hello"
    job.log(timestamps=False)
    assert capsys.readouterr().out == "hello\nworld\n"


def test_the_service_answers_a_wait_as_the_job_ends(fn, api_server):
    job = fn(1)
    threading.Timer(0.3, finish_job, (api_server, job)).start()
    started = time.monotonic()
    answer = get_default_client().json("GET", f"/jobs/{job.id}", params={"wait": "5"})
    waited = time.monotonic() - started
    assert answer["status"] == "success"
    assert 0.25 < waited < 2.5  # answered as it ended, not at the end of the wait
    # A job already final, or no wait asked: at once.
    started = time.monotonic()
    get_default_client().json("GET", f"/jobs/{job.id}", params={"wait": "5"})
    assert time.monotonic() - started < 1


def test_a_wait_past_its_seconds_answers_with_the_job_as_it_is(fn):
    job = fn(1)
    started = time.monotonic()
    answer = get_default_client().json("GET", f"/jobs/{job.id}", params={"wait": "0.3"})
    assert answer["status"] == "pending"
    assert 0.25 < time.monotonic() - started < 2


def test_wait_for_completion_returns_once_final(fn, api_server, capsys):
    job = fn(1)
    finish_job(api_server, job, status=JobStatus.FAILURE)
    job.wait_for_completion(timeout=5, interval=0.05)
    assert job.status == JobStatus.FAILURE
    assert job.runtime == 1.5
    assert "updated from pending to failure" in capsys.readouterr().err


TRACEBACK = [
    "[attempt 1]",
    "Traceback (most recent call last):",
    '  File "__dlentrypoint__.py", line 3, in tile',
    "ValueError: bad tile 17",
    "[job failure: ValueError: bad tile 17]",
]


def log_entries(lines):
    return [(f"2026-01-01T00:00:{n % 60:02d}.000000Z", line) for n, line in enumerate(lines)]


def test_a_failed_jobs_result_raises_with_its_reason_and_log(fn, api_server):
    job = fn(17)
    finish_job(
        api_server,
        job,
        status=JobStatus.FAILURE,
        error="ValueError: bad tile 17",
        log=log_entries(TRACEBACK),
    )
    assert repr(job) == f"Job {job.id}: pending"  # as last fetched

    with pytest.raises(JobFailedError) as info:
        job.result()

    error = info.value
    assert isinstance(error, ComputeError)
    assert (error.job_id, error.status, error.reason) == (
        job.id,
        JobStatus.FAILURE,
        "ValueError: bad tile 17",
    )
    assert error.log_tail == TRACEBACK
    assert str(error).startswith(f"Job {job.id} failed: ValueError: bad tile 17\n")
    assert "  Traceback (most recent call last):" in str(error)
    # result() refreshed the job: its status, reason and repr are current
    assert job.status == JobStatus.FAILURE
    assert job.error == "ValueError: bad tile 17"
    assert repr(job) == f"Job {job.id}: failure (ValueError: bad tile 17)"
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.job_id, copy.status, copy.reason, copy.log_tail) == (
        job.id,
        JobStatus.FAILURE,
        "ValueError: bad tile 17",
        TRACEBACK,
    )


def test_a_timed_out_jobs_result_raises_with_the_timeout(fn, api_server):
    job = fn(1)
    finish_job(api_server, job, status=JobStatus.TIMEOUT, error="exceeded its 2 s timeout")
    with pytest.raises(JobFailedError, match="timed out: exceeded its 2 s timeout") as info:
        Job.get(job.id).result()
    assert info.value.status == JobStatus.TIMEOUT
    assert info.value.log_tail == []


def test_a_failed_jobs_error_shows_only_the_tail_of_a_long_log(fn, api_server):
    job = fn(1)
    lines = [f"line {n} " + "x" * 200 for n in range(5000)]  # about 1 MB of log
    finish_job(api_server, job, status=JobStatus.FAILURE, error="boom", log=log_entries(lines))
    with pytest.raises(JobFailedError) as info:
        job.result()
    assert info.value.log_tail == lines[-LOG_TAIL_LINES:]


def test_without_a_readable_log_the_error_has_the_reason_alone(fn, api_server):
    job = fn(1)
    finish_job(
        api_server, job, status=JobStatus.FAILURE, error="exited with code 3", raw_log=b"{nope\n"
    )
    with pytest.raises(JobFailedError) as info:
        job.result()
    assert info.value.log_tail == []
    assert str(info.value) == f"Job {job.id} failed: exited with code 3"


def test_a_successful_jobs_result_after_a_pending_read(fn, api_server):
    job = fn(1)
    assert job.result() is None  # pending: no result yet, no error
    finish_job(api_server, job, result=json.dumps(2).encode())
    assert job.result() == 2
    assert job.status == JobStatus.SUCCESS
    assert repr(job) == f"Job {job.id}: success"


def test_a_locally_changed_jobs_result_keeps_the_change(fn, api_server):
    job = fn(1)
    job.args = [5]
    assert job.result() is None
    assert job.args == [5] and job.is_modified


def test_an_unsaved_jobs_result_is_a_value_error(fn):
    with pytest.raises(ValueError, match="not been saved"):
        Job(fn.id, args=[1]).result()
