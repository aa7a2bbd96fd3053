"""A job's log: NDJSON lines `{"date": "...Z", "log": "..."}`, capped in size.

Each attempt starts with a marker line, so retries keep every attempt's output apart.
The job's output is kept up to the cap; past it, output is only counted, and the log
keeps one marker line, where the output stopped, saying how much was dropped: a job
that prints a gigabyte fills neither memory, nor the disk, nor the database. The
worker's own lines (the attempt marker, the verdict) are always kept.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
MAX_LINE_CHARS = 64 * 1024
# The most bytes of one line read at a time: MAX_LINE_CHARS of any UTF-8 text.
MAX_LINE_BYTES = 4 * MAX_LINE_CHARS
LINE_TRUNCATED = " [line truncated]"


def log_timestamp(moment: dt.datetime | None = None) -> str:
    moment = moment or dt.datetime.now(dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _entry(text: str, moment: dt.datetime | None, truncated: bool = False) -> bytes:
    text = text.rstrip("\r\n")
    if truncated or len(text) > MAX_LINE_CHARS:
        text = text[:MAX_LINE_CHARS] + LINE_TRUNCATED
    return json.dumps({"date": log_timestamp(moment), "log": text}).encode() + b"\n"


class JobLog:
    """Collects timestamped lines from several threads, up to `max_bytes` of job output."""

    def __init__(
        self, max_bytes: int = DEFAULT_MAX_BYTES, redact: Callable[[str], str] | None = None
    ) -> None:
        self.max_bytes = max_bytes
        # Hides the operator's secret values should a job print one (it cannot read them).
        self._redact = redact
        self._chunks: list[bytes] = []
        self._output_bytes = 0
        self._dropped_lines = 0
        self._cut_at: int | None = None  # where in `_chunks` the output stopped being kept
        self._changes = 0
        self._lock = threading.Lock()

    @property
    def changes(self) -> int:
        """How many lines have been added or dropped so far: a reader of the log as it
        grows compares it with what it saw last."""
        return self._changes

    @property
    def full(self) -> bool:
        """Whether job output is no longer kept, only counted."""
        return self._cut_at is not None

    def add(self, text: str, moment: dt.datetime | None = None) -> None:
        """Add a line of the worker's own, such as the attempt marker: never dropped."""
        line = _entry(text, moment)
        with self._lock:
            self._chunks.append(line)
            self._changes += 1

    def add_output(
        self, text: str, moment: dt.datetime | None = None, truncated: bool = False
    ) -> None:
        """Add a line the job printed, unless the output has reached the cap.

        Args:
            truncated: the line was cut short on reading; it is marked so.
        """
        if self._redact is not None:
            text = self._redact(text)
        line = _entry(text, moment, truncated)
        with self._lock:
            self._changes += 1
            if self._cut_at is None and self._output_bytes + len(line) <= self.max_bytes:
                self._chunks.append(line)
                self._output_bytes += len(line)
                return
            if self._cut_at is None:
                self._cut_at = len(self._chunks)
            self._dropped_lines += 1

    def drop(self, lines: int) -> None:
        """Count `lines` of output that were read past the cap and not kept."""
        with self._lock:
            self._dropped_lines += lines
            self._changes += 1

    def to_bytes(self) -> bytes:
        with self._lock:
            chunks = list(self._chunks)
            if self._cut_at is not None:
                marker = _entry(
                    f"[log truncated: {self._dropped_lines} more lines were dropped "
                    f"after {self.max_bytes} bytes]",
                    None,
                )
                chunks.insert(self._cut_at, marker)
            return b"".join(chunks)
