"""How a job's process ending becomes its status and reason (`worker.jobs.judge`)."""

from __future__ import annotations

import pytest

from compute import JobStatus
from worker.execution.job_limits import JobLimits
from worker.execution.job_monitor import Ending, ProcessOutcome
from worker.execution.job_result import JobResult
from worker.jobs import Verdict, judge

LIMITS = JobLimits(cpus=1, memory_mb=256, timeout_seconds=2, disk_mb=64)


def ended(
    ending: Ending = Ending.EXITED,
    exit_code: int | None = 1,
    result: bytes | None = None,
    refused: str | None = None,
    failure: str | None = None,
) -> ProcessOutcome:
    returned = None if result is None else JobResult.from_bytes(result)
    return ProcessOutcome(ending, exit_code, returned, 1.0, 10.0, refused, failure)


@pytest.mark.parametrize(
    ("outcome", "verdict"),
    [
        (ended(failure="ValueError: bad tile 17"), ("failure", "ValueError: bad tile 17", True)),
        (ended(exit_code=3), ("failure", "exited with code 3", True)),
        (ended(exit_code=1), ("failure", "exited with code 1", True)),
        (
            ended(exit_code=0),
            ("failure", "exited with code 0 before its function returned", True),
        ),
        (ended(Ending.TIMED_OUT, None), ("timeout", "exceeded its 2 s timeout", False)),
        (
            ended(Ending.TIMED_OUT, None, failure="ValueError: late"),
            ("timeout", "exceeded its 2 s timeout", False),
        ),
        (
            ended(Ending.OUT_OF_MEMORY, -9),
            ("failure", "exceeded its 256 MB memory limit", True),
        ),
        (
            ended(Ending.DISK_EXCEEDED, -25),
            ("failure", "wrote more than its 64 MB of scratch space (COMPUTE_JOB_DISK_MB)", True),
        ),
        (ended(exit_code=0, refused="too big"), ("failure", "too big", False)),
        (ended(exit_code=0, result=b"j1"), ("success", None, False)),
    ],
)
def test_the_reason_names_the_exception_the_limit_or_the_exit_code(
    outcome: ProcessOutcome, verdict: tuple[str, str | None, bool]
) -> None:
    status, error, retryable = verdict
    assert judge(outcome, LIMITS) == Verdict(JobStatus(status), error, retryable)
