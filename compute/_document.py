"""The base of Function and Job: typed attributes plus local/remote state tracking."""

from __future__ import annotations

from typing import Any, TypeVar

from strenum import StrEnum

from ._attributes import Attribute

D = TypeVar("D", bound="Document")


class DocumentState(StrEnum):
    """Where a document stands relative to the service."""

    NEW = "new"
    SAVED = "saved"
    MODIFIED = "modified"
    DELETED = "deleted"


class Document:
    """An object of the service, with typed :class:`Attribute` fields.

    Fields the service sends but the class does not declare are kept and readable as
    plain attributes, so a newer server does not break an older SDK.

    Args:
        saved: True when ``fields`` come from the service (readonly fields allowed).
        **fields: Attribute values.

    Raises:
        ValueError: An unknown field was given, or a readonly one without ``saved``.
    """

    _fields: dict[str, Attribute] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fields: dict[str, Attribute] = {}
        for klass in reversed(cls.__mro__):
            fields.update({k: v for k, v in vars(klass).items() if isinstance(v, Attribute)})
        cls._fields = fields

    def __init__(self, saved: bool = False, **fields: Any) -> None:
        self._attributes: dict[str, Any] = {}
        self._modified: set[str] = set()
        self._extra: dict[str, Any] = {}
        self._saved = False
        self._deleted = False
        if saved:
            self._load_from_remote(fields)
        else:
            self._fill(fields, ignore_missing=False)

    @classmethod
    def _from_remote(cls: type[D], data: dict[str, Any]) -> D:
        """Build a saved document from a service response without running ``__init__``."""
        document = cls.__new__(cls)
        document._attributes = {}
        document._modified = set()
        document._extra = {}
        document._deleted = False
        document._load_from_remote(data)
        return document

    def _load_from_remote(self, data: dict[str, Any]) -> None:
        fields = self._fields
        for key, value in data.items():
            attribute = fields.get(key)
            if attribute is None:
                self._extra[key] = value
            else:
                self._attributes[key] = attribute.load(value)
        self._modified.clear()
        self._saved = True

    def _fill(self, data: dict[str, Any], ignore_missing: bool) -> None:
        for key, value in data.items():
            if key in self._fields:
                setattr(self, key, value)
            elif not ignore_missing:
                raise ValueError(f"{type(self).__name__} has no attribute '{key}'")

    def __getattr__(self, name: str) -> Any:
        # Only reached for names not found normally: serve fields the class lacks.
        if self.__dict__.get("_deleted"):
            raise AttributeError(f"{type(self).__name__} has been deleted")
        extra = self.__dict__.get("_extra")
        if extra is not None and name in extra:
            return extra[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def state(self) -> DocumentState:
        """NEW until saved, SAVED, MODIFIED after local changes, or DELETED."""
        if self._deleted:
            return DocumentState.DELETED
        if not self._saved:
            return DocumentState.NEW
        return DocumentState.MODIFIED if self._modified else DocumentState.SAVED

    @property
    def is_modified(self) -> bool:
        """Whether attributes were changed locally since the last save or load."""
        return bool(self._modified)

    def update(self, ignore_missing: bool = False, **kwargs: Any) -> None:
        """Set several attributes at once.

        Args:
            ignore_missing: Skip unknown names instead of raising.
            **kwargs: Attribute values.

        Raises:
            ValueError: An unknown, readonly or already-set immutable attribute was given.
        """
        self._fill(kwargs, ignore_missing=ignore_missing)

    def to_dict(
        self,
        only_modified: bool = False,
        exclude_readonly: bool = False,
        exclude_none: bool = False,
    ) -> dict[str, Any]:
        """Return the attributes as a JSON-serialisable dict.

        Args:
            only_modified: Only include attributes changed locally.
            exclude_readonly: Leave out attributes set by the service only.
            exclude_none: Leave out attributes whose value is None.
        """
        data: dict[str, Any] = {}
        for name, attribute in self._fields.items():
            if (only_modified and name not in self._modified) or (
                exclude_readonly and attribute.readonly
            ):
                continue
            value = self._attributes.get(name)
            if exclude_none and value is None:
                continue
            data[name] = attribute.serialize(value)
        return data

    def _require_saved(self, action: str) -> None:
        if self._deleted:
            raise ValueError(f"Cannot {action} a {type(self).__name__} that was deleted")
        if not self._saved:
            raise ValueError(f"Cannot {action} a {type(self).__name__} that has not been saved")

    def __repr__(self) -> str:
        if self._deleted:
            return f"<{type(self).__name__} (deleted)>"
        pairs = ", ".join(f"{k}={self._attributes.get(k)!r}" for k in self._fields)
        return f"<{type(self).__name__} {pairs}>"
