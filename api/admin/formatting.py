"""How the admin pages show values: dates, durations, sizes and stored JSON."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from compute.server.stored_json import Unreadable

JSON_PREVIEW_CHARS = 2000


def when(moment: dt.datetime | None) -> str:
    """A UTC moment to the second, as a laptop screen has room for; "—" for none."""
    if moment is None:
        return "—"
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def iso(moment: dt.datetime | None) -> str:
    """The machine-readable form for `<time datetime=...>`."""
    return "" if moment is None else moment.astimezone(dt.timezone.utc).isoformat()


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {rest:02d}s" if hours else f"{minutes}m {rest:02d}s"


def size(count: int | None) -> str:
    if count is None:
        return "—"
    if count < 1024:
        return f"{count} bytes"
    if count < 1024 * 1024:
        return f"{count / 1024:.1f} KiB"
    return f"{count / (1024 * 1024):.1f} MiB"


def shown_json(value: Any, limit: int = JSON_PREVIEW_CHARS) -> str:
    """Stored arguments as indented JSON, cut at `limit` characters."""
    if isinstance(value, Unreadable):
        return f"(cannot be shown: {value.reason})"
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[:limit] + "\n… (cut)"


def shorten(text: str | None, limit: int = 120) -> str:
    if not text:
        return ""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


TEMPLATE_HELPERS = {
    "when": when,
    "iso": iso,
    "duration": duration,
    "size": size,
    "shown_json": shown_json,
    "shorten": shorten,
}
