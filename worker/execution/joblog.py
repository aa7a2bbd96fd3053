"""A job's log: NDJSON lines `{"date": "...Z", "log": "..."}`, capped in size.

Each attempt starts with a marker line, so retries keep every attempt's output apart.
Past the cap the log keeps one marker line saying how much was dropped, so a job that
prints a gigabyte fills neither the disk nor the database.
"""

from __future__ import annotations

import datetime as dt
import json
import threading

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
MAX_LINE_CHARS = 64 * 1024


def log_timestamp(moment: dt.datetime | None = None) -> str:
    moment = moment or dt.datetime.now(dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class JobLog:
    """Collects timestamped lines from several threads, up to `max_bytes` of NDJSON."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._chunks: list[bytes] = []
        self._size = 0
        self._dropped_lines = 0
        self._lock = threading.Lock()

    def add(self, text: str, moment: dt.datetime | None = None) -> None:
        text = text.rstrip("\r\n")
        if len(text) > MAX_LINE_CHARS:
            text = text[:MAX_LINE_CHARS] + " [line truncated]"
        line = json.dumps({"date": log_timestamp(moment), "log": text}).encode() + b"\n"
        with self._lock:
            if self._size + len(line) > self.max_bytes:
                self._dropped_lines += 1
                return
            self._chunks.append(line)
            self._size += len(line)

    def to_bytes(self) -> bytes:
        with self._lock:
            data = b"".join(self._chunks)
            if self._dropped_lines:
                marker = {
                    "date": log_timestamp(),
                    "log": f"[log truncated: {self._dropped_lines} more lines were dropped "
                    f"after {self.max_bytes} bytes]",
                }
                data += json.dumps(marker).encode() + b"\n"
            return data
