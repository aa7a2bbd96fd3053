from __future__ import annotations

import json
import os
import stat

import pytest

import compute
from compute import ConfigurationError, load_config, write_config
from compute._client import get_default_client
from compute._config import load_settings

ENV_NAMES = [
    "COMPUTE_URL",
    "COMPUTE_TOKEN",
    "COMPUTE_CONFIG",
    "DESCARTESLABS_COMPUTE_URL",
    "DESCARTESLABS_TOKEN",
]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COMPUTE_CONFIG", str(tmp_path / "config.json"))
    compute.configure()
    yield
    compute.configure()


def test_environment_wins_and_trailing_slash_is_dropped(monkeypatch, tmp_path):
    write_config("http://file/compute/v1", "file-token")
    monkeypatch.setenv("COMPUTE_URL", "http://env/compute/v1/")
    monkeypatch.setenv("COMPUTE_TOKEN", "env-token")
    assert load_settings() == load_settings("http://env/compute/v1", "env-token")
    assert load_settings().url == "http://env/compute/v1"


def test_legacy_variables_are_a_fallback(monkeypatch):
    monkeypatch.setenv("DESCARTESLABS_COMPUTE_URL", "http://legacy/compute/v1")
    monkeypatch.setenv("DESCARTESLABS_TOKEN", "legacy-token")
    settings = load_settings()
    assert (settings.url, settings.token) == ("http://legacy/compute/v1", "legacy-token")
    monkeypatch.setenv("COMPUTE_TOKEN", "new-token")
    assert load_settings().token == "new-token"


def test_config_file_fills_missing_values(monkeypatch):
    path = write_config("http://file/compute/v1", "file-token")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_config() == {"url": "http://file/compute/v1", "token": "file-token"}
    monkeypatch.setenv("COMPUTE_TOKEN", "env-token")
    settings = load_settings()
    assert (settings.url, settings.token) == ("http://file/compute/v1", "env-token")


def test_explicit_path_and_missing_file(tmp_path):
    target = tmp_path / "nested" / "dir" / "c.json"
    write_config("http://x", "t", path=target)
    assert json.loads(target.read_text()) == {"url": "http://x", "token": "t"}
    assert load_config(tmp_path / "absent.json") == {}


def test_malformed_config_file_is_a_configuration_error(tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigurationError, match="not valid JSON"):
        load_config()


def test_missing_settings_are_a_configuration_error():
    with pytest.raises(ConfigurationError, match="COMPUTE_URL"):
        get_default_client()


def test_default_client_follows_the_environment(monkeypatch):
    monkeypatch.setenv("COMPUTE_URL", "http://one/compute/v1")
    monkeypatch.setenv("COMPUTE_TOKEN", "a")
    first = get_default_client()
    assert get_default_client() is first
    monkeypatch.setenv("COMPUTE_TOKEN", "b")
    second = get_default_client()
    assert second is not first and second.settings.token == "b"


def test_configure_overrides_until_reset(monkeypatch):
    monkeypatch.setenv("COMPUTE_URL", "http://env/compute/v1")
    monkeypatch.setenv("COMPUTE_TOKEN", "env")
    compute.configure(url="http://explicit/compute/v1", token="explicit")
    assert get_default_client().url == "http://explicit/compute/v1"
    compute.configure(token="other")
    client = get_default_client()
    assert (client.url, client.settings.token) == ("http://env/compute/v1", "other")
    compute.configure()
    assert get_default_client().settings.token == "env"
