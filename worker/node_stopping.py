"""Whether this node has begun to stop, as its pool processes can see it.

Celery's warm shutdown (SIGTERM to the main process) stops taking messages, but a pool
process draining a function's queue (`queue_drain`) takes them from Redis itself and is
never told. One byte of memory the main process shares with the pool processes it forks
tells them: once it is set, a drain takes no further job, and a stopping node starts
nothing new.
"""

from __future__ import annotations

import ctypes
from multiprocessing.sharedctypes import RawValue
from typing import Any

from celery.signals import worker_shutting_down

# Made at import, in the main process, before the pool forks: the children share it.
_stopping: Any = RawValue(ctypes.c_bool, False)


def node_stopping() -> bool:
    return bool(_stopping.value)


@worker_shutting_down.connect
def _on_shutting_down(**_: Any) -> None:
    _stopping.value = True
