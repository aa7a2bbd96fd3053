"""The table and JSON printer of the command line."""

from __future__ import annotations

import json

import pytest

from compute.cli.output import emit, table


def test_table_aligns_columns_and_marks_missing_values() -> None:
    records = [{"id": "a", "status": "success"}, {"id": "bbbb", "status": None}]

    assert table(records, ["id", "status"]).splitlines() == [
        "ID    STATUS",
        "a     success",
        "bbbb  -",
    ]


def test_a_derived_column_shows_what_its_function_makes_of_the_record() -> None:
    records = [{"id": "a", "error": "boom"}, {"id": "b", "error": None}]

    lines = table(records, ["id", "why"], {"why": lambda record: record["error"]})

    assert lines.splitlines() == ["ID  WHY", "a   boom", "b   -"]


def test_table_of_nothing_is_the_header() -> None:
    assert table([], ["id", "name"]) == "ID  NAME"


def test_emit_json_prints_whole_records(capsys: pytest.CaptureFixture[str]) -> None:
    records = [{"id": "a", "args": [1, 2], "kwargs": None}]

    emit(records, ["id"], as_json=True)

    assert json.loads(capsys.readouterr().out) == records
