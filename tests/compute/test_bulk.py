from __future__ import annotations

import time

import pytest

from compute._bulk import bulk_arguments


def test_lists_and_tuples_are_argument_lists_other_values_single_arguments():
    assert bulk_arguments([[1, 2], (3, 4), 5, "s", {"a": 1}], None) == (
        [[1, 2], [3, 4], [5], ["s"], [{"a": 1}]],
        None,
    )


def test_generators_are_accepted():
    assert bulk_arguments((i for i in range(3)), None) == ([[0], [1], [2]], None)


def test_keyword_mappings_are_bulk_kwargs():
    args, kwargs = bulk_arguments([[1, 2], [3, 4]], [{"first": 1}, {"first": 1.0}])
    assert args == [[1, 2], [3, 4]]
    assert kwargs == [{"first": 1}, {"first": 1.0}]
    with pytest.raises(ValueError, match="1 keyword mappings for 2 args"):
        bulk_arguments([1, 2], [{"a": 1}])


def test_iterables_are_zipped_like_builtin_map():
    args, kwargs = bulk_arguments([1, 2, 3], [[10, 20, 30], iter("abc")])
    assert args == [[1, 10, "a"], [2, 20, "b"], [3, 30, "c"]]
    assert kwargs is None
    with pytest.raises(ValueError, match="length 2 for 3 args"):
        bulk_arguments([1, 2, 3], [[1, 2]])
    with pytest.raises(ValueError, match="mix"):
        bulk_arguments([1], [{"a": 1}, [1]])


def test_ten_thousand_arguments_are_cheap():
    start = time.perf_counter()
    args, _ = bulk_arguments(range(10_000), None)
    assert len(args) == 10_000
    assert time.perf_counter() - start < 0.5
