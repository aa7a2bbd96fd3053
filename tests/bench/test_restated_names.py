"""The bench runs on the SDK's side, which imports no part of the service, so it restates
the few names it shares with the service: these must stay the service's."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest
import sqlalchemy as sa

import compute.server.database  # noqa: F401  (sets up every SQLite connection it opens)
from compute.bench import hand_written, memory, results, submit
from compute.bench.service import cached_work_dir
from compute.server import dispatch, settings
from compute.server.blobstore import FileBlobStore, job_result_key
from worker.execution import runtime

PRAGMAS = ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")


def test_the_queue_and_publishing_names_are_the_services() -> None:
    assert dispatch.function_queue("f1") == submit.FUNCTION_QUEUE_PREFIX + "f1"
    assert dispatch.publishing_key("f1") == submit.PUBLISHING_KEY_PREFIX + "f1"


def test_a_result_is_read_where_the_blob_store_keeps_it(tmp_path: Path) -> None:
    stored = FileBlobStore(tmp_path).path(job_result_key("f1", "j1"))

    assert results.result_path(tmp_path, "f1", "j1") == stored


def test_the_hand_written_database_is_set_up_as_the_services(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'service.db'}")
    with engine.connect() as connection:
        service = {name: connection.exec_driver_sql(f"PRAGMA {name}").scalar() for name in PRAGMAS}
    engine.dispose()

    with contextlib.closing(hand_written.connect(tmp_path / "baseline.db")) as connection:
        baseline = {name: connection.execute(f"PRAGMA {name}").fetchone()[0] for name in PRAGMAS}

    assert baseline == service


def test_the_work_directory_is_removed_where_a_root_worker_keeps_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    monkeypatch.setattr(os, "geteuid", lambda: 0)

    assert settings.default_work_dir(closed / "data") == cached_work_dir(closed / "data")


def test_warm_executors_are_found_by_the_script_they_run() -> None:
    assert memory.EXECUTOR_MARKER in runtime.EXECUTOR_MAIN.name
