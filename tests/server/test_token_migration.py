"""The `tokens` migration on SQLite and PostgreSQL: it applies to a database in use, keeps
the tokens issued before it working, and goes down and up again."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
import sqlalchemy as sa
from flask import Flask
from flask_migrate import downgrade, upgrade

from api import create_app
from compute.server.extensions import db
from compute.server.tokens import (
    ALGORITHM,
    ISSUER,
    TokenRefused,
    get_or_create_user,
    issue_token,
    revoke_user_tokens,
    user_of_token,
)
from tests.conftest import _postgres_database

BEFORE = "5e6f7a8b9ca3"
NEW_TABLES = {"tokens", "token_cutoffs"}


@pytest.fixture(params=["sqlite", "postgresql"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    """An app on a fresh database migrated up to the revision before `tokens`."""
    databases = None
    if request.param == "postgresql":
        databases = _postgres_database()
        uri = next(databases)
    else:
        uri = f"sqlite:///{tmp_path / 'compute.db'}"
    app = create_app({"DATA_DIR": str(tmp_path), "TESTING": True, "SQLALCHEMY_DATABASE_URI": uri})
    with app.app_context():
        upgrade(revision=BEFORE)
        try:
            yield app
        finally:
            db.session.remove()
            db.engine.dispose()
            if databases is not None:
                next(databases, None)


def tables() -> set[str]:
    return set(sa.inspect(db.engine).get_table_names())


def test_tokens_issued_before_the_migration_keep_working(app: Flask) -> None:
    user = get_or_create_user("early")
    now = int(time.time())
    claims = {"sub": user.id, "name": "early", "iss": ISSUER, "iat": now, "exp": now + 3600}
    early = jwt.encode(claims, app.config["SECRET_KEY"], algorithm=ALGORITHM)
    assert not NEW_TABLES & tables()

    upgrade()

    assert tables() >= NEW_TABLES
    assert user_of_token(early).name == "early"
    recorded = issue_token(user)
    assert user_of_token(recorded).id == user.id
    revoke_user_tokens(user)
    for token in (early, recorded):
        with pytest.raises(TokenRefused, match="not valid"):
            user_of_token(token)


def test_the_migration_goes_down_and_up_again(app: Flask) -> None:
    upgrade()
    issue_token(get_or_create_user("round-trip"))
    db.session.remove()

    downgrade(revision=BEFORE)
    assert not NEW_TABLES & tables()
    upgrade()

    assert tables() >= NEW_TABLES
    assert db.session.scalar(sa.text("SELECT count(*) FROM tokens")) == 0
