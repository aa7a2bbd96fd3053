"""The job log keeps output up to its cap, marks where it stopped, and keeps the worker's lines."""

from __future__ import annotations

import json

from worker.execution.joblog import MAX_LINE_CHARS, JobLog


def texts(log: JobLog) -> list[str]:
    return [json.loads(line)["log"] for line in log.to_bytes().splitlines()]


def test_output_past_the_cap_is_counted_and_marked_where_it_stopped() -> None:
    log = JobLog(max_bytes=300)
    log.add("[attempt 1]")
    for number in range(10):
        log.add_output(f"line {number}\n")
    log.drop(5)  # read past the cap without being formatted
    log.add("[job failure: exceeded its 1 s timeout]")
    lines = texts(log)
    kept = lines[1:-2]
    assert kept == [f"line {number}" for number in range(len(kept))]
    dropped = 10 - len(kept) + 5
    assert lines[-2] == f"[log truncated: {dropped} more lines were dropped after 300 bytes]"
    assert lines[-1] == "[job failure: exceeded its 1 s timeout]"
    assert log.full


def test_after_the_first_dropped_line_no_output_is_kept() -> None:
    log = JobLog(max_bytes=200)
    log.add_output("x" * 150)
    log.add_output("short")
    assert texts(log) == ["[log truncated: 2 more lines were dropped after 200 bytes]"]


def test_the_workers_own_lines_are_never_dropped() -> None:
    log = JobLog(max_bytes=10)
    log.add("[attempt 2]")
    assert texts(log) == ["[attempt 2]"]
    assert not log.full


def test_a_long_line_is_cut_and_marked() -> None:
    log = JobLog()
    log.add_output("y" * (MAX_LINE_CHARS + 10))
    log.add_output("z" * 10, truncated=True)
    assert texts(log) == [
        "y" * MAX_LINE_CHARS + " [line truncated]",
        "z" * 10 + " [line truncated]",
    ]
