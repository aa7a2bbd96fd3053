"""Engine settings per database, and applying the schema migrations."""

from __future__ import annotations

import contextlib
import fcntl
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from flask import Flask

from .stored_json import load_stored

SQLITE_BUSY_TIMEOUT_MS = 30_000


def configure_engine(app: Flask) -> None:
    """Engine options that let the API and workers share one database safely."""
    options: dict[str, Any] = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    # Every JSON column is read through the one checked reader: a row holding a value too
    # deep to load must not make each list or delete that meets it fail.
    options.setdefault("json_deserializer", load_stored)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        options.setdefault("connect_args", {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
    else:
        options.setdefault("pool_pre_ping", True)
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options


@sa.event.listens_for(sa.Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    # Write-ahead logging lets readers proceed while a worker writes.
    module = type(dbapi_connection).__module__
    if "sqlite" not in module:
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # In WAL mode NORMAL syncs at checkpoints, not at every commit: a crash of any
    # process loses nothing and corrupts nothing; only a power cut may take back the last
    # commits, which the reconciler then finds as lost attempts. Each job's claim and
    # finish no longer wait for the disk.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


# The PostgreSQL advisory lock `compute db upgrade` holds while it migrates ("comp").
MIGRATION_LOCK_KEY = 0x636F6D70


def upgrade_database(app: Flask) -> None:
    """Bring the schema up to the latest migration.

    Safe to run from several machines at once: each waits for the one migrating, then
    finds the schema current and applies nothing.
    """
    from flask_migrate import upgrade

    with app.app_context(), migration_lock(app.extensions["sqlalchemy"].engine):
        upgrade()


@contextlib.contextmanager
def migration_lock(engine: sa.Engine) -> Iterator[None]:
    """Hold the database's migration lock: an advisory lock on PostgreSQL, a lock on a
    file beside the database on SQLite (whose writers all share its machine)."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(
                sa.text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
            connection.commit()
            try:
                yield
            finally:
                connection.execute(
                    sa.text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
                connection.commit()
        return
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrating", "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


UPGRADE_ADVICE = (
    "run `compute db upgrade` with the service's environment (DATABASE_URL, "
    "COMPUTE_DATA_DIR), then start it again"
)


@dataclass(frozen=True)
class SchemaProblem:
    """Why this release cannot use the database's schema."""

    reason: str
    # Behind: `compute db upgrade` from this release fixes it. Newer: nothing this
    # release can do.
    upgrade_helps: bool


def schema_problem(app: Flask) -> SchemaProblem | None:
    """What keeps this release from using the database's schema; None when it is this
    release's (every migration applied, none unknown)."""
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from flask_migrate import Migrate

    # Reading the revision is no migration: alembic's lines about its context are noise.
    logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)
    migrate: Migrate = app.extensions["migrate"].migrate
    with app.app_context():
        # Flask-Migrate's Config subclasses alembic's; its stubs cannot say so.
        config = cast(Config, migrate.get_config())
        script = ScriptDirectory.from_config(config)
        with app.extensions["sqlalchemy"].engine.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
    if current == set(script.get_heads()):
        return None
    known = {revision.revision for revision in script.walk_revisions()}
    if unknown := sorted(current - known):
        # Migrated by a later release: upgrading from this one cannot help.
        return SchemaProblem(
            f"the database schema is newer than this release (revision {', '.join(unknown)}): "
            "install the release that migrated it",
            upgrade_helps=False,
        )
    return SchemaProblem(
        f"the database schema is behind this release: {UPGRADE_ADVICE}", upgrade_helps=True
    )


class SchemaMismatch(RuntimeError):
    """The database holds another schema than this release's (older, or newer)."""


def require_current_schema(app: Flask) -> None:
    """Refuse to serve a database whose schema is not this release's.

    A database that cannot be read yet (still starting, say) is not refused: the service
    starts, and its health check says the database is down until it answers.

    Raises:
        SchemaMismatch: saying what brings the schema and the release together.
    """
    try:
        problem = schema_problem(app)
    except sa.exc.SQLAlchemyError as error:
        logging.getLogger(__name__).warning("could not read the database's schema: %s", error)
        return
    if problem is not None:
        raise SchemaMismatch(problem.reason)
