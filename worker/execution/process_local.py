"""One object per process, made on first use.

Threads do not survive a fork, and a Celery pool process is forked from the worker: an
object that owns threads (the lease keeper, the kept pump threads) is made again in each
process that asks for it, never inherited half-alive from its parent.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class ProcessLocal(Generic[T]):
    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._made: dict[int, T] = {}
        self._lock = threading.Lock()

    def get(self) -> T:
        """This process's object, made now if it has none yet."""
        with self._lock:
            made = self._made.get(os.getpid())
            if made is None:
                made = self._made[os.getpid()] = self._make()
            return made
