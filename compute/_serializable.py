"""The convention for job results that are neither JSON nor raw bytes."""

from __future__ import annotations

import json
from typing import Any


class Serializable:
    """Base for result types that turn themselves into bytes and back.

    A job returning such an object stores ``value.serialize()``; read it back with
    ``job.result(cast_type=MyType)``, which calls ``MyType.deserialize(data)``.
    """

    def serialize(self) -> bytes:
        """Return the object as bytes."""
        raise NotImplementedError

    @classmethod
    def deserialize(cls, data: bytes) -> Any:
        """Rebuild an object from the bytes :meth:`serialize` produced."""
        raise NotImplementedError


def decode_result(data: bytes, cast_type: type | None = None) -> Any:
    """Decode a stored job result.

    Args:
        data: The raw result body.
        cast_type: A type with a ``deserialize(bytes)`` classmethod.

    Returns:
        None for an empty body; ``cast_type.deserialize(data)`` when a type is given;
        otherwise the decoded JSON, or the bytes themselves when they are not JSON.

    Raises:
        ValueError: ``cast_type`` has no callable ``deserialize``.
    """
    if not data:
        return None
    if cast_type is not None:
        deserialize = getattr(cast_type, "deserialize", None)
        if not callable(deserialize):
            raise ValueError(f"Type {cast_type!r} must implement Serializable.deserialize")
        return deserialize(data)
    try:
        return json.loads(data)
    except ValueError:
        return data
