"""Only `compute.server.transitions` writes a job's status, a function's build state or
the per-status job counts: every other module, tests included, moves them through it."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from compute.statuses import JobStatus

ROOT = Path(__file__).resolve().parents[2]
SEARCHED = ("compute", "api", "worker", "tests")
OWNER = ROOT / "compute" / "server" / "transitions"
# Schema history: it creates the columns, it moves no job.
HISTORY = ROOT / "compute" / "server" / "migrations"
# The benchmarks' hand-written baseline fills a database of its own, not the service's.
BASELINES = ROOT / "compute" / "bench"
STATE_COLUMNS = {"status", "build_state"} | {f"{status.value}_count" for status in JobStatus}
# SQL text that writes a state column of the jobs or functions table.
STATE_SQL = re.compile(
    r"\b(update\s+(jobs|functions)\b|insert\s+into\s+(jobs|functions)\b)"
    r"[\s\S]*\b(status|build_state|\w+_count)\b",
    re.IGNORECASE,
)
ROW_NAMES = {"job", "function", "row"}
# The SDK's own Job and Function objects have these attributes too, set on the client.
SDK_PLACES = (ROOT / "compute", ROOT / "tests" / "compute")
SERVER = ROOT / "compute" / "server"


def sources() -> Iterator[Path]:
    for top in SEARCHED:
        for path in sorted((ROOT / top).rglob("*.py")):
            if path == Path(__file__) or {OWNER, HISTORY, BASELINES} & set(path.parents):
                continue
            yield path


def is_sdk(path: Path) -> bool:
    return SERVER not in path.parents and any(place in path.parents for place in SDK_PLACES)


def state_writes(tree: ast.AST, sdk: bool = False) -> Iterator[tuple[int, str]]:
    """Where `tree` writes a state column; `sdk`: attributes set are the SDK's objects'."""
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "values"
        ):
            for keyword in node.keywords:
                if keyword.arg in STATE_COLUMNS:
                    yield node.lineno, f".values({keyword.arg}=...)"
        elif isinstance(node, ast.Assign | ast.AugAssign) and not sdk:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if (
                    isinstance(target, ast.Attribute)
                    and target.attr in STATE_COLUMNS
                    and isinstance(target.value, ast.Name)
                    and target.value.id in ROW_NAMES
                ):
                    yield node.lineno, f"{target.value.id}.{target.attr} = ..."
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and STATE_SQL.search(node.value)
        ):
            yield node.lineno, "SQL writing a state column"


def test_only_the_transitions_write_job_states_and_counts() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}: {what}"
        for path in sources()
        for line, what in state_writes(ast.parse(path.read_text(), str(path)), is_sdk(path))
    ]
    assert found == [], "state written outside compute/server/transitions:\n" + "\n".join(found)


def test_the_check_finds_what_it_looks_for() -> None:
    planted = """
sa.update(Job).values(status="success")
sa.update(Function).values(running_count=Function.running_count + 1)
job.status = "failure"
function.build_state = "built"
session.execute(sa.text("UPDATE jobs SET status = 'success' WHERE id = :id"))
"""
    assert [what for _, what in sorted(state_writes(ast.parse(planted)))] == [
        ".values(status=...)",
        ".values(running_count=...)",
        "job.status = ...",
        "function.build_state = ...",
        "SQL writing a state column",
    ]
