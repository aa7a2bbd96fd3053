"""Return values travel back in their protocol encoding: JSON, bytes, serialize(), None."""

from __future__ import annotations

from compute import Function, JobStatus, Serializable
from tests.conftest import ApiClient
from tests.worker import functions
from worker.execution.job_result import SPOOL_MEMORY_BYTES


class Point(Serializable):
    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y

    def serialize(self) -> bytes:
        return f"{self.x},{self.y}".encode()

    @classmethod
    def deserialize(cls, data: bytes) -> Point:
        x, y = data.decode().split(",")
        return cls(int(x), int(y))


def _run(function, *args):  # noqa: ANN001, ANN202 - any function, its finished job
    fn = Function(function, name=function.__name__, timeout=60)
    fn.save()
    job = fn(*args)
    job.wait_for_completion(timeout=120, interval=0.1)
    assert job.status == JobStatus.SUCCESS, "\n".join(job.iter_log())
    return job


def test_json_result_round_trips(exec_user: ApiClient) -> None:
    job = _run(functions.returns_json)
    assert job.result() == {"numbers": [1, 2.5, -3], "text": "héllo", "nothing": None, "flag": True}


def test_bytes_result_is_the_raw_body(exec_user: ApiClient) -> None:
    job = _run(functions.returns_bytes)
    assert exec_user.get(f"/jobs/{job.id}/result").content == bytes(range(256))
    assert job.result() == bytes(range(256))


def test_serialized_result_is_read_back_with_cast_type(exec_user: ApiClient) -> None:
    job = _run(functions.returns_serializable, 3, 4)
    assert exec_user.get(f"/jobs/{job.id}/result").content == b"3,4"
    point = job.result(cast_type=Point)
    assert isinstance(point, Point) and (point.x, point.y) == (3, 4)


def test_none_result_is_an_empty_body(exec_user: ApiClient) -> None:
    job = _run(functions.returns_none)
    response = exec_user.get(f"/jobs/{job.id}/result")
    assert response.status_code == 200 and response.content == b""
    assert job.result() is None


def test_a_large_result_is_stored_and_served_whole(exec_user: ApiClient) -> None:
    # Past what the worker keeps in memory: spooled to its disk and streamed to the store.
    size = 3 * SPOOL_MEMORY_BYTES + 1
    job = _run(functions.returns_pattern, size)
    assert exec_user.get(f"/jobs/{job.id}/result").content == functions.returns_pattern(size)
