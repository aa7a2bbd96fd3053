"""Scope every lookup to the caller: another owner's objects do not exist for them (404)."""

from __future__ import annotations

from typing import Any, TypeVar

import sqlalchemy as sa

from compute.server.extensions import db
from compute.server.models import Function, Job

from .auth import current_identity
from .errors import NotFound

Model = TypeVar("Model", Function, Job)


def owner_scope(model: type[Function] | type[Job]) -> sa.ColumnElement[bool]:
    """The condition limiting `model` rows to the caller's own (everything for an admin)."""
    identity = current_identity()
    if identity.is_admin:
        return sa.true()
    return model.owner_id == identity.user_id


def get_owned(model: type[Model], object_id: Any, *, for_update: bool = False) -> Model:
    """Load one of the caller's objects by id, or raise a 404 naming it."""
    kind = model.__name__
    # A NUL can name no row, and PostgreSQL refuses it in a query parameter.
    if not isinstance(object_id, str) or not object_id or "\x00" in object_id:
        raise NotFound(f"{kind} {object_id!r} not found.")
    statement = sa.select(model).where(model.id == object_id, owner_scope(model))
    if for_update:
        statement = statement.with_for_update()
    found = db.session.scalar(statement)
    if found is None:
        raise NotFound(f"{kind} {object_id!r} not found.")
    return found
