"""Keep a running attempt's lease alive while it runs, and notice when it is lost.

A worker that stops renewing (killed, crashed, cut off) lets its lease run out, and the
reconciler gives the job to another attempt. If renewal finds the claim already gone,
this attempt was superseded: it must stop at once so that a job never has two live
attempts.

One thread per worker process renews every lease the process holds: starting and
joining a thread for each job cost more than a no-op job's own work.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType

import sqlalchemy as sa

from compute.server.transitions import Claim, renew_lease

from .execution.process_local import ProcessLocal

logger = logging.getLogger(__name__)

# Renewals per lease: two may fail in a row before the lease runs out.
RENEWALS_PER_LEASE = 3


@dataclass(eq=False)
class Heartbeat:
    """Renews `claim`'s lease every third of `lease_seconds` while its block runs.

    `lost` is set when a renewal finds that the attempt no longer owns the job. A
    database error is not a loss: the renewal is tried again, and the reconciler does
    not expire leases until it has seen the database healthy for a whole lease.
    """

    engine: sa.Engine
    claim: Claim
    lease_seconds: float
    lost: threading.Event = field(default_factory=threading.Event)
    stopped: threading.Event = field(default_factory=threading.Event)
    due: float = 0.0

    def __enter__(self) -> Heartbeat:
        self.due = time.monotonic() + self.lease_seconds / RENEWALS_PER_LEASE
        _keeper().add(self)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stopped.set()
        _keeper().remove(self)

    def renew(self) -> None:
        """One renewal; sets `lost` when another attempt owns the job now."""
        self.due = time.monotonic() + self.lease_seconds / RENEWALS_PER_LEASE
        try:
            with self.engine.begin() as connection:
                owned = renew_lease(connection, self.claim, self.lease_seconds)
        except sa.exc.SQLAlchemyError as error:
            logger.warning("could not renew the lease of job %s: %s", self.claim.job_id, error)
            return
        if not owned and not self.stopped.is_set():
            logger.warning(
                "job %s attempt %d no longer owns its job (deleted, or recovered for "
                "another attempt); stopping it",
                self.claim.job_id,
                self.claim.attempt,
            )
            self.lost.set()


class LeaseKeeper:
    """The thread of one process that renews each of its heartbeats when it falls due."""

    def __init__(self) -> None:
        self._beats: set[Heartbeat] = set()
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)
        self._thread.start()

    def add(self, beat: Heartbeat) -> None:
        with self._changed:
            self._beats.add(beat)
            self._changed.notify()

    def remove(self, beat: Heartbeat) -> None:
        # A renewal under way for it finishes first: its outcome no longer matters.
        with self._changed:
            self._beats.discard(beat)

    def _run(self) -> None:
        while True:
            with self._changed:
                now = time.monotonic()
                due = [beat for beat in self._beats if beat.due <= now and not beat.lost.is_set()]
                if not due:
                    waiting = [beat.due for beat in self._beats if not beat.lost.is_set()]
                    self._changed.wait(timeout=min(waiting) - now if waiting else None)
                    continue
            for beat in due:
                beat.renew()


# A pool process forked from the worker starts its own.
_keeper = ProcessLocal(LeaseKeeper).get
