"""The supervisor of `compute up` with real short-lived children: restarts, crash loops,
leftovers of a dead child, and the children's output read line by line."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from compute.cli.child_output import FilterFactory, LineFilter
from compute.cli.restarts import RestartHistory, RestartPolicy
from compute.cli.supervisor import CrashLoop, Supervisor

# Quick enough for a test, the same shape as the default.
FAST = RestartPolicy(
    first_delay_seconds=0.05,
    max_delay_seconds=0.2,
    stable_after_seconds=5.0,
    max_exits=4,
    window_seconds=30.0,
)


def recording() -> tuple[list[str], FilterFactory]:
    """Lines seen, and a filter factory whose filters add every line to them (printing none)."""
    lines: list[str] = []

    def factory() -> LineFilter:
        def line_filter(line: str) -> None:
            lines.append(line)

        return line_filter

    return lines, factory


@pytest.fixture
def reports() -> list[str]:
    return []


@pytest.fixture
def supervisor(reports: list[str]) -> Iterator[Supervisor]:
    # Not signal handlers nor a subreaper: those belong to a process of its own.
    supervisor = Supervisor(grace_seconds=2.0, policy=FAST, report=reports.append)
    yield supervisor
    supervisor.stop_all()


def watch_until(supervisor: Supervisor, done: Callable[[], object], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, "timed out"
        supervisor.wait(0.05)


def test_the_delay_doubles_up_to_its_cap_and_a_long_run_resets_it() -> None:
    history = RestartHistory(RestartPolicy(max_exits=100))

    delays = [history.next_delay(now=float(t * 100), uptime=1.0) for t in range(7)]
    assert delays == [1, 2, 4, 8, 16, 30, 30]

    assert history.next_delay(now=800.0, uptime=45.0) == 1
    assert history.next_delay(now=900.0, uptime=1.0) == 2


def test_five_deaths_within_the_window_are_a_crash_loop() -> None:
    history = RestartHistory(RestartPolicy())

    assert [history.next_delay(now=t, uptime=0.5) for t in (0, 2, 5, 10)] == [1, 2, 4, 8]
    assert history.next_delay(now=19.0, uptime=0.5) is None
    assert history.describe_loop() == "5 times within 60 s"


def test_deaths_older_than_the_window_are_forgotten() -> None:
    history = RestartHistory(RestartPolicy())

    for now in (0, 20, 40, 60, 80, 100, 120):
        assert history.next_delay(now=float(now), uptime=30.0) == 1


def test_a_dying_child_is_restarted_as_it_was_started_then_given_up_on(
    supervisor: Supervisor, reports: list[str]
) -> None:
    lines, factory = recording()
    supervisor.start(
        "flaky",
        ["sh", "-c", 'echo "run with $MARK"; exit 3'],
        {"MARK": "the same environment", "PATH": os.environ["PATH"]},
        output=factory,
    )

    with pytest.raises(CrashLoop) as stopped:
        watch_until(supervisor, lambda: False)

    assert str(stopped.value.message) == (
        "the flaky process died 4 times within 30 s, the last time it exited with code 3"
    )
    assert lines == ["run with the same environment"] * 4
    assert len(reports) == 3
    assert all("flaky process (pid " in report for report in reports)
    assert all(" exited with code 3 at " in report for report in reports)
    assert [report.rsplit("restarting it in ", 1)[1] for report in reports] == [
        "0.05 s.",
        "0.1 s.",
        "0.2 s.",
    ]


def test_a_killed_child_is_reported_by_its_signal(
    supervisor: Supervisor, reports: list[str]
) -> None:
    child = supervisor.start("sleeper", ["sleep", "300"], {})
    first_pid = child.pid

    os.kill(first_pid, signal.SIGKILL)
    watch_until(supervisor, lambda: child.restart_at is None and child.pid != first_pid)

    (report,) = reports
    assert report.startswith(f"The sleeper process (pid {first_pid}) was killed by SIGKILL at ")
    assert child.process.poll() is None


def test_what_a_dead_child_left_in_its_group_is_stopped_before_it_restarts(
    supervisor: Supervisor,
) -> None:
    lines, factory = recording()
    # Like a gunicorn master and its worker: the worker keeps the group going.
    child = supervisor.start(
        "parent", ["sh", "-c", "sleep 300 & echo $!; wait"], {}, output=factory
    )
    watch_until(supervisor, lambda: lines)
    leftover = psutil.Process(int(lines[0]))

    os.kill(child.pid, signal.SIGKILL)
    watch_until(supervisor, lambda: len(lines) == 2)

    assert not leftover.is_running() or leftover.status() == psutil.STATUS_ZOMBIE
    assert psutil.Process(int(lines[1])).is_running()


def test_output_reaches_the_filter_line_by_line_even_unfinished(
    supervisor: Supervisor,
) -> None:
    lines, factory = recording()
    child = supervisor.start(
        "talker",
        ["sh", "-c", "printf 'one\\ntwo\\r\\n'; printf thr; printf ee >&2"],
        {},
        output=factory,
    )
    watch_until(supervisor, lambda: child.process.poll() is not None and len(lines) == 3)

    assert lines == ["one", "two", "three"]


def test_stop_all_stops_children_last_started_first(
    supervisor: Supervisor, reports: list[str], tmp_path: Path
) -> None:
    order = tmp_path / "order"
    for name in ("first", "second"):
        script = f"trap 'echo {name} >> {order}; kill $!; exit 0' TERM; sleep 300 & wait"
        supervisor.start(name, ["sh", "-c", script], {})
    supervisor.wait(0.5)  # both shells have set their trap

    supervisor.stop_all()

    assert order.read_text().split() == ["second", "first"]
    assert [child.process.returncode for child in supervisor.children] == [0, 0]
    assert reports == []
