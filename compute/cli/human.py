"""Values as a table shows them: seconds with two decimals, sizes in MB, times to the second.

`--json` prints the service's values untouched; only the tables go through these.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from compute._attributes import parse_datetime


def seconds(value: Any) -> str | None:
    """``0.20s`` for a runtime of 0.19765 seconds; None stays None."""
    if value is None:
        return None
    return f"{float(value):.2f}s"


def megabytes(value: Any) -> str | None:
    """``2048MB`` for a memory size, which the service counts in MB."""
    if value is None:
        return None
    return f"{int(value)}MB"


def moment(value: Any) -> str | None:
    """``2026-01-01T12:00:00Z``: an ISO-8601 UTC time to the second."""
    if value is None:
        return None
    when = value if isinstance(value, dt.datetime) else parse_datetime(value)
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def counts(value: dict[str, int] | None) -> str | None:
    """``pending 0, running 2, success 5``: job counts by status, in the service's order."""
    if value is None:
        return None
    return ", ".join(f"{status} {count}" for status, count in value.items())


def whole_seconds(value: Any) -> str | None:
    """``60s`` for a limit set in whole seconds."""
    if value is None:
        return None
    return f"{int(value)}s"
