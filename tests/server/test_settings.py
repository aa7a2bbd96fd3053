"""The service's typed settings: one default each, read from the environment by kind."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from compute.server.app import service_app
from compute.server.settings import Settings, SettingsError, default_work_dir, load_settings


def test_every_setting_has_one_default_and_a_kind(tmp_path: Path) -> None:
    settings = Settings.from_mapping({"DATA_DIR": str(tmp_path)})
    assert settings.work_dir == default_work_dir(tmp_path)
    assert settings.sqlalchemy_database_uri == f"sqlite:///{tmp_path / 'compute.db'}"
    assert settings.build_timeout_seconds == 900.0
    assert settings.only_binary_packages is False
    assert settings.python_interpreters == ()
    config = settings.as_config()
    assert set(config) == {item.name.upper() for item in fields(Settings)}


def test_environment_values_are_typed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPUTE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COMPUTE_WARM_EXECUTORS", "false")
    monkeypatch.setenv("COMPUTE_JOB_LEASE_SECONDS", "7")
    monkeypatch.setenv("COMPUTE_PYTHON_INTERPRETERS", "/opt/a/bin/python, /opt/b/bin/python")
    monkeypatch.setenv("COMPUTE_ONLY_BINARY_PACKAGES", "1")
    monkeypatch.setenv("COMPUTE_PACKAGE_INDEX_URL", "https://pypi.example/simple")
    settings = load_settings()
    assert settings.data_dir == tmp_path
    assert settings.warm_executors is False
    assert settings.job_lease_seconds == 7.0
    assert settings.python_interpreters == ("/opt/a/bin/python", "/opt/b/bin/python")
    assert settings.only_binary_packages is True
    assert settings.package_index_url == "https://pypi.example/simple"


@pytest.mark.parametrize(
    ("variable", "value", "kind"),
    [
        ("COMPUTE_JOB_UID_BASE", "lots", "a whole number"),
        ("COMPUTE_JOB_LEASE_SECONDS", "soon", "a number"),
        ("COMPUTE_WARM_EXECUTORS", "maybe", "true or false"),
    ],
)
def test_a_value_of_the_wrong_kind_names_its_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, kind: str
) -> None:
    monkeypatch.setenv("COMPUTE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=f"^{variable} must be {kind}, not '{value}'$"):
        load_settings()


def test_the_service_app_holds_the_typed_settings_and_no_routes(tmp_path: Path) -> None:
    app = service_app({"DATA_DIR": str(tmp_path), "JOB_DISK_MB": "512"})
    settings = Settings.of(app)
    assert settings.job_disk_mb == 512
    assert settings.secret_key and settings.secret_key not in repr(settings)
    assert settings.default_image and settings.default_image.startswith("python3.")
    assert app.config["WORK_DIR"] == settings.work_dir
    assert [rule.rule for rule in app.url_map.iter_rules()] == ["/static/<path:filename>"]


def test_every_setting_is_documented() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    # Snapshotted from the worker's environment (uv's, pip's and proxy variables), not set.
    snapshots = {"installer_environment"}
    undocumented = [
        f"COMPUTE_{item.name.upper()}"
        for item in fields(Settings)
        if item.name not in snapshots and f"`COMPUTE_{item.name.upper()}`" not in readme
    ]
    assert undocumented == []
