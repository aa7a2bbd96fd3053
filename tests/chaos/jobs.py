"""The function the chaos test runs: it notes each execution of itself, then returns."""

from __future__ import annotations

import os
import time


def record_execution(path, index, seconds):
    # One short O_APPEND write per execution: lines from concurrent jobs never interleave.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, f"{index} {os.getpid()}\n".encode())
    finally:
        os.close(fd)
    time.sleep(seconds)
    return index
