"""A job's log as the admin pages show it: NDJSON lines read from an offset, and the
attempts its marker lines tell of.

The log is `{"date", "log"}` lines, appended to as attempts end (or as it grows): a
reader that remembers the offset after the last whole line it read asks only for what
came after it. A line is taken only once its newline is there, so a line half written
is read whole on the next poll.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass

from compute.server.blobstore import job_log_key
from compute.server.models import Job
from compute.statuses import JobStatus

from .blobs import read_slice

# The most of a log one page load or poll reads; a longer log is shown from its end.
# Larger than any one line can be (64K characters, escaped), so a read always ends one.
CHUNK_BYTES = 1024 * 1024
# Attempt markers are looked for in logs up to this size (a few attempts' worth).
MARKER_SCAN_BYTES = 32 * 1024 * 1024
ATTEMPT_MARKER = re.compile(r"^\[attempt (\d+)\]$")
# The worker's line on how an attempt that did not succeed ended (worker/jobs.py).
VERDICT_PREFIX = "[job "
# Every line of the worker's own starts so (the job's output may too).
WORKER_LINE = b'"log": "['


@dataclass(frozen=True)
class LogLine:
    date: str
    text: str


@dataclass(frozen=True)
class LogChunk:
    lines: list[LogLine]
    # Where the next read starts: just past the last whole line read.
    next_offset: int
    # Bytes before the first line that were not read (the start of a long log).
    skipped: int
    # The offset asked for lies past the log's end: it was replaced, read it anew.
    reset: bool


@dataclass
class Attempt:
    """One attempt as its log tells it: when its marker was written (it began) and the
    worker's verdict line, if it wrote one (an attempt that did not succeed)."""

    number: int
    started: dt.datetime | None
    ended: dt.datetime | None = None
    verdict: str = ""

    @property
    def seconds(self) -> float | None:
        if self.started is None or self.ended is None:
            return None
        return (self.ended - self.started).total_seconds()


def parse_lines(data: bytes) -> list[LogLine]:
    lines = []
    for raw in data.splitlines():
        try:
            entry = json.loads(raw)
            lines.append(LogLine(str(entry.get("date", "")), str(entry.get("log", ""))))
        except (ValueError, AttributeError):
            lines.append(LogLine("", raw.decode("utf-8", errors="replace")))
    return lines


def read_log(job: Job, offset: int | None) -> LogChunk:
    """The whole lines of `job`'s log after `offset`; for None, the last `CHUNK_BYTES`."""
    key = job_log_key(job.function_id, job.id)
    skipped = 0
    reset = False
    if offset is None:
        size = read_slice(key, 0, 0).size
        offset = skipped = max(0, size - CHUNK_BYTES)
    chunk = read_slice(key, offset, CHUNK_BYTES)
    if offset > chunk.size:
        reset = True
        offset = skipped = max(0, chunk.size - CHUNK_BYTES)
        chunk = read_slice(key, offset, CHUNK_BYTES)
    data = chunk.data
    if skipped:  # started inside a line: begin at the next one
        cut = data.find(b"\n") + 1
        data, offset, skipped = data[cut:], offset + cut, skipped + cut
    whole = data[: data.rfind(b"\n") + 1]
    return LogChunk(parse_lines(whole), offset + len(whole), skipped, reset)


def attempts_of(job: Job) -> list[Attempt]:
    """The attempts `job`'s log tells of (those whose lines it kept), in order; the last
    one of a finished job ends when the job did."""
    found = read_slice(job_log_key(job.function_id, job.id), 0, MARKER_SCAN_BYTES)
    attempts: list[Attempt] = []
    for raw in found.data.splitlines():
        # Only the worker's own lines matter here: skip the job's output unparsed.
        if WORKER_LINE not in raw:
            continue
        (line,) = parse_lines(raw)
        if matched := ATTEMPT_MARKER.match(line.text):
            attempts.append(Attempt(int(matched.group(1)), log_moment(line.date)))
        elif attempts and line.text.startswith(VERDICT_PREFIX):
            attempts[-1].ended = log_moment(line.date)
            attempts[-1].verdict = line.text
    if attempts and job.status in JobStatus.final() and attempts[-1].ended is None:
        attempts[-1].ended = job.end_date
    return attempts


def log_moment(text: str) -> dt.datetime | None:
    """A log line's date (`...Z`) as a moment, for the attempts' durations."""
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
