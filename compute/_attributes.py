"""Typed attributes of documents; on the class they also build filters and sorts."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ._filters import Expression, Term, any_of

if TYPE_CHECKING:
    from ._document import Document

_FRACTION = re.compile(r"(\.\d+)(?=[+-]\d\d:?\d\d$|$)")


class Sort:
    """A sort order on one attribute; ``-Job.creation_date`` sorts descending."""

    def __init__(self, name: str, ascending: bool = True) -> None:
        self.name = name
        self.ascending = ascending

    def to_string(self) -> str:
        """Return the ``sort`` parameter value, ``-name`` when descending."""
        return self.name if self.ascending else f"-{self.name}"

    def __repr__(self) -> str:
        return f"Sort({self.name!r}, {'asc' if self.ascending else 'desc'!r})"


class Attribute:
    """A typed attribute of a :class:`~compute._document.Document`.

    On an instance it reads and writes the value; on the class it builds filter
    expressions (``Job.status == "pending"``) and sorts (``-Job.creation_date``).

    Args:
        type: Values are converted with ``type(value)`` unless already of that type.
        doc: The attribute's documentation.
        filterable: Whether searches may filter on it.
        sortable: Whether searches may sort on it.
        mutable: If False, the value can be set once and never changed.
        readonly: If True, only the service sets the value.
    """

    # Comparison operators build expressions, so hashing falls back to identity.
    __hash__ = object.__hash__

    def __init__(
        self,
        type: Callable[[Any], Any] | None = None,
        *,
        doc: str | None = None,
        filterable: bool = False,
        sortable: bool = False,
        mutable: bool = True,
        readonly: bool = False,
    ) -> None:
        self.type = type
        self.filterable = filterable
        self.sortable = sortable
        self.mutable = mutable
        self.readonly = readonly
        self.name = ""
        self.__doc__ = doc

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: Document | None, owner: type | None = None) -> Any:
        if instance is None:
            return self
        if instance._deleted:
            raise AttributeError(f"{type(instance).__name__} has been deleted")
        return instance._attributes.get(self.name)

    def __set__(self, instance: Document, value: Any) -> None:
        if self.readonly:
            raise ValueError(f"Unable to set readonly attribute '{self.name}'")
        current = instance._attributes.get(self.name)
        if not self.mutable and current is not None:
            raise ValueError(f"Unable to set immutable attribute '{self.name}'")
        value = self.coerce(value)
        if value == current:
            return
        instance._attributes[self.name] = value
        instance._modified.add(self.name)

    def __delete__(self, instance: Document) -> None:
        raise ValueError(f"Unable to delete attribute '{self.name}'")

    def coerce(self, value: Any) -> Any:
        """Convert a value to this attribute's type; None stays None.

        Raises:
            ValueError: The value cannot be converted.
        """
        if value is None or self.type is None or _is_instance(value, self.type):
            return value
        try:
            return self.type(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"Invalid value for '{self.name}': {value!r} ({exc})") from exc

    def load(self, value: Any) -> Any:
        """Convert a value sent by the service, keeping it as is if it does not convert."""
        try:
            return self.coerce(value)
        except ValueError:
            return value

    def serialize(self, value: Any) -> Any:
        """Return the JSON form of a value of this attribute."""
        return value

    def to_filter_value(self, value: Any) -> Any:
        """Return the JSON form of a filter value compared against this attribute."""
        return self.serialize(self.coerce(value))

    def _filter(self, op: str, value: Any = None, raw: bool = False) -> Term:
        if not self.filterable:
            raise ValueError(f"Cannot filter on attribute '{self.name}'")
        return Term(self, op, value, raw=raw)

    # `==` and `!=` build filter terms, as SQLAlchemy's columns do, not a bool.
    def __eq__(self, value: Any) -> Term:  # type: ignore[override]
        return self._filter("eq", value)

    def __ne__(self, value: Any) -> Term:  # type: ignore[override]
        return self._filter("ne", value)

    def __lt__(self, value: Any) -> Term:
        return self._filter("lt", value)

    def __le__(self, value: Any) -> Term:
        return self._filter("lte", value)

    def __gt__(self, value: Any) -> Term:
        return self._filter("gt", value)

    def __ge__(self, value: Any) -> Term:
        return self._filter("gte", value)

    def in_(self, values: Iterable[Any]) -> Expression:
        """Match any of the given values (an OR of equalities)."""
        if not self.filterable:
            raise ValueError(f"Cannot filter on attribute '{self.name}'")
        return any_of(self, values)

    any_of = in_

    def prefix(self, prefix: str) -> Term:
        """Match string values starting with ``prefix``."""
        return self._filter("prefix", prefix, raw=True)

    startswith = prefix

    def like(self, pattern: str) -> Term:
        """Match a case-insensitive SQL pattern (``%`` any run, ``_`` one character)."""
        return self._filter("ilike", pattern, raw=True)

    ilike = like

    @property
    def isnull(self) -> Term:
        """Match documents where the value is null."""
        return self._filter("isnull")

    @property
    def isnotnull(self) -> Term:
        """Match documents where the value is not null."""
        return self._filter("isnotnull")

    def __neg__(self) -> Sort:
        return self._sort(ascending=False)

    def __pos__(self) -> Sort:
        return self._sort(ascending=True)

    def _sort(self, ascending: bool) -> Sort:
        if not self.sortable:
            raise ValueError(f"Cannot sort on attribute '{self.name}'")
        return Sort(self.name, ascending)

    def __repr__(self) -> str:
        return f"<Attribute {self.name}>"


class DatetimeAttribute(Attribute):
    """A timezone-aware datetime, read from ISO-8601 strings (``Z`` or ``+00:00``).

    Strings without an offset are taken as UTC; naive ``datetime`` objects given in
    filters are taken as local time, as ``datetime.astimezone`` does.
    """

    def __init__(self, **flags: Any) -> None:
        super().__init__(parse_datetime, **flags)

    def coerce(self, value: Any) -> Any:
        if value is None or isinstance(value, datetime):
            return value
        return super().coerce(value)

    def serialize(self, value: Any) -> Any:
        if value is None:
            return None
        return value.astimezone(timezone.utc).isoformat()


def parse_datetime(value: str | float | int) -> datetime:
    """Parse an ISO-8601 string or a UNIX timestamp into an aware datetime."""
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, tz=timezone.utc)
    if not isinstance(value, str):
        raise TypeError(f"expected an ISO-8601 string, not {type(value).__name__}")
    text = value.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    # Older Pythons only accept 3 or 6 fractional digits.
    text = _FRACTION.sub(lambda m: (m.group(1) + "000000")[:7], text)
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _is_instance(value: Any, kind: Any) -> bool:
    return isinstance(kind, type) and isinstance(value, kind)
