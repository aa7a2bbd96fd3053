"""Flask extensions, created unbound and attached to an app in `create_app`, and the
types of what the database extension gives: the models' base class and the session."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias, cast

import sqlalchemy as sa
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.session import Session as FlaskSession
from sqlalchemy.orm import DeclarativeBase, Session, scoped_session


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
migrate = Migrate()

if TYPE_CHECKING:
    # `db.Model` is built at run time from Base's body and Flask-SQLAlchemy's mixins; a
    # checker takes no instance attribute as a base class, so models are checked as Base's.
    Model = Base
else:
    Model = db.Model

# What the functions given a session accept: `db.session` is a scoped_session, a proxy
# with the methods of the Session of the current app context.
DbSession: TypeAlias = Session | scoped_session[FlaskSession]


def matched_rows(result: sa.Result[Any]) -> int:
    """How many rows an UPDATE or DELETE run through a session matched."""
    # Session.execute is typed to return a Result whatever the statement; for these
    # statements it is a CursorResult, the one that counts rows.
    return cast("sa.CursorResult[Any]", result).rowcount
