"""The JSON gate's depth scan and stored-value reader, checked without a server."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from compute.server.stored_json import MAX_STORED_DEPTH, Unreadable, depth_exceeded, load_stored


def depth_of(value: Any) -> int:
    """The nesting depth of a parsed value, by an explicit stack."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, dict)):
            deepest = max(deepest, depth)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


def random_value(rng: random.Random, depth: int) -> Any:
    # Strings full of brackets and escapes: the scan must skip them whole.
    if depth == 0 or rng.random() < 0.2:
        return rng.choice([1, 2.5, None, "[{", '\\"]', "}\\", ""])
    if rng.random() < 0.5:
        return [random_value(rng, depth - 1) for _ in range(rng.randint(0, 3))]
    return {f"k{index}[": random_value(rng, depth - 1) for index in range(rng.randint(0, 3))}


def test_the_scan_agrees_with_the_parsed_depth() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        value = {"field": random_value(rng, rng.randint(0, 12))}
        text = json.dumps(value)
        for limit in (1, 2, 4, 8):
            refused = depth_exceeded(text, limit) is not None
            assert refused == (depth_of(value) > limit), (text, limit)


@pytest.mark.parametrize("depth", [65, 1_000, 1_000_000])
def test_the_scan_names_the_key_and_keeps_no_stack(depth: int) -> None:
    text = '{"a": "[[[[", "args": ' + "[{" * depth + "}]" * depth + "}"
    assert depth_exceeded(text, 64) == "args"
    assert depth_exceeded("[" * depth + "]" * depth, 64) == ""


@pytest.mark.parametrize(
    "text", ["[" * (MAX_STORED_DEPTH + 1) + "]" * (MAX_STORED_DEPTH + 1), "[1,", "", "[NaN"]
)
def test_unreadable_stored_values_do_not_raise(text: str) -> None:
    assert isinstance(load_stored(text), Unreadable)


def test_readable_stored_values_load_as_json_does() -> None:
    text = json.dumps([10**30, 1.5, {"k": ["é", None]}])
    assert load_stored(text) == load_stored(text.encode()) == json.loads(text)
