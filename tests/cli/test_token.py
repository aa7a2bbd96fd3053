"""`compute token create --save` and `compute login`: the SDK config file."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from compute.cli import main

from .conftest import ISOLATED_VARIABLES


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in ISOLATED_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COMPUTE_CONFIG", str(tmp_path / "config" / "compute.json"))
    return CliRunner()


def saved_config(tmp_path: Path) -> dict[str, str]:
    path = tmp_path / "config" / "compute.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    return json.loads(path.read_text())


def test_token_create_save_writes_the_sdk_config(runner: CliRunner, tmp_path: Path) -> None:
    url = "http://127.0.0.1:9999/compute/v1"
    args = ["token", "create", "--user", "dana", "--data-dir", str(tmp_path / "data")]

    result = runner.invoke(main, [*args, "--save", "--url", url + "/"])

    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert token.count(".") == 2
    assert saved_config(tmp_path) == {"url": url, "token": token}


def test_token_create_without_save_writes_nothing(runner: CliRunner, tmp_path: Path) -> None:
    args = ["token", "create", "--user", "erin", "--data-dir", str(tmp_path / "data")]

    result = runner.invoke(main, args)

    assert result.exit_code == 0, result.output
    assert not (tmp_path / "config").exists()
    assert (tmp_path / "data" / "secret.key").exists()


def test_login_prompts_for_the_token(runner: CliRunner, tmp_path: Path) -> None:
    url = "http://example.test/compute/v1"

    result = runner.invoke(main, ["login", "--url", url], input="t0k\n")

    assert result.exit_code == 0, result.output
    assert saved_config(tmp_path) == {"url": url, "token": "t0k"}
    assert "t0k" not in result.stdout


def test_db_upgrade_creates_the_schema(runner: CliRunner, tmp_path: Path) -> None:
    import sqlalchemy as sa

    result = runner.invoke(main, ["db", "upgrade", "--data-dir", str(tmp_path / "data")])

    assert result.exit_code == 0, result.output
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'data' / 'compute.db'}")
    try:
        assert {"functions", "jobs"} <= set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
