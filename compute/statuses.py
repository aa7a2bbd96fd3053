"""The status enums of the Compute v1 protocol, defined once for the SDK, API and worker."""

from __future__ import annotations

from strenum import StrEnum


class FunctionStatus(StrEnum):
    """The status of a Function, as the wire protocol spells it."""

    AWAITING_BUNDLE = "awaiting_bundle"
    BUILDING = "building"
    BUILD_FAILED = "build_failed"
    RUNNING = "running"
    SUCCESS = "success"
    FAILURE = "failure"


class JobStatus(StrEnum):
    """The status of a Job, as the wire protocol spells it."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    FAILURE = "failure"
    TIMEOUT = "timeout"
    # Stopped by its owner (`Job.cancel`). Not a status of the published protocol: clients
    # that do not declare it (see `api/wire.py`) read such a job as a `failure`.
    CANCELED = "canceled"

    @classmethod
    def final(cls) -> frozenset[JobStatus]:
        """The statuses a job does not leave without a rerun."""
        return frozenset({cls.SUCCESS, cls.FAILURE, cls.TIMEOUT, cls.CANCELED})

    @classmethod
    def unsuccessful(cls) -> frozenset[JobStatus]:
        """The final statuses that `rerun` resubmits."""
        return frozenset({cls.FAILURE, cls.TIMEOUT, cls.CANCELED})
