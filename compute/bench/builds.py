"""Figure 7: how long the service takes to build a function's environment, against the
same environments made by hand with uv (`uv_by_hand`), in three cases:

- cold: one small pinned requirement, never built before, from the package index;
- warm cache: the same package again, in an environment the service has not built (the
  requirement under a marker every Python 3 meets: the cache key is the requirements'
  text), so only a package cache can spare the download;
- reuse: a function whose requirements are those of one built already, whose environment
  the service shares outright.

A worker running as root (the bench's, when run as root, CI's included) gives every build
a new uv cache of its own and removes it after (worker/build/installer.py: a cache shared
by the builds of different owners could be poisoned by one of them), so each of its
builds starts from an empty cache: cold is cold in every run, and the warm row shows what
a cache that is never warm costs against uv's. A worker that is not root uses its user's
own uv cache, which the run leaves alone: the JSON says whether each build downloaded.

Cold and warm are timed from `Function.save()` until the API says the function is built,
polled every 20 ms: a user's wait, within a few percent of seconds. Reuse is timed from
`save()` returning, when the service has the bundle and has asked for its build, until
the API says built, polled every 5 ms: what is left is the service's own build path (the
build task through the broker, the bundle's checks, the environment found, the state
committed), plus at most one poll interval and one API read.
"""

from __future__ import annotations

import statistics

from .context import Bench
from .report import Row
from .service_builds import BuildFailed, ServiceBuild, build, interpreter
from .uv_by_hand import Install, UvByHand, UvFailed

# A pure-Python wheel of 6 KB with no dependencies.
REQUIREMENT = "iniconfig==2.0.0"
# The same wheel under a marker every Python 3 meets: another cache key, another environment.
WARM_REQUIREMENT = f'{REQUIREMENT}; python_version >= "3"'
RATIO_TARGET = 1.5
REUSE_TARGET_SECONDS = 0.050
REUSES = 5
BUILD_POLL_SECONDS = 0.02
REUSE_POLL_SECONDS = 0.005
# The uv cache by hand that holds the package once the first install by hand is done.
FIRST_CACHE = "first"
COLD = f"cold build, {REQUIREMENT}"
WARM = f"warm-cache build, {REQUIREMENT} in a new environment"
REUSE = f"reuse of a built environment, median of {REUSES}"
UV_TARGET = f"<= {RATIO_TARGET:g}x uv"
REUSE_TARGET = f"<= {REUSE_TARGET_SECONDS * 1000:g} ms"
TARGETS = {COLD: UV_TARGET, WARM: UV_TARGET, REUSE: REUSE_TARGET}


def measure(bench: Bench) -> list[Row]:
    try:
        # The interpreter the service made the no-op's environment from: the default image's.
        python = interpreter(bench.service, bench.noop)
        with UvByHand(bench.service.data_dir.parent, bench.service.env, python) as by_hand:
            return rows(by_hand)
    except (BuildFailed, UvFailed, FileNotFoundError) as error:
        return unmeasured(str(error))


def rows(by_hand: UvByHand) -> list[Row]:
    """The three rows, uv by hand going first: with no index in reach it fails within
    seconds, and says why."""
    try:
        first = by_hand.install([REQUIREMENT], by_hand.cache(FIRST_CACHE))
    except UvFailed as error:
        raise UvFailed(f"is the package index out of reach? {error}") from error
    return [cold(by_hand, first), warm(by_hand), reuse(by_hand, first)]


def cold(by_hand: UvByHand, before: Install) -> Row:
    """The service's first build of `REQUIREMENT`, against uv's before and after it, each
    with a new cache."""
    service = build("bench-build-cold", [REQUIREMENT], BUILD_POLL_SECONDS)
    after = by_hand.install([REQUIREMENT], by_hand.cache("cold-after"))
    label = COLD if service.downloaded else f"{COLD} (the worker's uv cache held it)"
    return against_uv(label, service, [before, after])


def warm(by_hand: UvByHand) -> Row:
    """A new environment of the same package, against uv's before and after it, with the
    cache of its first install, which holds the package."""
    cache = by_hand.cache(FIRST_CACHE)
    before = by_hand.install([WARM_REQUIREMENT], cache)
    service = build("bench-build-warm", [WARM_REQUIREMENT], BUILD_POLL_SECONDS)
    after = by_hand.install([WARM_REQUIREMENT], cache)
    return against_uv(WARM, service, [before, after])


def reuse(by_hand: UvByHand, first: Install) -> Row:
    """Functions whose requirements are the cold build's, against `uv pip install` finding
    them in the environment uv made of them, the two taking turns."""
    builds, checks = [], []
    for number in range(REUSES):
        builds.append(build(f"bench-build-reuse-{number}", [REQUIREMENT], REUSE_POLL_SECONDS))
        checks.append(by_hand.add(first.environment, [REQUIREMENT], by_hand.cache(FIRST_CACHE)))
    service = statistics.median(build.build_seconds for build in builds)
    return Row(
        figure=7,
        label=REUSE,
        unit="s",
        service=service,
        baseline=statistics.median(checks),
        target=REUSE_TARGET,
        met=service <= REUSE_TARGET_SECONDS,
        details={
            "requirement": REQUIREMENT,
            "poll_seconds": REUSE_POLL_SECONDS,
            "service": [build.details() for build in builds],
            "baseline_seconds": checks,
        },
    )


def against_uv(label: str, service: ServiceBuild, baselines: list[Install]) -> Row:
    """A build's row: the service's save-to-built time against uv's mean by hand."""
    row = Row(
        figure=7,
        label=label,
        unit="s",
        service=service.seconds,
        baseline=statistics.mean(install.seconds for install in baselines),
        target=UV_TARGET,
        details={
            "poll_seconds": BUILD_POLL_SECONDS,
            "service": service.details(),
            "baseline": [
                {"venv_seconds": install.venv_seconds, "install_seconds": install.install_seconds}
                for install in baselines
            ],
        },
    )
    row.met = row.ratio is not None and row.ratio <= RATIO_TARGET
    return row


def unmeasured(note: str) -> list[Row]:
    """The figure's rows with no number, and `note` saying why."""
    return [
        Row(figure=7, label=label, target=target, note=note) for label, target in TARGETS.items()
    ]
