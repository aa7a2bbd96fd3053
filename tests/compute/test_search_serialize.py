from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from compute import Function, FunctionStatus, Job, JobStatus, Search
from compute._filters import serialize_filter


def terms(search: Search) -> list:
    return json.loads(search._serialize()["filter"])


def test_single_term_is_a_compact_sorted_list():
    params = Job.search().filter(Job.status == JobStatus.PENDING)._serialize()
    assert params == {"filter": '[{"name":"status","op":"eq","val":"pending"}]'}


@pytest.mark.parametrize(
    ("expression", "op", "val"),
    [
        (Job.runtime != 3, "ne", 3),
        (Job.runtime < 3, "lt", 3),
        (Job.runtime <= 3, "lte", 3),
        (Job.runtime > 3, "gt", 3),
        (Job.runtime >= 3, "gte", 3),
        (Function.name.prefix("ab"), "prefix", "ab"),
        (Function.name.like("a%b_"), "ilike", "a%b_"),
        (Function.name.ilike("A%"), "ilike", "A%"),
    ],
)
def test_comparison_operators(expression, op, val):
    assert json.loads(serialize_filter(expression)) == [
        {"name": expression.attribute.name, "op": op, "val": val}
    ]


def test_null_operators_carry_no_value():
    assert json.loads(serialize_filter(Job.runtime.isnull)) == [{"name": "runtime", "op": "isnull"}]
    assert json.loads(serialize_filter(Job.runtime.isnotnull)) == [
        {"name": "runtime", "op": "isnotnull"}
    ]


def test_in_becomes_an_or_of_equalities():
    search = Function.search().filter(
        Function.status.in_([FunctionStatus.BUILDING, FunctionStatus.AWAITING_BUNDLE])
    )
    assert search._serialize()["filter"] == (
        '[{"or":[{"name":"status","op":"eq","val":"building"},'
        '{"name":"status","op":"eq","val":"awaiting_bundle"}]}]'
    )
    assert terms(Job.search().filter(Job.status.any_of(["success"]))) == [
        {"name": "status", "op": "eq", "val": "success"}
    ]


def test_in_requires_values():
    with pytest.raises(ValueError, match="at least one"):
        Job.status.in_([])


def test_successive_filters_and_ampersand_are_top_level_terms():
    search = (
        Job.search().filter(Job.function_id == "f1").filter((Job.runtime > 1) & (Job.runtime < 9))
    )
    assert terms(search) == [
        {"name": "function_id", "op": "eq", "val": "f1"},
        {"name": "runtime", "op": "gt", "val": 1},
        {"name": "runtime", "op": "lt", "val": 9},
    ]


def test_nested_or_and():
    expression = (Job.status == "failure") | (
        (Job.runtime > 60) & Job.status.in_(["success", "timeout"])
    )
    assert terms(Job.search().filter(expression)) == [
        {
            "or": [
                {"name": "status", "op": "eq", "val": "failure"},
                {
                    "and": [
                        {"name": "runtime", "op": "gt", "val": 60},
                        {
                            "or": [
                                {"name": "status", "op": "eq", "val": "success"},
                                {"name": "status", "op": "eq", "val": "timeout"},
                            ]
                        },
                    ]
                },
            ]
        }
    ]


def test_values_are_coerced_to_the_attribute_type():
    assert terms(Function.search().filter(Function.memory == "2Gi")) == [
        {"name": "memory", "op": "eq", "val": 2048}
    ]
    assert terms(Function.search().filter(Function.cpus >= "2")) == [
        {"name": "cpus", "op": "gte", "val": 2.0}
    ]


def test_datetimes_are_sent_with_an_offset():
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert terms(Job.search().filter(Job.creation_date >= when)) == [
        {"name": "creation_date", "op": "gte", "val": "2026-01-02T03:04:05+00:00"}
    ]
    assert terms(Job.search().filter(Job.creation_date < "2026-01-02T03:04:05Z")) == [
        {"name": "creation_date", "op": "lt", "val": "2026-01-02T03:04:05+00:00"}
    ]


def test_sort_limit_and_params():
    params = (
        Job.search()
        .sort(-Job.creation_date, Job.id)
        .sort(Job.runtime)
        .limit(5)
        .param(page_size=2, include=["x"])
        ._serialize()
    )
    assert params == {
        "sort": ["-creation_date", "id", "runtime"],
        "limit": 5,
        "page_size": 2,
        "include": ["x"],
    }


def test_list_sends_page_size_and_legacy_filters():
    assert Job.list()._serialize() == {"page_size": 100}
    assert Job.list(page_size=7, function_id="f", status=["pending"])._serialize() == {
        "page_size": 7,
        "function_id": "f",
        "status": ["pending"],
    }
    assert Function.list(include=["job.statistics"])._serialize() == {
        "page_size": 100,
        "include": ["job.statistics"],
    }


def test_searches_are_immutable():
    base = Job.search()
    narrowed = base.filter(Job.status == "pending").sort(Job.id).limit(1).param(page_size=3)
    assert base._serialize() == {}
    assert narrowed._serialize() != {}


def test_function_jobs_search_filters_on_the_function():
    fn = Function(id="f9", saved=True)
    assert terms(fn.jobs) == [{"name": "function_id", "op": "eq", "val": "f9"}]


def test_invalid_filters_and_sorts_are_rejected():
    with pytest.raises(ValueError, match="Cannot filter on attribute 'args'"):
        Job.args == [1]  # noqa: B015
    with pytest.raises(ValueError, match="Cannot sort on attribute 'image'"):
        Function.search().sort(-Function.image)
    with pytest.raises(TypeError):
        Job.search().filter("status == 1")
    with pytest.raises(TypeError):
        Job.search().sort("id")
    with pytest.raises(TypeError):
        (Job.status == "x") & "y"  # noqa: B018
