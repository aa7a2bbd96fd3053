from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from compute import DocumentState, Function, Job, JobStatus
from compute._attributes import parse_datetime


def saved_job(**fields):
    data = {"id": "j1", "function_id": "f1", "status": "pending", **fields}
    return Job(**data, saved=True)


def test_new_job_state_and_to_dict():
    job = Job("f1", args=(1, 2), kwargs={"a": 1})
    assert job.state == DocumentState.NEW
    assert job.args == [1, 2]
    assert job.to_dict(exclude_none=True) == {
        "function_id": "f1",
        "args": [1, 2],
        "kwargs": {"a": 1},
    }
    assert set(job.to_dict()) == {
        "id",
        "function_id",
        "creation_date",
        "args",
        "kwargs",
        "runtime",
        "status",
        "error",
    }


def test_saved_document_tracks_modifications():
    job = saved_job(args=[1])
    assert job.state == DocumentState.SAVED
    assert not job.is_modified
    job.args = [1]  # the same value is not a change
    assert not job.is_modified
    job.args = [2]
    assert job.is_modified
    assert job.state == DocumentState.MODIFIED
    assert job.to_dict(only_modified=True) == {"args": [2]}


def test_readonly_attribute_cannot_be_assigned():
    job = saved_job()
    with pytest.raises(ValueError, match="readonly attribute 'status'"):
        job.status = JobStatus.SUCCESS
    with pytest.raises(ValueError, match="readonly attribute 'id'"):
        Job("f1", id="mine")


def test_immutable_attribute_can_be_set_once():
    fn = Function(name="f")
    fn.image = "python3.11:latest"
    with pytest.raises(ValueError, match="immutable attribute 'image'"):
        fn.image = "python3.12:latest"
    job = saved_job()
    with pytest.raises(ValueError, match="immutable attribute 'function_id'"):
        job.function_id = "other"


def test_exclude_readonly():
    job = saved_job()
    assert set(job.to_dict(exclude_readonly=True)) == {"function_id", "args", "kwargs"}


def test_update_sets_several_attributes_and_checks_names():
    fn = Function(name="a")
    fn.update(name="b", memory="2Gi", cpus="2VCPUs")
    assert (fn.name, fn.memory, fn.cpus) == ("b", 2048, 2.0)
    with pytest.raises(ValueError, match="no attribute 'colour'"):
        fn.update(colour="red")
    fn.update(ignore_missing=True, colour="red", timeout="30")
    assert fn.timeout == 30


def test_type_coercion_errors_name_the_attribute():
    fn = Function(name="a")
    with pytest.raises(ValueError, match="timeout"):
        fn.timeout = "soon"


def test_unknown_server_fields_are_kept():
    job = saved_job(priority=3, saved_by="x")
    assert job.priority == 3
    assert "priority" not in job.to_dict()
    with pytest.raises(AttributeError):
        job.missing  # noqa: B018


def test_unknown_server_status_does_not_break_loading():
    job = saved_job(status="paused")
    assert job.status == "paused"


def test_status_is_the_enum():
    job = saved_job(status="success")
    assert job.status is JobStatus.SUCCESS


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-02T03:04:05.123456Z",
        "2026-01-02T03:04:05.123456+00:00",
        "2026-01-02T05:04:05.123456+02:00",
        "2026-01-02T03:04:05.123456",
    ],
)
def test_datetimes_parse_with_any_utc_spelling(text):
    expected = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc)
    assert parse_datetime(text) == expected
    assert saved_job(creation_date=text).creation_date == expected


def test_datetimes_with_short_fractions_parse():
    assert parse_datetime("2026-01-02T03:04:05.1Z").microsecond == 100000
    assert parse_datetime("2026-01-02T03:04:05Z").tzinfo is not None


def test_datetime_serializes_as_utc_iso():
    when = datetime(2026, 1, 2, 5, 0, tzinfo=timezone(timedelta(hours=2)))
    job = saved_job(creation_date=when)
    assert job.to_dict()["creation_date"] == "2026-01-02T03:00:00+00:00"


def test_deleted_document_refuses_attribute_access():
    job = saved_job()
    job._deleted = True
    assert job.state == DocumentState.DELETED
    with pytest.raises(AttributeError, match="deleted"):
        job.id  # noqa: B018


def test_unsaved_documents_cannot_be_deleted_or_refreshed():
    with pytest.raises(ValueError, match="not been saved"):
        Job("f1").delete()
    with pytest.raises(ValueError, match="not been saved"):
        Function(name="x").refresh()


def test_function_name_defaults_to_the_function():
    def shout():
        return "!"

    assert Function(shout).name == "shout"
    assert Function("pkg.mod.func").name == "func"
    assert Function(shout, name="loud").name == "loud"


def test_function_from_service_data():
    fn = Function(id="f1", name="n", cpus=1, memory=2048, status="building", saved=True)
    assert fn.state == DocumentState.SAVED
    assert fn.cpus == 1.0 and isinstance(fn.memory, int)
    fn.memory = "4Gi"
    assert fn.to_dict(only_modified=True) == {"memory": 4096}
