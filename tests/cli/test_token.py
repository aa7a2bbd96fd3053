"""`compute token create --save` and `compute login`: the SDK config file."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from compute.cli import main
from compute.cli.service_record import remove_service_record, write_service_record

from .conftest import ISOLATED_VARIABLES, free_port


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
    (tmp_path / "data").mkdir()
    args = ["token", "create", "--user", "dana", "--data-dir", str(tmp_path / "data")]

    result = runner.invoke(main, [*args, "--save", "--url", url + "/"])

    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert token.count(".") == 2
    assert saved_config(tmp_path) == {"url": url, "token": token}


def test_token_create_without_save_writes_nothing(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    args = ["token", "create", "--user", "erin", "--data-dir", str(tmp_path / "data")]

    result = runner.invoke(main, args)

    assert result.exit_code == 0, result.output
    assert not (tmp_path / "config").exists()
    assert (tmp_path / "data" / "secret.key").exists()


def test_token_create_never_makes_a_data_directory(runner: CliRunner, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"

    result = runner.invoke(main, ["token", "create", "--user", "fay", "--data-dir", str(missing)])

    assert result.exit_code == 1
    assert f"no service data directory at {missing} (--data-dir)" in result.output
    assert "compute up" in result.output
    assert not missing.exists()


def test_token_create_finds_the_default_data_directory_from_anywhere(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMPUTE_DATA_DIR", str(tmp_path / "data"))
    assert runner.invoke(main, ["db", "upgrade"]).exit_code == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    result = runner.invoke(main, ["token", "create", "--user", "gus"])

    assert result.exit_code == 0, result.output
    assert not (elsewhere / ".compute").exists()
    assert list(elsewhere.iterdir()) == []


def test_token_create_save_names_the_running_service(runner: CliRunner, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    write_service_record(data, "http://127.0.0.1:8123/compute/v1")  # this process is alive
    args = ["token", "create", "--user", "hal", "--data-dir", str(data), "--save"]

    result = runner.invoke(main, args)

    assert result.exit_code == 0, result.output
    assert saved_config(tmp_path)["url"] == "http://127.0.0.1:8123/compute/v1"
    remove_service_record(data)
    assert not (data / "service.json").exists()


def test_token_create_save_without_a_running_service_says_what_it_saved(
    runner: CliRunner, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "service.json").write_text('{"url": "http://127.0.0.1:1/compute/v1", "pid": 999999999}')

    result = runner.invoke(
        main, ["token", "create", "--user", "ida", "--data-dir", str(data), "--save"]
    )

    assert result.exit_code == 0, result.output
    assert saved_config(tmp_path)["url"] == "http://127.0.0.1:8000/compute/v1"
    assert "No running `compute up` found" in result.stderr


def test_login_prompts_for_the_token_and_saves_none_it_cannot_check(
    runner: CliRunner, tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{free_port()}/compute/v1"  # nothing listens there

    result = runner.invoke(main, ["login", "--url", url], input="t0k\n")

    assert result.exit_code == 5  # ExitCode.UNREACHABLE; tests/cli/test_client_commands.py
    assert "Token: " in result.stdout and "t0k" not in result.stdout
    assert not (tmp_path / "config").exists()


def test_db_upgrade_creates_the_schema(runner: CliRunner, tmp_path: Path) -> None:
    import sqlalchemy as sa

    result = runner.invoke(main, ["db", "upgrade", "--data-dir", str(tmp_path / "data")])

    assert result.exit_code == 0, result.output
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'data' / 'compute.db'}")
    try:
        assert {"functions", "jobs"} <= set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
