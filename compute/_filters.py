"""Filter expressions built from document attributes, and their wire form.

``Job.status == "pending"`` builds a :class:`Term`; ``&`` and ``|`` combine terms
into :class:`And` / :class:`Or` trees. :func:`serialize_filter` renders a tree as the
``filter`` query parameter: a compact JSON list of ANDed terms.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._attributes import Attribute

#: Operators that compare against a value, as the wire protocol spells them.
VALUE_OPS = frozenset({"eq", "ne", "gt", "gte", "lt", "lte", "prefix", "ilike"})
NULL_OPS = frozenset({"isnull", "isnotnull"})


class Expression:
    """A filter expression; combine with ``&`` (and) and ``|`` (or)."""

    def __and__(self, other: Expression) -> Expression:
        return And.of(self, _check(other))

    def __or__(self, other: Expression) -> Expression:
        return Or.of(self, _check(other))

    def to_json(self) -> dict[str, Any]:
        """Return the wire form of this expression."""
        raise NotImplementedError


class Term(Expression):
    """One comparison of an attribute against a value."""

    def __init__(self, attribute: Attribute, op: str, value: Any = None, raw: bool = False):
        if op not in VALUE_OPS | NULL_OPS:
            raise ValueError(f"Unknown filter operator: {op!r}")
        self.attribute = attribute
        self.op = op
        self.value = value
        # String-pattern operators send their value untouched.
        self.raw = raw

    def to_json(self) -> dict[str, Any]:
        term: dict[str, Any] = {"name": self.attribute.name, "op": self.op}
        if self.op in VALUE_OPS:
            term["val"] = self.value if self.raw else self.attribute.to_filter_value(self.value)
        return term

    def __repr__(self) -> str:
        if self.op in NULL_OPS:
            return f"<Term {self.attribute.name} {self.op}>"
        return f"<Term {self.attribute.name} {self.op} {self.value!r}>"


class _Group(Expression):
    key = ""

    def __init__(self, parts: Iterable[Expression]) -> None:
        self.parts: tuple[Expression, ...] = tuple(parts)

    @classmethod
    def of(cls, *parts: Expression) -> _Group:
        flat: list[Expression] = []
        for part in parts:
            flat.extend(part.parts if type(part) is cls else (part,))
        return cls(flat)

    def to_json(self) -> dict[str, Any]:
        return {self.key: [part.to_json() for part in self.parts]}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {list(self.parts)!r}>"


class And(_Group):
    """True when every part is true."""

    key = "and"


class Or(_Group):
    """True when any part is true."""

    key = "or"


def any_of(attribute: Attribute, values: Iterable[Any]) -> Expression:
    """Build ``attribute == v1 | attribute == v2 | ...``.

    Raises:
        ValueError: ``values`` is empty.
    """
    terms = [Term(attribute, "eq", value) for value in values]
    if not terms:
        raise ValueError(f"in_ on {attribute.name!r} requires at least one value")
    return terms[0] if len(terms) == 1 else Or(terms)


def serialize_filter(expression: Expression) -> str:
    """Render an expression as the ``filter`` parameter: a JSON list of ANDed terms."""
    terms = expression.parts if isinstance(expression, And) else (expression,)
    return json.dumps([term.to_json() for term in terms], separators=(",", ":"), sort_keys=True)


def _check(other: Any) -> Expression:
    if not isinstance(other, Expression):
        raise TypeError(f"Expected a filter expression, not {type(other).__name__}")
    return other
