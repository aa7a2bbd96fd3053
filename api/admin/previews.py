"""A job's result as the admin pages show it: its size, and a preview of JSON text.

Results are whatever the job returned, pickled unless it was JSON; unpickling runs code
of the job's choosing, so nothing here ever unpickles. A result is previewed only when
it decodes as UTF-8 JSON, which reading cannot execute; anything else is "binary".
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from compute.server.blobstore import job_result_key
from compute.server.models import Job

from .blobs import read_slice
from .formatting import shown_json

# Larger results are not read to be previewed: a preview of the first part of a JSON
# text is not JSON, and the page has room for a short one only.
PREVIEW_READ_BYTES = 1024 * 1024


@dataclass(frozen=True)
class ResultPreview:
    size: int
    # "json", "binary", or "large" (JSON or not, too large to read for a preview).
    kind: str
    text: str = ""


def result_preview(job: Job) -> ResultPreview | None:
    """What to show of `job`'s result; None when it has none."""
    if not job.has_result:
        return None
    found = read_slice(job_result_key(job.function_id, job.id), 0, PREVIEW_READ_BYTES + 1)
    if found.size > PREVIEW_READ_BYTES:
        return ResultPreview(found.size, "large")
    try:
        value = json.loads(found.data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return ResultPreview(found.size, "binary")
    return ResultPreview(found.size, "json", shown_json(value))
