"""Where builds install from: the service's settings, else the standard uv and pip
variables of the worker's environment, composed for uv or pip; proxies and TLS trust
always pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from compute.server.settings import Settings, installer_environment
from worker.build import InstallerOptions
from worker.build.sources import operator_uv_config, package_sources

CA = "/etc/corp/ca.pem"
PIP_ENVIRONMENT = {
    "PIP_INDEX_URL": "https://mirror.corp.example/simple",
    "PIP_EXTRA_INDEX_URL": "https://extra-1.corp.example/simple https://extra-2.corp.example/simple",
    "PIP_FIND_LINKS": "https://wheels.corp.example/links",
    "PIP_TRUSTED_HOST": "mirror.corp.example",
    "PIP_CERT": CA,
}


def test_pip_variables_become_uv_options_when_uv_installs() -> None:
    sources = package_sources(PIP_ENVIRONMENT)
    assert sources.arguments("uv") == [
        "--find-links", "https://wheels.corp.example/links",
        "--index-url", "https://mirror.corp.example/simple",
        "--extra-index-url", "https://extra-1.corp.example/simple",
        "--extra-index-url", "https://extra-2.corp.example/simple",
        "--allow-insecure-host", "mirror.corp.example",
    ]  # fmt: skip
    # uv knows no PIP_CERT: the bundle it names is uv's SSL_CERT_FILE.
    assert sources.environment("uv") == {"SSL_CERT_FILE": CA}


def test_pip_variables_reach_pip_on_its_command_line_as_it_runs_isolated() -> None:
    sources = package_sources(PIP_ENVIRONMENT)
    assert sources.arguments("pip") == [
        "--find-links", "https://wheels.corp.example/links",
        "--index-url", "https://mirror.corp.example/simple",
        "--extra-index-url", "https://extra-1.corp.example/simple",
        "--extra-index-url", "https://extra-2.corp.example/simple",
        "--trusted-host", "mirror.corp.example",
        "--cert", CA,
    ]  # fmt: skip
    assert sources.environment("pip") == {"PIP_CONFIG_FILE": "/dev/null"}


def test_uv_variables_win_over_pip_ones_and_reach_pip_too() -> None:
    environment = {
        **PIP_ENVIRONMENT,
        "UV_INDEX_URL": "https://uv-mirror.example/simple",
        "UV_DEFAULT_INDEX": "https://uv-default.example/simple",
        "UV_INDEX": "internal=https://internal.example/simple https://plain.example/simple",
        "UV_EXTRA_INDEX_URL": "https://uv-extra.example/simple",
        "UV_FIND_LINKS": "/srv/wheels",
        "UV_INSECURE_HOST": "https://internal.example:8443",
        "UV_INDEX_STRATEGY": "unsafe-best-match",
        "SSL_CERT_FILE": "/etc/ssl/corp-bundle.pem",
    }
    sources = package_sources(environment)
    assert sources.index_url == "https://uv-default.example/simple"
    assert sources.extra_index_urls == (
        "https://internal.example/simple",
        "https://plain.example/simple",
        "https://uv-extra.example/simple",
    )
    assert sources.find_links == ("/srv/wheels",)
    assert sources.arguments("uv")[-4:] == [
        "--allow-insecure-host", "https://internal.example:8443",
        "--index-strategy", "unsafe-best-match",
    ]  # fmt: skip
    # Each installer's own CA variable first.
    assert sources.environment("uv")["SSL_CERT_FILE"] == "/etc/ssl/corp-bundle.pem"
    pip = sources.arguments("pip")
    assert pip[pip.index("--trusted-host") + 1] == "internal.example:8443"
    assert pip[pip.index("--cert") + 1] == CA
    assert "--index-strategy" not in pip


def test_the_services_settings_win_over_the_environment_but_not_its_proxies_and_trust(
    tmp_path: Path,
) -> None:
    environment = {
        **PIP_ENVIRONMENT,
        "HTTPS_PROXY": "http://proxy.corp.example:3128",
        "no_proxy": "localhost",
        "SSL_CERT_DIR": "/etc/ssl/certs",
        "UV_INSECURE_HOST": "mirror.internal",
        "PATH": "/opt/evil/bin",
        "AWS_SECRET_ACCESS_KEY": "not for builds",
    }
    wheelhouse_only = InstallerOptions(wheelhouse=tmp_path, environment=environment)
    assert wheelhouse_only.source_arguments() == [
        "--find-links", str(tmp_path), "--no-index",
        "--allow-insecure-host", "mirror.internal",
    ]  # fmt: skip
    indexed = InstallerOptions(
        index_url="https://ours.example/simple",
        extra_index_urls=("https://ours-extra.example/simple",),
        environment=environment,
    )
    sources = indexed.sources()
    assert (sources.index_url, sources.extra_index_urls, sources.find_links) == (
        "https://ours.example/simple",
        ("https://ours-extra.example/simple",),
        (),
    )
    assert sources.config_file is None
    assert sources.environment("uv") == {
        "HTTPS_PROXY": "http://proxy.corp.example:3128",
        "no_proxy": "localhost",
        "SSL_CERT_FILE": CA,
        "SSL_CERT_DIR": "/etc/ssl/certs",
    }


def test_nothing_set_leaves_the_installers_default_and_the_system_certificates() -> None:
    sources = package_sources({})
    assert sources.arguments("uv") == sources.arguments("pip") == []
    assert sources.config_arguments() == ["--no-config"]
    assert sources.system_certs
    assert not package_sources({"UV_SYSTEM_CERTS": "false"}).system_certs
    assert not package_sources({"UV_NATIVE_TLS": "0"}).system_certs
    assert package_sources({"UV_NATIVE_TLS": "1"}).system_certs


def test_the_operators_uv_config_is_found_as_uv_finds_it(tmp_path: Path) -> None:
    home, config_home, system = tmp_path / "home", tmp_path / "xdg", tmp_path / "xdg-dirs"
    for path in (home / ".config" / "uv", config_home / "uv", system / "uv"):
        path.mkdir(parents=True)
        (path / "uv.toml").write_text('index-url = "https://x.example/simple"\n')
    assert operator_uv_config({"HOME": str(home)}) == str(home / ".config/uv/uv.toml")
    assert operator_uv_config({"HOME": str(home), "XDG_CONFIG_HOME": str(config_home)}) == str(
        config_home / "uv/uv.toml"
    )
    assert operator_uv_config(
        {"HOME": str(tmp_path / "nobody"), "XDG_CONFIG_DIRS": f"/nonexistent:{system}"}
    ) == str(system / "uv/uv.toml")
    explicit = {"HOME": str(home), "UV_CONFIG_FILE": "/etc/compute/uv.toml"}
    assert operator_uv_config(explicit) == "/etc/compute/uv.toml"
    assert operator_uv_config({**explicit, "UV_NO_CONFIG": "1"}) is None
    sources = package_sources({"HOME": str(home)})
    assert sources.config_arguments() == ["--config-file", str(home / ".config/uv/uv.toml")]
    # The service's own settings leave the operator's installer configuration aside.
    assert package_sources({"HOME": str(home)}, index_url="https://ours/simple").config_file is None


def test_the_network_policy_hears_of_every_host_a_build_connects_to(tmp_path: Path) -> None:
    config = tmp_path / "uv.toml"
    config.write_text(
        '[[index]]\nname = "corp"\nurl = "https://127.0.0.1:8443/simple"\n'
        "[pip]\nfind-links = ['http://[::1]:8080/links']\n"
    )
    environment = {
        "UV_CONFIG_FILE": str(config),
        "UV_INDEX_URL": "https://user:pw@mirror.example/simple",
        "PIP_FIND_LINKS": "file:///srv/wheels https://links.example/",
        "ALL_PROXY": "socks5h://127.0.0.1:1080",
        "NO_PROXY": "localhost,127.0.0.1",
    }
    assert InstallerOptions(environment=environment).network_urls() == [
        "https://user:pw@mirror.example/simple",
        "https://links.example/",
        "socks5h://127.0.0.1:1080",
        "https://127.0.0.1:8443/simple",
        "http://[::1]:8080/links",
    ]


def test_local_sources_are_the_directories_a_build_must_see(tmp_path: Path) -> None:
    wheels, index, certs = tmp_path / "wheels", tmp_path / "index", tmp_path / "certs"
    for directory in (wheels, index, certs):
        directory.mkdir()
    sources = package_sources(
        {
            "UV_FIND_LINKS": f"{wheels} {tmp_path / 'missing'} https://h/links",
            "PIP_INDEX_URL": f"file://{index}",
            "SSL_CERT_DIR": f"{certs}:/nonexistent",
        }
    )
    assert sources.directories() == [wheels, index, certs]


def test_index_credentials_of_the_environment_are_secrets() -> None:
    options = InstallerOptions(
        extra_index_urls=("https://token-0123456789@extra.example/simple",),
        environment={
            "PIP_INDEX_URL": "https://user:pip-password-123@mirror.example/simple",
            "HTTPS_PROXY": "http://proxyuser:proxy-password@proxy:3128",
            "UV_INDEX_CORP_PASSWORD": "corp-index-password",
        },
    )
    assert {
        "token-0123456789",
        "pip-password-123",
        "proxy-password",
        "corp-index-password",
    } <= set(options.secrets())
    # uv reads the credentials of a uv.toml's named index from these: they pass along
    # with the environment's index settings, and are left behind with them.
    inherited = package_sources({"UV_INDEX_CORP_PASSWORD": "corp-index-password"})
    assert inherited.environment("uv") == {"UV_INDEX_CORP_PASSWORD": "corp-index-password"}
    assert "UV_INDEX_CORP_PASSWORD" not in options.sources().environment("uv")


def test_options_from_the_service_configuration() -> None:
    options = InstallerOptions.from_settings(
        Settings.from_mapping(
            {
                "JOB_UID_BASE": 200_000,
                "JOB_UID_COUNT": 1000,
                "PACKAGE_INDEX_URL": "https://ours.example/simple",
                "EXTRA_INDEX_URLS": "https://a.example/simple, https://b.example/simple",
                "INSTALLER_ENVIRONMENT": {"HTTPS_PROXY": "http://proxy:3128"},
            }
        )
    )
    assert options.extra_index_urls == ("https://a.example/simple", "https://b.example/simple")
    assert options.network_urls()[-1] == "http://proxy:3128"
    listed = InstallerOptions.from_settings(
        Settings.from_mapping({"EXTRA_INDEX_URLS": ["https://c.example/simple"]})
    )
    assert listed.extra_index_urls == ("https://c.example/simple",)


def test_the_service_snapshots_only_what_concerns_installers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("UV_INDEX_URL", "https://mirror.example/simple")
    monkeypatch.setenv("PIP_TRUSTED_HOST", "mirror.example")
    monkeypatch.setenv("https_proxy", "http://proxy:3128")
    monkeypatch.setenv("SSL_CERT_FILE", CA)
    monkeypatch.setenv("COMPUTE_SECRET_KEY", "never for builds")
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:pw@db/compute")
    snapshot = installer_environment()
    assert snapshot["UV_INDEX_URL"] == "https://mirror.example/simple"
    assert snapshot["PIP_TRUSTED_HOST"] == "mirror.example"
    assert snapshot["https_proxy"] == "http://proxy:3128"
    assert snapshot["SSL_CERT_FILE"] == CA
    assert "COMPUTE_SECRET_KEY" not in snapshot and "DATABASE_URL" not in snapshot
