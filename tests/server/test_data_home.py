"""One data home per user, whatever the current directory; a work directory jobs can reach."""

from __future__ import annotations

from pathlib import Path

import pytest

from compute.server.settings import (
    ROOT_DATA_DIR,
    ROOT_WORK_CACHE,
    default_data_dir,
    default_work_dir,
)
from tests.capabilities import ROOT, requires
from tests.unprivileged import as_a_user


@pytest.fixture(autouse=True)
def no_configured_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMPUTE_DATA_DIR", raising=False)


def test_the_configured_data_dir_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPUTE_DATA_DIR", str(tmp_path / "service"))
    assert default_data_dir() == tmp_path / "service"


def test_the_default_does_not_depend_on_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    first = default_data_dir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")

    assert default_data_dir() == first
    assert tmp_path not in first.parents


@requires(ROOT, "root (whose default this checks)")
def test_root_keeps_its_service_where_services_live() -> None:
    assert default_data_dir() == ROOT_DATA_DIR


def test_a_user_keeps_it_in_the_data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    assert as_a_user(lambda: str(default_data_dir())) == str(tmp_path / "share" / "compute")


def test_an_open_data_dir_keeps_its_work_dir(tmp_path: Path) -> None:
    open_dir = Path("/var/lib/compute-tests-open-data") if ROOT else tmp_path
    assert default_work_dir(open_dir / "data") == open_dir / "data" / "work"


@requires(ROOT, "root (jobs run as other uids only under root)")
def test_a_closed_data_dir_moves_the_work_dir_where_jobs_reach(tmp_path: Path) -> None:
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)

    work_dir = default_work_dir(closed / "data")

    assert work_dir.parent == ROOT_WORK_CACHE
    assert default_work_dir(closed / "data") == work_dir
    assert default_work_dir(closed / "other") != work_dir
