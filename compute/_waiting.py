"""Polling a document until it reaches a state, with sub-second intervals and a deadline.

The first polls come quickly and the pause grows to the caller's `interval`: a job that
takes 50 ms is seen done within about that, while one that takes an hour is asked about
every `interval` seconds, as the published client does, after a dozen polls.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

FIRST_PAUSE_SECONDS = 0.05
PAUSE_GROWTH = 1.5


def poll_until(
    document: Any,
    done: Callable[[], bool],
    timeout: float | None,
    interval: float,
    timeout_message: str,
    label: str,
) -> None:
    """Refresh ``document`` until ``done()`` holds, printing status changes; the pause
    between polls starts at 50 ms and grows by half each time, up to ``interval``."""
    deadline = None if timeout is None else time.monotonic() + timeout
    last = document.status
    next_pause = min(FIRST_PAUSE_SECONDS, interval)
    while True:
        document.refresh()
        status = document.status
        if status != last:
            print(f"{label} updated from {last} to {status}", file=sys.stderr)
            last = status
        if done():
            return
        pause, next_pause = next_pause, min(next_pause * PAUSE_GROWTH, interval)
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(timeout_message)
            pause = min(pause, remaining)
        time.sleep(max(pause, 0))
