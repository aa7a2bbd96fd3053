"""The SDK's Function against the real API over HTTP (jobs do not execute here)."""

from __future__ import annotations

import json
import threading
import time
import zipfile
from io import BytesIO

import pytest

import compute
from compute import (
    AuthenticationError,
    BuildFailedError,
    ConflictError,
    DocumentState,
    Function,
    FunctionStatus,
    Job,
    JobFailedError,
    JobStatus,
    NotFoundError,
    ValidationError,
)
from compute._bundle import default_image

from .outcomes import finish_job, mark_built


def double(x):
    return x * 2


def make_function(**fields) -> Function:
    fields.setdefault("name", "double")
    fn = Function(double, **fields)
    fn.save()
    return fn


def fail_build(api_server, function_id: str) -> None:
    """Fault injection: mark the build failed, as a worker would."""
    from compute.server.extensions import db
    from compute.server.models import BuildState
    from compute.server.transitions import set_build_state

    with api_server.app.app_context():
        set_build_state(db.session, function_id, BuildState.BUILD_FAILED)
        db.session.commit()


def stored_bundle(api_server, function_id: str) -> zipfile.ZipFile:
    from compute.server.blobstore import bundle_key

    with api_server.app.app_context():
        data = api_server.app.extensions["blobstore"].get(bundle_key(function_id))
    return zipfile.ZipFile(BytesIO(data))


def test_save_uploads_the_bundle_and_starts_the_build(sdk_user, api_server):
    fn = Function(double, name="double", cpus="2VCPUs", memory="1Gi", timeout=60, retry_count=1)
    assert fn.state == DocumentState.NEW
    fn.save()
    assert fn.state == DocumentState.SAVED
    assert fn.id and fn.creation_date is not None
    assert fn.status == FunctionStatus.BUILDING
    assert (fn.cpus, fn.memory, fn.timeout, fn.retry_count) == (2.0, 1024, 60, 1)
    assert fn.image == default_image()
    names = stored_bundle(api_server, fn.id).namelist()
    assert "__dlentrypoint__.py" in names
    fn.save()  # nothing to do
    assert Function.get(fn.id).status == FunctionStatus.BUILDING


def test_pickled_function_saves(sdk_user, api_server):
    fn = Function(lambda x: x + 1, name="plus-one")
    fn.save()
    assert "__dlfunction__.pkl" in stored_bundle(api_server, fn.id).namelist()


def test_get_refresh_and_job_statistics(sdk_user):
    fn = make_function()
    fetched = Function.get(fn.id)
    assert fetched.to_dict() == fn.to_dict()
    assert fetched.job_statistics is None
    with_stats = Function.get(fn.id, include=["job.statistics"])
    assert with_stats.job_statistics == {
        "pending": 0,
        "running": 0,
        "success": 0,
        "failure": 0,
        "timeout": 0,
        "canceled": 0,
    }
    fn(1)
    with_stats.refresh()
    assert with_stats.job_statistics["pending"] == 1
    listed = Function.list(include=["job.statistics"]).collect()
    assert listed[0].job_statistics["pending"] == 1


def test_patch_sends_changed_fields(sdk_user):
    fn = make_function(memory=512)
    fn.memory = "4Gi"
    fn.name = "renamed"
    assert fn.state == DocumentState.MODIFIED
    fn.save()
    assert fn.state == DocumentState.SAVED
    again = Function.get(fn.id)
    assert (again.memory, again.name) == (4096, "renamed")
    again.update(maximum_concurrency=3, timeout=30)
    again.save()
    assert Function.get(fn.id).maximum_concurrency == 3


def test_readonly_and_immutable_attributes(sdk_user):
    fn = make_function()
    with pytest.raises(ValueError, match="readonly attribute 'status'"):
        fn.status = FunctionStatus.SUCCESS
    with pytest.raises(ValueError, match="immutable attribute 'image'"):
        fn.image = "python3.12:latest"


