"""What a test needs of the machine it runs on, and what a missing need becomes.

A test that needs root, a cgroup hierarchy, nftables, Python 3.10 or the like says so with
`requires(condition, capability)` (a mark) or `missing_capability(capability)` (a call,
in a test or a fixture). Outside CI such a test is skipped, naming what was missing.

Under CI (`CI=true`) every test must run: this module, a pytest plugin loaded by
`tests/conftest.py`, reports a skipped test, or a skipped module, as a failure naming its
reason, whatever the skip came from. An xfail mark must be strict and give its reason,
so that neither a pass nor a failure of the test goes unseen.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import NoReturn

import pytest

CI = os.environ.get("CI", "").lower() == "true"
ROOT = os.geteuid() == 0
MISSING = "missing capability: "
SKIPPED = "Skipped: "


def requires(condition: bool, capability: str) -> pytest.MarkDecorator:
    """Mark a test (or a module, as `pytestmark`) that runs only where `condition` holds.

    Args:
        condition: whether this machine offers what the test needs.
        capability: what the test needs, as a failure under CI will name it,
            e.g. "root (only root switches users)".
    """
    return pytest.mark.skipif(not condition, reason=MISSING + capability)


def missing_capability(capability: str) -> NoReturn:
    """End the running test, which this machine cannot run: a skip, a failure under CI.

    Args:
        capability: what the test needs and this machine lacks.
    """
    __tracebackhide__ = True  # the skip is reported where this was called
    pytest.skip(MISSING + capability)


def _skip_as_failure(report: pytest.TestReport | pytest.CollectReport) -> None:
    """Turn a skipped `report` into a failure that names the skip's reason and place."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):
        path, line, reason = longrepr
        reason = reason.removeprefix(SKIPPED)
        where = f"{path}:{line}: "
    else:
        where, reason = "", str(longrepr)
    report.outcome = "failed"
    report.longrepr = f"{where}{reason}\nCI=true: every test must run, so this skip is a failure"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    # An xfailed test is reported as skipped too, with `wasxfail` set: it ran.
    if CI and report.skipped and not hasattr(report, "wasxfail"):
        _skip_as_failure(report)
    return report


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    report = yield
    if CI and report.skipped:
        _skip_as_failure(report)
    return report


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    loose = [
        item.nodeid
        for item in items
        for mark in item.iter_markers("xfail")
        if mark.kwargs.get("strict") is not True or not mark.kwargs.get("reason")
    ]
    if loose:
        raise pytest.UsageError(
            "an xfail mark must be strict and give its reason (strict=True, reason=...): "
            + ", ".join(loose)
        )
