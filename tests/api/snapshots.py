"""Everything a request could change, in a form two snapshots can be compared in.

A snapshot holds, for every table of the schema, its row count and a content hash of
its rows, and for every file of the blob store, a hash of its content. Tables are read
from the database itself, so one added by a later migration is covered without a
change here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import sqlalchemy as sa

from compute.server.extensions import db
from tests.conftest import ApiServer

# Written by the migration tool, never by a request.
IGNORED_TABLES = frozenset({"alembic_version"})


@dataclass(frozen=True)
class Snapshot:
    tables: dict[str, tuple[int, str]]
    blobs: dict[str, str]

    def differences(self, other: Snapshot) -> list[str]:
        """What changed between this snapshot and `other`, one line per table or blob."""
        changed = [
            f"table {name}: {self.tables.get(name)} -> {other.tables.get(name)}"
            for name in sorted(self.tables.keys() | other.tables.keys())
            if self.tables.get(name) != other.tables.get(name)
        ]
        changed += [
            f"blob {key}: {self.blobs.get(key, 'absent')} -> {other.blobs.get(key, 'absent')}"
            for key in sorted(self.blobs.keys() | other.blobs.keys())
            if self.blobs.get(key) != other.blobs.get(key)
        ]
        return changed


def table_digests() -> dict[str, tuple[int, str]]:
    """Row count and content hash of every table, in the current app context."""
    inspector = sa.inspect(db.engine)
    digests: dict[str, tuple[int, str]] = {}
    for name in sorted(set(inspector.get_table_names()) - IGNORED_TABLES):
        columns = [sa.column(column["name"]) for column in inspector.get_columns(name)]
        rows = db.session.execute(sa.select(*columns).select_from(sa.table(name))).all()
        # Sorted here: PostgreSQL cannot order by a json column.
        lines = sorted(json.dumps([str(value) for value in row]) for row in rows)
        digests[name] = (len(rows), hashlib.sha256("\n".join(lines).encode()).hexdigest())
    db.session.rollback()
    return digests


def blob_digests(root: Path) -> dict[str, str]:
    """A content hash of every file under the blob store's `root`, by relative path."""
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def snapshot(api_server: ApiServer) -> Snapshot:
    """The API's whole stored state: its database and its blob store."""
    with api_server.app.app_context():
        tables = table_digests()
    root = Path(urlparse(api_server.app.config["BLOB_URL"]).path)
    return Snapshot(tables, blob_digests(root))
