"""Upgrading the schema from several machines at once, and refusing to serve a stale one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import _postgres_database

COMPUTE = [sys.executable, "-m", "compute.cli"]
UPGRADERS = 4


def _environment(data_dir: Path, database_url: str | None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env["COMPUTE_DATA_DIR"] = str(data_dir)
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> object:
    if request.param == "sqlite":
        yield None  # the data directory's own SQLite file
        return
    databases = _postgres_database()
    yield next(databases)
    next(databases, None)


def test_concurrent_upgrades_apply_each_migration_once(
    tmp_path: Path, database_url: str | None
) -> None:
    env = _environment(tmp_path / "data", database_url)
    upgraders = [
        subprocess.Popen(
            [*COMPUTE, "db", "upgrade"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        for _ in range(UPGRADERS)
    ]
    outputs = [upgrader.communicate(timeout=120)[0].decode() for upgrader in upgraders]
    assert [upgrader.returncode for upgrader in upgraders] == [0] * UPGRADERS, outputs
    url = database_url or f"sqlite:///{tmp_path / 'data' / 'compute.db'}"
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            versions = connection.execute(sa.text("SELECT version_num FROM alembic_version"))
            assert len(versions.all()) == 1
    finally:
        engine.dispose()


def test_the_api_refuses_a_schema_that_is_behind(tmp_path: Path) -> None:
    env = _environment(tmp_path / "data", None)
    (tmp_path / "data").mkdir()
    serve = [sys.executable, "-c", "import api.wsgi"]
    refused = subprocess.run(serve, env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0
    assert "schema is behind this release: run `compute db upgrade`" in refused.stderr
    upgraded = subprocess.run(
        [*COMPUTE, "db", "upgrade"], env=env, capture_output=True, timeout=120
    )
    assert upgraded.returncode == 0, upgraded.stderr
    served = subprocess.run(serve, env=env, capture_output=True, text=True, timeout=120)
    assert served.returncode == 0, served.stderr
