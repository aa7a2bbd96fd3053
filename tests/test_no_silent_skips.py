"""A test the machine cannot run skips, saying why; under CI (`CI=true`) it fails instead.

Each case runs a small pytest session of its own, in a subprocess, with the plugin of
`tests/capabilities.py` and `CI` set or unset.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

REPO_ROOT = Path(__file__).resolve().parents[1]
TESTS = """
import pytest

from tests.capabilities import missing_capability, requires


@requires(False, "a unicorn (only unicorns fly)")
def test_marked():
    pass


@pytest.fixture
def griffin():
    missing_capability("a griffin")


def test_through_a_fixture(griffin):
    pass


def test_called():
    missing_capability("a dragon")


def test_plainly_skipped():
    pytest.skip("for no capability at all")


@requires(True, "a horse")
def test_runs_where_the_capability_is():
    pass


@pytest.mark.xfail(strict=True, reason="a known bug")
def test_known_to_fail():
    assert False
"""


@pytest.fixture
def here(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytester directory whose sessions import this repository's `tests`."""
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    return pytester


def run(here: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str | None) -> pytest.RunResult:
    """Run the directory's tests with the plugin, `CI` set to `ci` (unset if None)."""
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    return here.runpytest_subprocess("-p", "tests.capabilities", "-p", "no:cacheprovider", "-rs")


def test_outside_ci_a_missing_capability_skips_naming_it(
    here: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    here.makepyfile(test_needs=TESTS)

    result = run(here, monkeypatch, None)

    result.assert_outcomes(passed=1, skipped=4, xfailed=1)
    result.stdout.fnmatch_lines_random(
        [
            "SKIPPED * test_needs.py:*: missing capability: a unicorn (only unicorns fly)",
            "SKIPPED * test_needs.py:*: missing capability: a griffin",
            "SKIPPED * test_needs.py:*: missing capability: a dragon",
            "SKIPPED * test_needs.py:*: for no capability at all",
        ]
    )


@pytest.mark.parametrize("ci", ["true", "TRUE"])
def test_under_ci_every_skip_fails_naming_its_reason(
    here: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str
) -> None:
    here.makepyfile(test_needs=TESTS)

    result = run(here, monkeypatch, ci)

    # A skip in set-up (a mark, a fixture) is an error; one in the test body, a failure.
    result.assert_outcomes(passed=1, failed=2, errors=2, xfailed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines_random(
        [
            "*test_needs.py:*: missing capability: a unicorn (only unicorns fly)",
            "*test_needs.py:*: missing capability: a griffin",
            "*test_needs.py:*: missing capability: a dragon",
            "*test_needs.py:*: for no capability at all",
        ]
    )
    assert result.stdout.str().count("CI=true: every test must run") == 4
    assert "SKIPPED" not in result.stdout.str()


def test_under_ci_a_skipped_module_fails_the_session(
    here: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    here.makepyfile(
        test_module="""
        import pytest

        pytest.importorskip("no_such_module_anywhere")

        def test_never_collected():
            pass
        """
    )

    result = run(here, monkeypatch, "true")

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*could not import 'no_such_module_anywhere'*", "CI=true: every test must run*"]
    )


def test_a_loose_xfail_is_refused(here: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    here.makepyfile(
        test_loose="""
        import pytest

        @pytest.mark.xfail(reason="passes or fails unseen")
        def test_loose():
            pass
        """
    )

    result = run(here, monkeypatch, None)

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*an xfail mark must be strict*test_loose.py::test_loose*"])
