"""Polling a document until it reaches a state, with sub-second intervals and a deadline.

The first polls come quickly and the pause grows to the caller's `interval`: a job that
takes 50 ms is seen done within about that, while one that takes an hour is asked about
every `interval` seconds, as the published client does, after a dozen polls. Where the
service can wait for the state itself (a job's `?wait=`), the first seconds are spent
waiting there instead.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

FIRST_PAUSE_SECONDS = 0.05
PAUSE_GROWTH = 1.5
# How long the service is asked to wait each time, and for how long a wait keeps asking
# that way: long enough for short jobs, short enough that long ones do not hold one of
# the service's few waiting places for their whole run.
SERVER_WAIT_SECONDS = 1.0
SERVER_WAITS_SECONDS = 10.0


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr)


def poll_until(
    document: Any,
    done: Callable[[], bool],
    timeout: float | None,
    interval: float,
    timeout_message: str,
    label: str,
    refresh_waiting: Callable[[float], None] | None = None,
    observe: Callable[[], None] | None = None,
    say: Callable[[str], None] = _to_stderr,
) -> None:
    """Refresh ``document`` until ``done()`` holds, printing status changes; the pause
    between polls starts at 50 ms and grows by half each time, up to ``interval``.

    ``observe`` is called after each refresh (to draw a progress bar), and ``say`` prints
    each status change (to standard error by default; a progress bar prints above itself).

    With ``refresh_waiting`` (a refresh the service answers once the document is done,
    or after the seconds given), the first ``SERVER_WAITS_SECONDS`` of waiting are spent
    in such refreshes, one after another: a short job is seen done as it ends. A service
    that answers at once instead (too many waiting, or one that does not wait) is polled
    as above.
    """
    started = time.monotonic()
    deadline = None if timeout is None else started + timeout
    last = document.status
    next_pause = min(FIRST_PAUSE_SECONDS, interval)
    while True:
        asked = time.monotonic()
        server_wait = 0.0
        if refresh_waiting is not None and asked - started < SERVER_WAITS_SECONDS:
            server_wait = SERVER_WAIT_SECONDS
            if deadline is not None:
                server_wait = min(server_wait, max(deadline - asked, 0))
        if server_wait > 0 and refresh_waiting is not None:
            refresh_waiting(server_wait)
        else:
            document.refresh()
        if observe is not None:
            observe()
        status = document.status
        if status != last:
            say(f"{label} updated from {last} to {status}")
            last = status
        if done():
            return
        if server_wait > 0 and time.monotonic() - asked >= server_wait / 2:
            continue  # the service did wait: ask again at once
        pause, next_pause = next_pause, min(next_pause * PAUSE_GROWTH, interval)
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(timeout_message)
            pause = min(pause, remaining)
        time.sleep(max(pause, 0))
