"""`python -m compute.bench`: the benchmark suite, against its baselines in the same run.

python -m compute.bench --size full --json bench.json
python -m compute.bench --size smoke --only 1,3
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from types import FrameType

import click

from compute.cli.commands import default_concurrency
from compute.cli.server_extra import server_imports

from .sizes import SIZES


def figure_numbers(text: str | None, every: frozenset[int]) -> frozenset[int]:
    """`1,3` as {1, 3}; `every` figure of the plan when None."""
    if text is None:
        return every
    try:
        chosen = frozenset(int(part) for part in text.split(",") if part.strip())
    except ValueError as error:
        raise click.BadParameter(f"{text!r} is not a comma-separated list of numbers") from error
    if unknown := chosen - every:
        raise click.BadParameter(f"no figure {', '.join(map(str, sorted(unknown)))} in the plan")
    return chosen


def stop_on_signal(signum: int, frame: FrameType | None) -> None:
    # An exception, so that every child is stopped on the way out as after Ctrl-C.
    raise SystemExit(128 + signum)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--size",
    type=click.Choice(sorted(SIZES)),
    default="smoke",
    show_default=True,
    help="smoke: a minute or two on two cores, for CI; full: the sizes the targets name.",
)
@click.option("--only", default=None, help="Measure these figures only, e.g. 1,3.")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes of the service and of raw Celery [default: one per CPU].",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the table, with the machine described, to this JSON file.",
)
def main(size: str, only: str | None, workers: int | None, json_path: Path | None) -> None:
    """Measure the service against raw Celery and hand-written baselines, side by side."""
    # The suite runs the service: without the `server` extra, one line says so.
    with server_imports("python -m compute.bench"):
        from .plan import FIGURES
        from .run import Options, run
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop_on_signal)
    options = Options(
        size=SIZES[size],
        only=figure_numbers(only, frozenset(figure.number for figure in FIGURES)),
        workers=workers or default_concurrency(),
        json_path=json_path,
    )
    try:
        run(options)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
