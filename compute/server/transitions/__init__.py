"""Every change of a job's or a function's state, and the counters that follow it.

A job is `pending` when submitted, rerun, released for another attempt or recovered
from a lost worker; `running` while an attempt holds its lease; and ends `success`,
`failure`, `timeout` or `canceled` (at once when pending; by its worker when running).
A function moves `awaiting_bundle` -> `building` -> `built` or
`build_failed`. Each function row also keeps one count per job status and the status
the wire shows, derived from its build state and those counts.

Nothing else writes a job's status, a function's build state or its counts: each
transition here is one conditional statement (or a few in one transaction) that moves
the rows and applies the count deltas through `counts.record_job_changes`, so racing
API requests and workers on any number of machines agree.
"""

from .attempts import (
    Claim,
    ClaimRefusal,
    LostAttempt,
    claim_job,
    finish_and_claim,
    finish_job,
    recover_lost_attempt,
    release_for_retry,
    renew_lease,
)
from .bulk import (
    NewJob,
    delete_function,
    delete_job,
    fail_pending_jobs,
    insert_jobs,
    reset_for_rerun,
)
from .cancels import CANCELED_REASON, Canceled, cancel_jobs
from .counts import set_build_state

__all__ = [
    "CANCELED_REASON",
    "Canceled",
    "cancel_jobs",
    "Claim",
    "ClaimRefusal",
    "LostAttempt",
    "NewJob",
    "claim_job",
    "delete_function",
    "delete_job",
    "fail_pending_jobs",
    "finish_and_claim",
    "finish_job",
    "insert_jobs",
    "recover_lost_attempt",
    "release_for_retry",
    "renew_lease",
    "reset_for_rerun",
    "set_build_state",
]
