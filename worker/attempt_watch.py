"""What the outside sees of a running attempt: its log as it grows, and its owner's cancel.

While the job runs, its log so far is written to the blob store under the job's log key
every fraction of a second (only when it has new lines, and less often as it grows), so
`job.log(follow=True)` shows lines within a second of their printing; the final write
when the attempt ends is the whole log, as before. Earlier attempts' logs stay in front:
they are read once per attempt. The broker's stop key for the job is checked as often.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from compute.server.blobstore import BlobStore, job_log_key

from .execution.joblog import JobLog

logger = logging.getLogger(__name__)

# How soon a printed line is stored, at the least; a job ending before then writes its
# log once, at its end, as a job without live logs did.
LIVE_LOG_SECONDS = 0.3
# Rewriting a large log costs: it is rewritten at most at this many bytes a second.
LIVE_LOG_BYTES_PER_SECOND = 4 * 1024 * 1024
STOP_CHECK_SECONDS = 0.2


class LiveAttempt:
    """Looked at by the job's monitor a few times a second (`AttemptWatch`)."""

    def __init__(
        self,
        store: BlobStore,
        function_id: str,
        job_id: str,
        log: JobLog,
        stop_asked: Callable[[], bool],
    ) -> None:
        self._store = store
        self._key = job_log_key(function_id, job_id)
        self._log = log
        self._stop_asked = stop_asked
        self._earlier: bytes | None = None
        self._stored_changes = -1
        self.canceled = False
        started = time.monotonic()
        self._next_store = started + LIVE_LOG_SECONDS
        self._next_stop_check = started + STOP_CHECK_SECONDS

    def tick(self) -> None:
        now = time.monotonic()
        if now >= self._next_stop_check:
            self._next_stop_check = now + STOP_CHECK_SECONDS
            self.canceled = self.canceled or self._stop_asked()
        if now >= self._next_store:
            written = self._store_log()
            self._next_store = time.monotonic() + max(
                LIVE_LOG_SECONDS, written / LIVE_LOG_BYTES_PER_SECOND
            )

    def whole_log(self) -> bytes:
        """Earlier attempts' logs and this one's: what the job's log key holds at the end."""
        return self.earlier_log() + self._log.to_bytes()

    def earlier_log(self) -> bytes:
        if self._earlier is None:
            stored = self._store.get(self._key) or b""
            self._earlier = stored
        return self._earlier

    def _store_log(self) -> int:
        """Write the log so far if it has changed; return its size."""
        changes = self._log.changes
        if changes == self._stored_changes:
            return 0
        try:
            body = self.whole_log()
            self._store.put(self._key, body)
        except Exception as error:  # noqa: BLE001 - a live log is a convenience: the job goes on
            logger.warning("could not store the live log of %s: %s", self._key, error)
            return 0
        self._stored_changes = changes
        return len(body)
