"""What `compute up` checks before it starts anything: that its worker's jobs can run.

A worker whose jobs cannot reach their work directory, or that has no uid range to run
them under, would take every job and fail it. Better to refuse at once, saying what to
change, than to start a service that only looks healthy.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any


def problems_running_jobs(config: Mapping[str, Any]) -> list[str]:
    """Why this machine's worker could run no job under `config`, with the fix; [] if none."""
    from api.config import first_closed_folder
    from worker.execution.job_user import job_identities

    try:
        identities = job_identities(config)
    except ValueError as error:
        return [f"jobs have no uids to run as: {error}"]
    if not identities.switches:
        return []  # jobs run as this very user, who reaches what it made
    user = identities.representative()
    work_dir = Path(config["WORK_DIR"])
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
