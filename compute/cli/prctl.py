"""Linux process controls that keep a supervised process tree from leaking processes.

Both are best effort: elsewhere (or if the call fails) the supervisor still stops its
children by process group, it just cannot catch processes that escape it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import signal
import sys

logger = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, value: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        result: int = libc.prctl(option, value, 0, 0, 0)
        return result == 0
    except (OSError, AttributeError):
        return False


def become_subreaper() -> bool:
    """Adopt orphaned descendants (e.g. daemonized grandchildren) so they can be stopped."""
    adopted = _prctl(PR_SET_CHILD_SUBREAPER, 1)
    if not adopted:
        logger.debug("cannot become a child subreaper; orphans escape to init")
    return adopted


def terminate_with_parent() -> None:
    """In a freshly forked child: get SIGTERM if the parent dies without stopping us."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
