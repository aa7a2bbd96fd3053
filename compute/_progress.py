"""The progress bar of ``Function.map`` and ``Function.wait_for_completion``.

The bar shows jobs done out of the total, with the jobs' counts by status after it
(``success=998, failure=2``; a status with no jobs is left out, to keep the line short).
It is drawn by ``tqdm.auto``, so a notebook gets its widget and a terminal a text line.

Whether it shows, first match wins:

1. the call's ``progress=True`` or ``progress=False``;
2. ``COMPUTE_PROGRESS=1`` or ``COMPUTE_PROGRESS=0`` (also ``true``/``false``, ``yes``/``no``,
   ``on``/``off``);
3. otherwise only where someone watches: standard error is a terminal, or the code runs in
   a Jupyter kernel. Logs and pipes get no bar.

A bar that is off writes nothing at all.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from types import TracebackType

from tqdm.auto import tqdm

from ._config import progress_setting
from .statuses import JobStatus

UNIT = "job"


def progress_wanted(requested: bool | None) -> bool:
    """Whether to show a bar, given the caller's ``progress`` argument.

    Raises:
        ConfigurationError: ``COMPUTE_PROGRESS`` is set to a value that is neither on nor off.
    """
    if requested is not None:
        return requested
    setting = progress_setting()
    if setting is not None:
        return setting
    return _stderr_is_terminal() or _in_jupyter_kernel()


def _stderr_is_terminal() -> bool:
    # Standard error is None under pythonw and some service managers, and may be closed.
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _in_jupyter_kernel() -> bool:
    # The sign tqdm.auto itself reads to draw a widget; looked up in sys.modules, so a
    # script that never loaded IPython does not import it here.
    ipython = sys.modules.get("IPython")
    return (
        "ipykernel.zmqshell" in sys.modules
        and ipython is not None
        and ipython.get_ipython() is not None
    )


class JobProgress:
    """A bar of jobs done out of a total, or nothing at all when not ``enabled``.

    Use it as a context manager, so the bar is closed (its last state left on screen)
    however the work ends.

    Args:
        description: What the bar counts, shown before it (e.g. the Function's name).
        total: The jobs expected, as far as known yet.
        enabled: Draw the bar; see :func:`progress_wanted`.
    """

    def __init__(self, description: str, total: int, enabled: bool) -> None:
        self._enabled = enabled
        self._bar = tqdm(
            desc=description, total=total, unit=UNIT, file=sys.stderr, disable=not enabled
        )

    def __enter__(self) -> JobProgress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._bar.close()

    def show(self, done: int, total: int, counts: Mapping[str, int]) -> None:
        """Move the bar to ``done`` out of ``total`` and show ``counts`` by job status."""
        if not self._enabled:
            return
        if total != self._bar.total:
            # The only way to give a notebook widget its new length too.
            self._bar.reset(total=total)
        shown = {status.value: counts[status] for status in JobStatus if counts.get(status)}
        self._bar.set_postfix(shown, refresh=False)
        self._bar.update(done - self._bar.n)  # through update, so the rate stays right
        self._bar.refresh()  # each poll, so the elapsed time moves on though no job did

    def show_statistics(self, statistics: Mapping[str, int]) -> None:
        """Show a Function's ``job_statistics``: its final jobs are the ones done."""
        final = JobStatus.final()
        done = sum(count for status, count in statistics.items() if status in final)
        self.show(done, sum(statistics.values()), statistics)

    def write(self, message: str) -> None:
        """Print a line to standard error above the bar, which is redrawn below it."""
        if self._enabled:
            self._bar.write(message, file=sys.stderr)
        else:
            print(message, file=sys.stderr)