def test_validation_errors_name_the_field(sdk_user):
    fn = make_function()
    fn.timeout = -5
    with pytest.raises(ValidationError) as info:
        fn.save()
    assert info.value.status == 422
    assert "timeout" in info.value.errors


def test_not_found_and_other_users_functions(sdk_user, make_user):
    with pytest.raises(NotFoundError):
        Function.get("no-such-function")
    fn = make_function()
    other = make_user()
    compute.configure(token=other.token)
    with pytest.raises(NotFoundError):
        Function.get(fn.id)
    assert Function.search().count() == 0


def test_bad_token_is_an_authentication_error(sdk_user):
    compute.configure(token="not-a-token")
    with pytest.raises(AuthenticationError):
        Function.search().count()


def test_delete_removes_the_function_and_its_jobs(sdk_user):
    fn = make_function()
    job = fn(1)
    function_id = fn.id
    fn.delete()
    assert fn.state == DocumentState.DELETED
    with pytest.raises(NotFoundError):
        Function.get(function_id)
    with pytest.raises(NotFoundError):
        Job.get(job.id)
    with pytest.raises(AttributeError, match="deleted"):
        fn.name  # noqa: B018


def test_search_filter_sort_limit_count_and_paging(sdk_user):
    created = [make_function(name=f"fn-{i}", memory=256 * (i + 1)) for i in range(5)]
    ids = [fn.id for fn in created]
    assert Function.search().count() == 5
    paged = list(Function.list(page_size=2))
    assert [fn.id for fn in paged] == ids
    assert all(fn.state == DocumentState.SAVED for fn in paged)
    newest = Function.search().sort(-Function.creation_date, -Function.id).limit(3).collect()
    assert [fn.id for fn in newest] == ids[::-1][:3]
    assert [fn.id for fn in Function.search().param(page_size=2).limit(3)] == ids[:3]
    big = Function.search().filter(Function.memory >= "1Gi")
    assert big.count() == 2
    assert sorted(fn.name for fn in big) == ["fn-3", "fn-4"]
    either = Function.search().filter((Function.name == "fn-0") | (Function.memory == 768))
    assert sorted(fn.name for fn in either) == ["fn-0", "fn-2"]
    assert Function.search().filter(Function.name.prefix("fn-")).count() == 5
    assert Function.search().filter(Function.name.like("FN-_")).count() == 5
    assert Function.search().filter(Function.name.in_(["fn-1", "fn-4", "x"])).count() == 2
    assert Function.search().filter(Function.status == FunctionStatus.BUILDING).count() == 5
    by_memory = Function.search().sort(-Function.memory).collect()
    assert by_memory.each.name.collect() == [f"fn-{i}" for i in range(4, -1, -1)]


def test_call_submits_one_job(sdk_user):
    fn = Function(double, name="double")
    job = fn(3, key="v")  # saves the function first
    assert fn.state == DocumentState.SAVED
    assert isinstance(job, Job)
    assert job.function_id == fn.id
    assert (job.args, job.kwargs, job.status) == ([3], {"key": "v"}, JobStatus.PENDING)
    assert [j.id for j in fn.jobs] == [job.id]


def test_map_submits_ten_thousand_jobs_in_one_request(sdk_user):
    fn = make_function()
    start = time.perf_counter()
    jobs = fn.map(i for i in range(10_000))
    elapsed = time.perf_counter() - start
    assert len(jobs) == 10_000
    assert [job.args for job in jobs[:3]] == [[0], [1], [2]]
    assert jobs[-1].args == [9_999]
    assert all(job.state == DocumentState.SAVED for job in jobs[:10])
    assert elapsed < 5, elapsed
    assert fn.jobs.count() == 10_000
    start = time.perf_counter()
    built = [Job._from_remote(job.to_dict()) for job in jobs]
    assert time.perf_counter() - start < 1.0
    assert built[5].args == [5]


