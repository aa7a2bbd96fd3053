"""Daemon threads kept between jobs for work that blocks, such as pumping a job's output.

Starting and joining two threads per job cost a no-op job more than its own work. A
thread here takes the next piece of work when it is done with one; a new one starts
only when none is free, so a pump held up by an escaped process that keeps its pipe
open holds up no other job's output. Each process keeps its own (`process_local`).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from .process_local import ProcessLocal

logger = logging.getLogger(__name__)

Work = tuple[Callable[..., Any], tuple[Any, ...], threading.Event]


class KeptThreads:
    def __init__(self) -> None:
        self._work: queue.SimpleQueue[Work] = queue.SimpleQueue()
        self._free = 0
        self._lock = threading.Lock()

    def run(self, function: Callable[..., Any], *args: Any) -> threading.Event:
        """Run `function(*args)` on a kept thread; the event is set once it returned."""
        done = threading.Event()
        with self._lock:
            if self._free:
                self._free -= 1
            else:
                threading.Thread(target=self._serve, name="kept", daemon=True).start()
        self._work.put((function, args, done))
        return done

    def _serve(self) -> None:
        while True:
            function, args, done = self._work.get()
            try:
                function(*args)
            except Exception:
                # The thread stays kept: a failed piece of work ends only itself.
                logger.exception("work on a kept thread failed")
            finally:
                # Free before done: whoever waited for it may hand over more work at once.
                with self._lock:
                    self._free += 1
                done.set()


# This process's kept threads.
kept_threads = ProcessLocal(KeptThreads).get
