"""Idempotent submission: a key names one submission, and a repeat gets its jobs back.

A client sends a key with a submission (`reference_id` in a bulk body, an
`Idempotency-Key` header on a single job) so that repeating the request, after a lost
answer or a 5xx, creates nothing. The key is the caller's: it names one request (the
function and every job's arguments) and the jobs that request created. A repeat of the
same request answers with those jobs as they are now, minus any deleted since; the same
key with another request is a 409 naming the key. Deleting the function frees its keys.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from compute.server.extensions import DbSession
from compute.server.models import Job, Submission

from .errors import Conflict
from .ownership import owner_scope


@dataclass(frozen=True)
class SubmissionKey:
    """A client's key for one submission, and the name it sent it under (for errors)."""

    kind: str
    value: str
    field: str


def request_sha256(function_id: str, calls: list[tuple[Any, Any]]) -> str:
    """A digest of a validated submission; equal for requests that create the same jobs."""
    # Keys sorted: {"a": 1, "b": 2} and {"b": 2, "a": 1} are the same keyword arguments.
    canonical = json.dumps([function_id, calls], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def find_submission(session: DbSession, owner_id: str, key: SubmissionKey) -> Submission | None:
    """The caller's earlier submission under `key`, if any."""
    return session.scalar(
        sa.select(Submission).where(
            Submission.owner_id == owner_id,
            Submission.kind == key.kind,
            Submission.key == key.value,
        )
    )


def record_submission(
    session: DbSession, owner_id: str, key: SubmissionKey, function_id: str, digest: str
) -> Submission:
    """Claim `key` in the current transaction, before any job is inserted.

    Raises:
        IntegrityError: Another request holds the key; on PostgreSQL this waits for that
            request's transaction to end, on SQLite for its write lock.
    """
    submission = Submission(
        owner_id=owner_id,
        kind=key.kind,
        key=key.value,
        function_id=function_id,
        request_sha256=digest,
        job_ids=[],
    )
    session.add(submission)
    # Flushed now, so a losing racer fails here instead of after inserting its jobs.
    session.flush()
    return submission


def replay(
    session: DbSession, submission: Submission, key: SubmissionKey, digest: str
) -> list[Job]:
    """The jobs `submission` created that still exist, in submission order.

    Raises:
        Conflict: The key was used for a different request.
    """
    if submission.request_sha256 != digest:
        raise Conflict(
            f"The {key.field} {key.value!r} was already used for a different submission.",
            {key.field: ["was already used for a different submission"]},
        )
    ids: list[str] = submission.job_ids
    if not ids:
        return []
    # One range scan of the primary key, not thousands of IN lists: one submission's ids
    # come from one `new_ids` call, so only ids minted in the same millisecond by another
    # process can fall between its first and last, and the lookup below drops them.
    statement = sa.select(Job).where(Job.id.between(min(ids), max(ids)), owner_scope(Job))
    found = {job.id: job for job in session.scalars(statement)}
    return [found[job_id] for job_id in ids if job_id in found]
