"""Polling a document until it reaches a state, with sub-second intervals and a deadline."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any


def poll_until(
    document: Any,
    done: Callable[[], bool],
    timeout: float | None,
    interval: float,
    timeout_message: str,
    label: str,
) -> None:
    """Refresh ``document`` until ``done()`` holds, printing status changes."""
    deadline = None if timeout is None else time.monotonic() + timeout
    last = document.status
    while True:
        document.refresh()
        status = document.status
        if status != last:
            print(f"{label} updated from {last} to {status}", file=sys.stderr)
            last = status
        if done():
            return
        pause = interval
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(timeout_message)
            pause = min(pause, remaining)
        time.sleep(max(pause, 0))
