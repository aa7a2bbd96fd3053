"""What `compute up` checks before it starts anything: that its worker's jobs can run.

A worker whose jobs cannot reach their work directory, or that has no uid range to run
them under, would take every job and fail it. Better to refuse at once, saying what to
change, than to start a service that only looks healthy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from compute.server.settings import Settings


def problems_running_jobs(settings: Settings) -> list[str]:
    """Why this machine's worker could run no job with `settings`, with the fix; [] if none."""
    from compute.server.settings import first_closed_folder
    from worker.execution.job_user import job_identities

    try:
        identities = job_identities(settings)
    except ValueError as error:
        return [f"jobs have no uids to run as: {error}"]
    if not identities.switches:
        return []  # jobs run as this very user, who reaches what it made
    user = identities.representative()
    work_dir = settings.work_dir
    existing = next(path for path in (work_dir, *work_dir.parents) if path.exists())
    if user.can_enter(existing):
        return []
    closed = first_closed_folder(existing) or existing  # an ACL may close what modes open
    return [
        f"jobs (uids {identities.first_uid}-{identities.last_uid}) cannot pass through "
        f"{closed} to the work directory {work_dir}: set COMPUTE_WORK_DIR to a folder "
        f"they can reach (under /var/cache, say), or let other users pass through it "
        f"(chmod o+x {closed})"
    ]
