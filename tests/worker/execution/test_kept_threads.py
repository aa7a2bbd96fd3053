"""Kept threads take the next piece of work when free, start anew only when none is,
and outlive a piece of work that fails."""

from __future__ import annotations

import threading

from worker.execution.kept_threads import KeptThreads


def test_a_free_thread_takes_the_next_work() -> None:
    threads = KeptThreads()
    names: list[str] = []
    for _ in range(5):
        assert threads.run(lambda: names.append(threading.current_thread().name)).wait(5)
    assert len(names) == 5
    assert threading.active_count() >= 1
    # One thread did it all: each run found the previous one free again.
    idents: set[int | None] = set()
    for _ in range(5):
        threads.run(lambda: idents.add(threading.get_ident())).wait(5)
    assert len(idents) == 1


def test_a_blocked_thread_holds_up_no_other_work() -> None:
    threads = KeptThreads()
    release = threading.Event()
    blocked = threads.run(release.wait, 30)
    assert threads.run(lambda: None).wait(5)
    assert not blocked.is_set()
    release.set()
    assert blocked.wait(5)


def test_failed_work_is_done_and_the_thread_stays() -> None:
    threads = KeptThreads()

    def fail() -> None:
        raise RuntimeError("boom")

    assert threads.run(fail).wait(5)
    idents: set[int | None] = set()
    for _ in range(3):
        assert threads.run(lambda: idents.add(threading.get_ident())).wait(5)
    assert len(idents) == 1
