"""The children's output, read line by line through each child's filter.

Every child of `compute up` writes to a pipe the supervisor reads without blocking, in
the loop that also watches the children (it runs no threads: see `supervisor`). Each
complete line goes through the child's filter (`output_filters`), which may drop it or
say it another way, and what is left is written to our stderr.
"""

from __future__ import annotations

import os
import selectors
import sys
import time
from collections.abc import Callable
from typing import IO

LineFilter = Callable[[str], "str | None"]
# Makes the filter of one run of a child: a filter may keep state between the lines of a run.
FilterFactory = Callable[[], LineFilter]
READ_BYTES = 65536
# A child writing this much without a newline still gets heard.
LONGEST_LINE_BYTES = 65536
# A process that outlived its child and writes without end must not hold up a stop.
DRAIN_ROUNDS = 100


class _Stream:
    """One pipe, its bytes not yet ending in a newline, and its filter."""

    def __init__(self, pipe: IO[bytes], line_filter: LineFilter | None) -> None:
        self.pipe = pipe
        self.line_filter = line_filter
        self.pending = b""

    def lines(self, chunk: bytes) -> list[bytes]:
        self.pending += chunk
        *complete, self.pending = self.pending.split(b"\n")
        if len(self.pending) >= LONGEST_LINE_BYTES:
            complete.append(self.pending)
            self.pending = b""
        return complete

    def rest(self) -> list[bytes]:
        rest, self.pending = self.pending, b""
        return [rest] if rest else []


class OutputPump:
    """Reads the children's pipes and writes their filtered lines."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()

    def watch(self, pipe: IO[bytes], line_filter: LineFilter | None = None) -> None:
        """Read `pipe` from now on, passing its lines through `line_filter` (if any)."""
        os.set_blocking(pipe.fileno(), False)
        self._selector.register(pipe, selectors.EVENT_READ, _Stream(pipe, line_filter))

    def pump(self, seconds: float) -> None:
        """Pass on what the children write for `seconds` (sleeping when they are quiet)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            for key, _ in self._selector.select(left):
                self._read(key)

    def drain(self) -> None:
        """Pass on what is already written, without waiting for more."""
        for _ in range(DRAIN_ROUNDS):
            ready = self._selector.select(0)
            if not ready:
                return
            for key, _ in ready:
                self._read(key)

    def _read(self, key: selectors.SelectorKey) -> None:
        stream: _Stream = key.data
        try:
            chunk = os.read(key.fd, READ_BYTES)
        except BlockingIOError:
            return
        if chunk:
            self._emit(stream, stream.lines(chunk))
            return
        # End of file: the child and every process that shared its output are gone.
        self._selector.unregister(key.fileobj)
        stream.pipe.close()
        self._emit(stream, stream.rest())

    def _emit(self, stream: _Stream, lines: list[bytes]) -> None:
        for raw in lines:
            text = raw.decode(errors="replace").rstrip("\r")
            line = text if stream.line_filter is None else stream.line_filter(text)
            if line is not None:
                sys.stderr.write(line + "\n")
        sys.stderr.flush()
