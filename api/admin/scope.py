"""Whose objects a page shows: the viewer's own, or for an admin everyone's, or the one
user an admin picked (`?user=<id>`).

Ownership itself is `api.ownership`'s (`owner_scope`, `get_owned`), the same rules the
API keeps: these conditions only narrow them.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import request

from compute.server.extensions import db
from compute.server.models import Function, Job, User

from ..auth import current_identity
from ..ownership import owner_scope

USER_PARAM = "user"
# The user filter lists this many users at most, by name.
USER_CHOICES = 500


def picked_owner() -> User | None:
    """The user an admin asked to see; None for everyone (and always for a non-admin,
    who sees their own whatever the URL says)."""
    wanted = request.args.get(USER_PARAM, "")
    if not current_identity().is_admin or not wanted or "\x00" in wanted:
        return None
    return db.session.get(User, wanted)


def function_scope(owner: User | None) -> sa.ColumnElement[bool]:
    scope = owner_scope(Function)
    return scope if owner is None else sa.and_(scope, Function.owner_id == owner.id)


def job_scope(owner: User | None) -> sa.ColumnElement[bool]:
    scope = owner_scope(Job)
    return scope if owner is None else sa.and_(scope, Job.owner_id == owner.id)


def user_choices() -> list[User]:
    """The users an admin may filter by; none for anyone else."""
    if not current_identity().is_admin:
        return []
    return list(db.session.scalars(sa.select(User).order_by(User.name).limit(USER_CHOICES)))


def owner_names(owner_ids: set[str]) -> dict[str, str]:
    """User names by id, for an admin's tables of several users' functions."""
    if not owner_ids or not current_identity().is_admin:
        return {}
    rows = db.session.execute(sa.select(User.id, User.name).where(User.id.in_(owner_ids)))
    return {user_id: name for user_id, name in rows}
