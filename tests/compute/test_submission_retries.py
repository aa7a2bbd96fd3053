"""The SDK's job submissions carry a key and are sent again after transient failures.

`Function.map` sends a fresh `reference_id` per call and `Job.save` (so `fn(x)`) a fresh
`Idempotency-Key`; both repeat their POST after a lost answer or a 502/503/504, and the
service creates the jobs once. Faults are injected by a transport in front of the real
API; everything else is the real SDK against the real service.
"""

from __future__ import annotations

import io
import json
import uuid
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from requests.adapters import HTTPAdapter
from urllib3 import HTTPResponse

import compute
from compute import Function, ServerError

LOST = "lost answer"
UNAVAILABLE = "503"
SLOW_DOWN = "503 with Retry-After"


class FaultyTransport(HTTPAdapter):
    """Forwards every request to the API, first injecting the planned faults.

    `faults` maps (method, path under the base URL) to the faults of its next sends, in
    order: `UNAVAILABLE` answers 503 without reaching the API, `LOST` lets the API handle
    the request and then drops its answer.
    """

    def __init__(self, faults: dict[tuple[str, str], list[str]]) -> None:
        super().__init__()
        self.faults = faults
        self.sent: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        path = str(request.url).split("/compute/v1", 1)[-1].split("?")[0]
        self.sent.append(request)
        planned = self.faults.get((str(request.method), path))
        fault = planned.pop(0) if planned else None
        if fault in (UNAVAILABLE, SLOW_DOWN):
            headers = {"Content-Type": "application/json"}
            if fault == SLOW_DOWN:
                headers["Retry-After"] = "2"
            body = json.dumps({"detail": "briefly unavailable", "errors": {}}).encode()
            raw = HTTPResponse(
                body=io.BytesIO(body), status=503, headers=headers, preload_content=False
            )
            return self.build_response(request, raw)
        response = super().send(request, **kwargs)
        if fault == LOST:
            response.close()
            raise requests.ConnectionError("connection reset before the answer arrived")
        return response

    def bodies(self, method: str, path: str) -> list[dict[str, Any]]:
        return [json.loads(request.body or b"{}") for request in self.matching(method, path)]

    def matching(self, method: str, path: str) -> list[requests.PreparedRequest]:
        return [
            request
            for request in self.sent
            if request.method == method and str(request.url).endswith("/compute/v1" + path)
        ]


class Pauses:
    """Stands in for the `time` module of the client: records pauses instead of sleeping."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.seconds.append(seconds)


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> Pauses:
    recorded = Pauses()
    monkeypatch.setattr("compute._client.time", recorded)
    return recorded


@pytest.fixture
def faulty(sdk_user: Any, api_server: Any) -> FaultyTransport:
    """The default client's transport: pass faults with `faulty.faults[...] = [...]`."""
    transport = FaultyTransport({})
    session = requests.Session()
    session.mount("http://", transport)
    compute.configure(url=api_server.base_url, token=sdk_user.token, session=session)
    return transport


def double(x: int) -> int:
    return x * 2


def submissions(api_server: Any, function_id: str) -> list[tuple[str, str, list[str]]]:
    """(kind, key, job ids) of the function's stored submissions."""
    from compute.server.extensions import db
    from compute.server.models import Submission

    with api_server.app.app_context():
        rows = db.session.execute(
            sa.select(Submission.kind, Submission.key, Submission.job_ids)
            .where(Submission.function_id == function_id)
            .order_by(Submission.creation_date, Submission.id)
        ).all()
        db.session.rollback()
    return [tuple(row) for row in rows]


def saved(**fields: Any) -> Function:
    fn = Function(double, name="double", **fields)
    fn.save()
    return fn


def test_map_sends_a_fresh_reference_id_per_call(
    faulty: FaultyTransport, api_server: Any, pauses: Pauses
) -> None:
    fn = saved()
    first = fn.map([1, 2, 3])
    second = fn.map([1, 2, 3])
    references = [body["reference_id"] for body in faulty.bodies("POST", "/jobs/bulk")]
    assert len(references) == 2 and references[0] != references[1]
    assert all(uuid.UUID(reference).version == 4 for reference in references)
    assert submissions(api_server, fn.id) == [
        ("bulk", references[0], [job.id for job in first]),
        ("bulk", references[1], [job.id for job in second]),
    ]
    assert pauses.seconds == []


def test_map_after_a_lost_answer_creates_its_jobs_once(
    faulty: FaultyTransport, pauses: Pauses
) -> None:
    fn = saved()
    faulty.faults[("POST", "/jobs/bulk")] = [LOST]
    jobs = fn.map([[1], [2], [3]])
    sent = faulty.bodies("POST", "/jobs/bulk")
    assert len(sent) == 2 and sent[0] == sent[1]
    assert [job.args for job in jobs] == [[1], [2], [3]]
    assert fn.jobs.count() == 3
    assert pauses.seconds == [0.2]


def test_map_is_repeated_after_503_answers(faulty: FaultyTransport, pauses: Pauses) -> None:
    fn = saved()
    faulty.faults[("POST", "/jobs/bulk")] = [UNAVAILABLE, SLOW_DOWN]
    jobs = fn.map(range(5))
    assert len(faulty.matching("POST", "/jobs/bulk")) == 3
    assert len(jobs) == 5 and fn.jobs.count() == 5
    # The backoff, then the service's own Retry-After.
    assert pauses.seconds == [0.2, 2.0]


def test_repeats_give_up_with_the_last_answer(faulty: FaultyTransport, pauses: Pauses) -> None:
    fn = saved()
    faulty.faults[("POST", "/jobs/bulk")] = [UNAVAILABLE] * 4
    with pytest.raises(ServerError) as info:
        fn.map([1])
    assert info.value.status == 503
    assert len(faulty.matching("POST", "/jobs/bulk")) == 4
    assert pauses.seconds == [0.2, 0.4, 0.8]
    assert fn.jobs.count() == 0


def test_a_call_sends_an_idempotency_key_and_creates_its_job_once(
    faulty: FaultyTransport, api_server: Any, pauses: Pauses
) -> None:
    fn = saved()
    faulty.faults[("POST", "/jobs")] = [LOST, UNAVAILABLE]
    job = fn(21)
    keys = [request.headers["Idempotency-Key"] for request in faulty.matching("POST", "/jobs")]
    assert len(keys) == 3 and len(set(keys)) == 1
    assert uuid.UUID(keys[0]).version == 4
    assert job.args == [21]
    assert [j.id for j in fn.jobs] == [job.id]
    assert submissions(api_server, fn.id) == [("job", keys[0], [job.id])]
    other = fn(21)
    assert other.id != job.id
    assert faulty.matching("POST", "/jobs")[-1].headers["Idempotency-Key"] != keys[0]


def test_other_posts_are_not_repeated(faulty: FaultyTransport, pauses: Pauses) -> None:
    fn = saved()
    faulty.faults[("POST", "/jobs/rerun")] = [UNAVAILABLE]
    with pytest.raises(ServerError):
        fn.rerun()
    assert len(faulty.matching("POST", "/jobs/rerun")) == 1
    assert pauses.seconds == []
