"""The database schema: users, functions and jobs.

Job state lives here, not in the broker. Each function keeps a count of its jobs per
status, updated in the same statement as the job rows (see `counters.py`), so its status
and `job_statistics` never need a scan of a million job rows.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from compute.statuses import FunctionStatus, JobStatus

from .extensions import Model
from .ids import new_id


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class UTCDateTime(sa.TypeDecorator[dt.datetime]):
    """Stores naive UTC on every database; hands back aware UTC datetimes."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware UTC datetime")
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=dt.timezone.utc)


class BuildState:
    """Where a function's code is on its way to a runnable environment."""

    AWAITING_BUNDLE = FunctionStatus.AWAITING_BUNDLE.value
    BUILDING = FunctionStatus.BUILDING.value
    BUILD_FAILED = FunctionStatus.BUILD_FAILED.value
    BUILT = "built"


STATUS_LENGTH = 16


class User(Model):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    is_admin: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    creation_date: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Function(Model):
    __tablename__ = "functions"
    __table_args__ = (
        sa.Index("ix_functions_owner_created", "owner_id", "creation_date", "id"),
        sa.Index("ix_functions_owner_status", "owner_id", "status", "creation_date", "id"),
        sa.Index("ix_functions_owner_name", "owner_id", "name"),
    )

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True, default=new_id)
    owner_id: Mapped[str] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    creation_date: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    name: Mapped[str] = mapped_column(sa.String(200))
    image: Mapped[str] = mapped_column(sa.String(200))
    cpus: Mapped[float] = mapped_column(sa.Float)
    memory: Mapped[int] = mapped_column(sa.Integer)
    maximum_concurrency: Mapped[int] = mapped_column(sa.Integer)
    timeout: Mapped[int] = mapped_column(sa.Integer)
    retry_count: Mapped[int] = mapped_column(sa.Integer)
    # The wire status, kept in step with build_state and the job counts below.
    status: Mapped[str] = mapped_column(
        sa.String(STATUS_LENGTH), default=FunctionStatus.AWAITING_BUNDLE.value
    )
    build_state: Mapped[str] = mapped_column(
        sa.String(STATUS_LENGTH), default=BuildState.AWAITING_BUNDLE
    )
    build_error: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    bundle_key: Mapped[str | None] = mapped_column(sa.String(300), nullable=True)
    bundle_size: Mapped[int | None] = mapped_column(sa.BigInteger, nullable=True)
    bundle_sha256: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    build_log_key: Mapped[str | None] = mapped_column(sa.String(300), nullable=True)
    pending_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    running_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    success_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    failure_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    timeout_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    canceled_count: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")

    def job_statistics(self) -> dict[str, int]:
        return {status.value: getattr(self, f"{status.value}_count") for status in JobStatus}


class Job(Model):
    __tablename__ = "jobs"
    __table_args__ = (
        sa.Index("ix_jobs_function_created", "function_id", "creation_date", "id"),
        sa.Index("ix_jobs_function_status", "function_id", "status", "creation_date", "id"),
        sa.Index("ix_jobs_owner_created", "owner_id", "creation_date", "id"),
        sa.Index("ix_jobs_owner_status", "owner_id", "status", "creation_date", "id"),
        # The reconciler's sweep for running jobs whose lease ran out.
        sa.Index("ix_jobs_status_lease", "status", "lease_expires_at"),
    )

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True, default=new_id)
    function_id: Mapped[str] = mapped_column(sa.ForeignKey("functions.id", ondelete="CASCADE"))
    # Copied from the function so an owner's job list needs no join.
    owner_id: Mapped[str] = mapped_column(sa.String(32))
    creation_date: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    args: Mapped[Any] = mapped_column(sa.JSON(none_as_null=True), nullable=True)
    kwargs: Mapped[Any] = mapped_column(sa.JSON(none_as_null=True), nullable=True)
    status: Mapped[str] = mapped_column(sa.String(STATUS_LENGTH), default=JobStatus.PENDING.value)
    runtime: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    attempt: Mapped[int] = mapped_column(sa.Integer, default=0)
    error: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    start_date: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    end_date: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    has_result: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    # Which worker process holds the running attempt, and until when (see transitions/attempts.py).
    lease_owner: Mapped[str | None] = mapped_column(sa.String(100), nullable=True)
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Attempts that ended because their worker was lost, not because of the user's code:
    # spent from the service's own budget (LOST_WORKER_RETRIES), never from retry_count.
    lost_count: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    # When the job last became pending without a message known to be published for it
    # (NULL: its message went out). The reconciler re-publishes jobs pending too long.
    enqueued_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # When its owner asked a running attempt to stop (NULL: never). The attempt's worker
    # stops it and records the job `canceled`; a pending job is canceled at once instead.
    cancel_requested_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class SubmissionKind:
    """Which request a submission key came with; each kind has its own key space."""

    BULK = "bulk"  # POST /jobs/bulk with a `reference_id`
    JOB = "job"  # POST /jobs with an `Idempotency-Key` header


SUBMISSION_KEY_LENGTH = 200


class Submission(Model):
    """The jobs one keyed request created, so that a repeat of it creates nothing.

    The unique key is the caller's: a repeat finds this row and answers with its jobs.
    The row is written in the transaction that inserts the jobs, so of two identical
    requests racing each other exactly one commits; the other meets the unique
    constraint and answers from the winner's row. The job ids travel as one JSON list,
    not a row per job, so a 100,000-job map costs one row here.
    """

    __tablename__ = "submissions"
    __table_args__ = (
        sa.UniqueConstraint("owner_id", "kind", "key", name="uq_submissions_owner_kind_key"),
        # Deleting a function deletes its submissions: without an index that is a scan.
        sa.Index("ix_submissions_function", "function_id"),
    )

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True, default=new_id)
    # The caller (who may be an admin submitting to someone else's function).
    owner_id: Mapped[str] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(16))
    key: Mapped[str] = mapped_column(sa.String(SUBMISSION_KEY_LENGTH))
    function_id: Mapped[str] = mapped_column(sa.ForeignKey("functions.id", ondelete="CASCADE"))
    # Of the validated request (function and every job's arguments): a repeat with the
    # same key must match it.
    request_sha256: Mapped[str] = mapped_column(sa.String(64))
    # In submission order.
    job_ids: Mapped[list[str]] = mapped_column(sa.JSON)
    creation_date: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


TOKEN_LABEL_LENGTH = 200


class Token(Model):
    """An issued API token, by the JWT id (`jti`) it carries.

    The row is what makes a token revocable: a token naming a row that is revoked, or
    no row at all, is refused. Tokens issued before tokens were recorded carry no `jti`;
    they are accepted until they expire unless their user has a `TokenCutoff`.
    """

    __tablename__ = "tokens"
    __table_args__ = (sa.Index("ix_tokens_user_created", "user_id", "creation_date"),)

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    creation_date: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # What the operator said the token is for (`compute token create --label`).
    label: Mapped[str | None] = mapped_column(sa.String(TOKEN_LABEL_LENGTH), nullable=True)


class TokenCutoff(Model):
    """When a user's tokens were all revoked: those without a row issued before it are refused.

    Revoking a recorded token marks its row; the tokens issued before tokens were
    recorded have none, so revoking a user's every token also writes this time.
    """

    __tablename__ = "token_cutoffs"

    user_id: Mapped[str] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    not_before: Mapped[dt.datetime] = mapped_column(UTCDateTime)
