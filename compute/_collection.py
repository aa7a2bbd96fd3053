"""A list of documents with a few helpers for working on all of them at once."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Generic, SupportsIndex, TypeVar, overload

T = TypeVar("T")


class Collection(list[T], Generic[T]):
    """A list of search results.

    Example:
        >>> jobs = Job.search().collect()
        >>> jobs.each.status.collect()  # the status of every job
        >>> jobs.filter(lambda j: j.runtime and j.runtime > 60)
    """

    @overload
    def __getitem__(self, index: SupportsIndex) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> Collection[T]: ...

    def __getitem__(self, index: Any) -> Any:
        item = super().__getitem__(index)
        return type(self)(item) if isinstance(index, slice) else item

    @property
    def each(self) -> _Each:
        """Access an attribute, or call a method, on every item: ``jobs.each.refresh()``."""
        return _Each(self)

    def map(self, function: Callable[[T], Any]) -> Collection[Any]:
        """Return a Collection of ``function(item)`` for every item."""
        return Collection(function(item) for item in self)

    def filter(self, predicate: Callable[[T], Any]) -> Collection[T]:
        """Return a Collection of the items for which ``predicate(item)`` is true."""
        return type(self)(item for item in self if predicate(item))

    def sorted(self, *fields: str, reverse: bool = False) -> Collection[T]:
        """Return a Collection sorted by the named attributes."""

        def key(item: T) -> tuple[Any, ...]:
            return tuple(getattr(item, field) for field in fields)

        return type(self)(sorted(self, key=key, reverse=reverse))

    def groupby(self, field: str) -> dict[Any, Collection[T]]:
        """Group the items by the value of one attribute."""
        groups: dict[Any, Collection[T]] = {}
        for item in self:
            groups.setdefault(getattr(item, field), type(self)()).append(item)
        return groups

    def __repr__(self) -> str:
        return f"Collection({list.__repr__(self)})"


class _Each:
    """Applies attribute access and calls to every item of a collection."""

    def __init__(self, items: Iterable[Any]) -> None:
        self._items = list(items)

    def __getattr__(self, name: str) -> _Each:
        return _Each(getattr(item, name) for item in self._items)

    def __call__(self, *args: Any, **kwargs: Any) -> Collection[Any]:
        return Collection(item(*args, **kwargs) for item in self._items)

    def __iter__(self) -> Any:
        return iter(self._items)

    def collect(self) -> Collection[Any]:
        """Return the current values as a Collection."""
        return Collection(self._items)

    def __repr__(self) -> str:
        return f"Each({self._items!r})"
