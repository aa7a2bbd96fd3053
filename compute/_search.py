"""Lazy, chainable searches over Functions or Jobs."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ._attributes import Attribute, Sort
from ._collection import Collection
from ._filters import Expression, serialize_filter

if TYPE_CHECKING:
    from ._client import ComputeClient
    from ._document import Document

T = TypeVar("T", bound="Document")


class Search(Generic[T]):
    """A query that runs when iterated, collected or counted.

    Every method returns a new Search, leaving the original untouched.

    Args:
        document: The document class to build from results (Function or Job).
        url: The list endpoint, e.g. ``/jobs``.
        client: The client to use; the default client at run time if None.
        **params: Extra query parameters.

    Example:
        >>> search = Job.search().filter(Job.status == "failure").sort(-Job.creation_date)
        >>> for job in search.limit(10):
        ...     print(job.id)
    """

    def __init__(
        self,
        document: type[T],
        url: str,
        client: ComputeClient | None = None,
        **params: Any,
    ) -> None:
        self._document = document
        self._url = url
        self._client = client
        self._filter: Expression | None = None
        self._sort: list[Sort] = []
        self._limit: int | None = None
        self._params: dict[str, Any] = params

    def _copy(self) -> Search[T]:
        clone = copy.copy(self)
        clone._sort = list(self._sort)
        clone._params = dict(self._params)
        return clone

    def filter(self, expression: Expression) -> Search[T]:
        """Narrow the search; successive filters are ANDed.

        Args:
            expression: Built from class attributes, e.g.
                ``(Job.runtime > 60) | Job.status.in_(["failure", "timeout"])``.

        Raises:
            TypeError: ``expression`` is not a filter expression.
        """
        if not isinstance(expression, Expression):
            raise TypeError(f"Expected a filter expression, not {type(expression).__name__}")
        clone = self._copy()
        clone._filter = expression if self._filter is None else self._filter & expression
        return clone

    def sort(self, *sorts: Attribute | Sort) -> Search[T]:
        """Order the results; ``-Attribute`` sorts descending. Successive calls append.

        Raises:
            TypeError: An argument is neither an attribute nor a sort.
            ValueError: The attribute is not sortable.
        """
        clone = self._copy()
        for sort in sorts:
            if isinstance(sort, Attribute):
                sort = +sort
            elif not isinstance(sort, Sort):
                raise TypeError(f"Expected an attribute or a Sort, not {type(sort).__name__}")
            clone._sort.append(sort)
        return clone

    def limit(self, limit: int) -> Search[T]:
        """Return at most ``limit`` results; replaces any earlier limit."""
        clone = self._copy()
        clone._limit = limit
        return clone

    def param(self, **params: Any) -> Search[T]:
        """Add raw query parameters, such as ``page_size`` or ``include``."""
        clone = self._copy()
        clone._params.update(params)
        return clone

    def _serialize(self) -> dict[str, Any]:
        """Return the query parameters of the first page request."""
        params = dict(self._params)
        if self._filter is not None:
            params["filter"] = serialize_filter(self._filter)
        if self._sort:
            params["sort"] = [sort.to_string() for sort in self._sort]
        if self._limit is not None:
            params["limit"] = self._limit
        return params

    def _get_client(self) -> ComputeClient:
        if self._client is not None:
            return self._client
        from ._client import get_default_client

        return get_default_client()

    def __iter__(self) -> Iterator[T]:
        """Run the search, fetching further pages as iteration proceeds.

        Raises:
            BadRequestError: A filter, sort or parameter was rejected.
        """
        build = self._document._from_remote
        for item in self._get_client().iter_pages(self._url, self._serialize()):
            yield build(item)

    def collect(self) -> Collection[T]:
        """Run the search and return every result in a :class:`Collection`."""
        return Collection(self)

    def count(self) -> int:
        """Return the number of matching documents, ignoring any limit."""
        params = self.limit(0)._serialize()
        page = self._get_client().json("GET", self._url, params=params)
        return int(page["meta"]["total"])

    def __repr__(self) -> str:
        return f"<Search {self._document.__name__} {self._serialize()!r}>"
