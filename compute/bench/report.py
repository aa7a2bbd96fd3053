"""What a run reports: one row per measured number, printed as a table and written as JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

NOT_MEASURED_YET = "not measured yet"
NOT_SELECTED = "not selected (--only)"
HEADERS = ("#", "figure", "service", "baseline", "ratio", "target", "met")


@dataclass
class Row:
    """One number of a figure, measured for the service and for its baseline in the same run.

    Attributes:
        figure: The figure's number in the plan.
        label: What was measured, with its size (`no-op throughput, 600 jobs`).
        unit: The unit of `service` and `baseline`.
        service: The service's number; None when the figure was not measured.
        baseline: The baseline's number in the same unit.
        target: The figure's target as text.
        met: Whether the service met it; None when not measured.
        note: Why there is no number, for a row that has none.
        details: Further numbers of the measurement, for the JSON only.
    """

    figure: int
    label: str
    unit: str = ""
    service: float | None = None
    baseline: float | None = None
    target: str = ""
    met: bool | None = None
    note: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        """service / baseline: above 1 the service is slower for times, faster for rates."""
        if self.service is None or not self.baseline:
            return None
        return self.service / self.baseline

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio}


def number(value: float | None, unit: str) -> str:
    """`value` with its unit, to three significant digits or so."""
    if value is None:
        return "-"
    digits = 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2 if abs(value) >= 1 else 3
    return f"{value:,.{digits}f} {unit}".strip()


def cells(row: Row) -> tuple[str, ...]:
    if row.service is None:
        return (str(row.figure), row.label, row.note, "", "", row.target, "")
    ratio = row.ratio
    return (
        str(row.figure),
        row.label,
        number(row.service, row.unit),
        number(row.baseline, row.unit),
        "-" if ratio is None else f"{ratio:.2f}x",
        row.target,
        {True: "yes", False: "NO", None: ""}[row.met],
    )


def table(rows: list[Row]) -> str:
    """The rows as an aligned text table."""
    lines = [HEADERS, *(cells(row) for row in rows)]
    widths = [max(len(line[column]) for line in lines) for column in range(len(HEADERS))]
    text = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in lines
    ]
    text.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(text)


def write_json(path: Path, rows: list[Row], run: dict[str, Any]) -> None:
    """Write the run's description and every row to `path`."""
    document = {**run, "figures": [row.as_json() for row in rows]}
    path.write_text(json.dumps(document, indent=2) + "\n")