def test_map_with_kwargs_and_zipped_iterables(sdk_user):
    fn = make_function()
    jobs = fn.map([[1, 2], [3, 4]], iterargs=[{"first": 1}, {"first": 2.0}])
    assert [(job.args, job.kwargs) for job in jobs] == [
        ([1, 2], {"first": 1}),
        ([3, 4], {"first": 2.0}),
    ]
    zipped = fn.map([1, 2], [["a", "b"]])
    assert [job.args for job in zipped] == [[1, "a"], [2, "b"]]


def test_rerun_results_and_build_log(sdk_user, capsys):
    fn = make_function()
    fn.map([1, 2])
    assert fn.rerun() == []
    # one entry per job; pending jobs have no result yet
    assert fn.results() == [None, None]
    assert list(fn.iter_results()) == [None, None]
    assert fn.read_build_log() == ""
    fn.build_log()
    assert capsys.readouterr().out == "\n"


def test_update_credentials(sdk_user):
    Function.update_credentials()


def test_wait_for_completion_times_out_with_short_intervals(sdk_user):
    fn = make_function()
    fn(1)
    start = time.perf_counter()
    with pytest.raises(TimeoutError):
        fn.wait_for_completion(timeout=0.3, interval=0.05)
    assert time.perf_counter() - start < 5


def test_build_failure_is_reported(sdk_user, api_server):
    fn = make_function()
    fail_build(api_server, fn.id)
    with pytest.raises(BuildFailedError, match="failed to build"):
        fn.wait_for_completion(timeout=5, interval=0.05)
    assert fn.status == FunctionStatus.BUILD_FAILED
    with pytest.raises(ConflictError):
        fn(1)


def test_results_rerun_and_completion_after_jobs_finish(sdk_user, api_server, capsys):
    fn = make_function()
    jobs = fn.map(range(4))
    mark_built(api_server, fn.id)
    for job, status in zip(
        jobs, [JobStatus.SUCCESS, JobStatus.FAILURE, JobStatus.SUCCESS, JobStatus.TIMEOUT]
    ):
        result = json.dumps(job.args[0] * 2).encode() if status == JobStatus.SUCCESS else b""
        finish_job(api_server, job, status=status, result=result)
    fn.wait_for_completion(timeout=5, interval=0.05)
    assert fn.status == FunctionStatus.FAILURE
    with pytest.raises(JobFailedError) as info:
        fn.results()
    assert info.value.job_id == jobs[1].id  # the first failure, in submission order
    entries = fn.results(return_exceptions=True)
    assert entries[0] == 0 and entries[2] == 4
    assert [(e.job_id, e.status) for e in (entries[1], entries[3])] == [
        (jobs[1].id, JobStatus.FAILURE),
        (jobs[3].id, JobStatus.TIMEOUT),
    ]
    yielded = fn.iter_results(cast_type=None)
    assert next(yielded) == 0
    with pytest.raises(JobFailedError):
        next(yielded)
    rerun = fn.rerun()
    assert sorted(job.id for job in rerun) == sorted([jobs[1].id, jobs[3].id])
    assert all(job.status == JobStatus.PENDING for job in rerun)
    fn.refresh()
    assert fn.status == FunctionStatus.RUNNING
    with pytest.raises(TimeoutError):
        fn.wait_for_completion(timeout=0.2, interval=0.05)


def test_waiting_sees_a_quick_job_done_quickly(sdk_user, api_server):
    fn = make_function()
    (job,) = fn.map([1])
    mark_built(api_server, fn.id)
    threading.Timer(0.2, finish_job, (api_server, job)).start()
    started = time.monotonic()
    job.wait_for_completion(timeout=30)  # polls every 10 s at most, the published default
    assert job.status == JobStatus.SUCCESS
    # Seen within a few short polls of the finish, not after a 10 s pause.
    assert time.monotonic() - started < 3
