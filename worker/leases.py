"""Keep a running attempt's lease alive while it runs, and notice when it is lost.

A worker that stops renewing (killed, crashed, cut off) lets its lease run out, and the
reconciler gives the job to another attempt. If renewal finds the claim already gone,
this attempt was superseded: it must stop at once so that a job never has two live
attempts.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType

import sqlalchemy as sa

from compute.server.transitions import Claim, renew_lease

logger = logging.getLogger(__name__)

# Renewals per lease: two may fail in a row before the lease runs out.
RENEWALS_PER_LEASE = 3


class Heartbeat:
    """A thread renewing `claim`'s lease every third of `lease_seconds`.

    `lost` is set when a renewal finds that the attempt no longer owns the job. A
    database error is not a loss: the renewal is tried again, and the reconciler does
    not expire leases until it has seen the database healthy for a whole lease.
    """

    def __init__(self, engine: sa.Engine, claim: Claim, lease_seconds: float) -> None:
        self.engine = engine
        self.claim = claim
        self.lease_seconds = lease_seconds
        self.lost = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"heartbeat-{claim.job_id}", daemon=True
        )

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stopped.set()
        self._thread.join()

    def _run(self) -> None:
        interval = self.lease_seconds / RENEWALS_PER_LEASE
        while not self._stopped.wait(interval):
            try:
                with self.engine.begin() as connection:
                    owned = renew_lease(connection, self.claim, self.lease_seconds)
            except sa.exc.SQLAlchemyError as error:
                logger.warning("could not renew the lease of job %s: %s", self.claim.job_id, error)
                continue
            if not owned:
                logger.warning(
                    "job %s attempt %d lost its lease to another attempt; stopping it",
                    self.claim.job_id,
                    self.claim.attempt,
                )
                self.lost.set()
                return
