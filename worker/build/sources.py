"""Where a build gets its packages from and how it reaches them, composed for uv or pip.

Package sources come from the service's settings (`PACKAGE_INDEX_URL`,
`EXTRA_INDEX_URLS`, `WHEELHOUSE`) when any of them is set: they are then the whole
story, and nothing of the installer configuration of the worker's user is read.
Otherwise they come from the standard variables of the worker's environment, each
`UV_*` before the `PIP_*` of the same meaning whichever installer runs, and, for uv,
from the operator's `uv.toml` (see `operator_uv_config`). With neither, the installer's
default index (PyPI) is used.

How to reach them always comes from the worker's environment: proxies, the CA bundle
(`SSL_CERT_FILE`, `SSL_CERT_DIR`, `PIP_CERT`), hosts trusted without TLS
(`UV_INSECURE_HOST`, `PIP_TRUSTED_HOST`) and `UV_INDEX_STRATEGY`. uv also trusts the
system's certificate store unless `UV_SYSTEM_CERTS` (or `UV_NATIVE_TLS`) says not to: a
TLS-intercepting proxy's CA usually lives there.

No other configuration file is ever read: not a `uv.toml`, `pyproject.toml` or
`pip.conf` in the bundle, in the build's scratch directory (its working directory and
HOME), above it or in the environment being built, nor the host's `pip.conf` files. uv
gets `--no-config` or the operator's one `--config-file`; pip `--isolated` and
`PIP_CONFIG_FILE=/dev/null`; both get everything else on their command line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from compute.server.settings import PROXY_VARIABLES

InstallerName = Literal["uv", "pip"]

# Credentials uv reads for the named indexes of a uv.toml: `UV_INDEX_<NAME>_PASSWORD`.
INDEX_CREDENTIALS = re.compile(r"UV_INDEX_[A-Z0-9_]+_(USERNAME|PASSWORD)")
FALSE_WORDS = ("0", "false", "no", "off")
SYSTEM_CONFIG_DIRS = "/etc/xdg"
SYSTEM_UV_CONFIG = "/etc/uv/uv.toml"
QUOTED_URL = re.compile(r"""["']([a-z][a-z0-9+.-]*://[^"'\s]+)["']""", re.IGNORECASE)


@dataclass(frozen=True)
class PackageSources:
    """What one worker's builds install from and how they get there.

    Attributes:
        index_url: the index used instead of PyPI.
        extra_index_urls: indexes searched besides it.
        find_links: directories or URLs of distributions, searched besides the indexes.
        no_index: use `find_links` alone.
        config_file: the operator's `uv.toml`, which uv reads (pip never does).
        trusted_hosts: hosts reached without TLS verification (`host`, `host:port`).
        index_strategy: how uv chooses between indexes that offer the same package.
        ssl_cert_file: `SSL_CERT_FILE`: the CA bundle to trust.
        ssl_cert_dir: `SSL_CERT_DIR`: directories of CA certificates, `:`-separated.
        pip_cert: `PIP_CERT`: pip's CA bundle.
        system_certs: uv trusts the system's certificate store too.
        passed: variables the installer gets as they are: proxies, index credentials.
    """

    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    no_index: bool = False
    config_file: str | None = None
    trusted_hosts: tuple[str, ...] = ()
    index_strategy: str | None = None
    ssl_cert_file: str | None = None
    ssl_cert_dir: str | None = None
    pip_cert: str | None = None
    system_certs: bool = True
    passed: Mapping[str, str] = field(default_factory=dict)

    def arguments(self, installer: InstallerName) -> list[str]:
        """The options of `installer`'s install command that say where packages come from."""
        arguments: list[str] = []
        for location in self.find_links:
            arguments += ["--find-links", location]
        if self.no_index:
            arguments.append("--no-index")
        if self.index_url:
            arguments += ["--index-url", self.index_url]
        for url in self.extra_index_urls:
            arguments += ["--extra-index-url", url]
        if installer == "uv":
            for host in self.trusted_hosts:
                arguments += ["--allow-insecure-host", host]
            if self.index_strategy:
                arguments += ["--index-strategy", self.index_strategy]
            return arguments
        for host in self.trusted_hosts:
            arguments += ["--trusted-host", _host_and_port(host)]
        if cert := self.pip_cert or self.ssl_cert_file:
            arguments += ["--cert", cert]
        return arguments

    def config_arguments(self) -> list[str]:
        """uv's options for configuration files: the operator's, or none at all."""
        return ["--config-file", self.config_file] if self.config_file else ["--no-config"]

    def environment(self, installer: InstallerName) -> dict[str, str]:
        """Variables `installer` needs to reach the sources (not the system-certs switch,
        whose name depends on uv's version)."""
        environment = dict(self.passed)
        # Each installer's own CA variable first; the other's stands in when it is unset.
        cert = self.ssl_cert_file or (self.pip_cert if installer == "uv" else None)
        if cert:
            environment["SSL_CERT_FILE"] = cert
        if self.ssl_cert_dir:
            environment["SSL_CERT_DIR"] = self.ssl_cert_dir
        if installer == "pip":
            # `--isolated` still reads the global pip.conf and the environment's own
            # (`<environment>/pip.conf`, which the build's uid may write): this reads none.
            environment["PIP_CONFIG_FILE"] = os.devnull
        return environment

    def files(self) -> list[str]:
        """The files the installer reads: CA bundles and the operator's `uv.toml`."""
        found = (self.ssl_cert_file, self.pip_cert, self.config_file)
        return list(dict.fromkeys(path for path in found if path))

    def with_files(self, moved: Mapping[str, str]) -> PackageSources:
        """These sources with the files of `files()` read from where `moved` says."""
        return replace(
            self,
            **{
                name: moved.get(path, path)
                for name in ("ssl_cert_file", "pip_cert", "config_file")
                if (path := getattr(self, name))
            },
        )

    def directories(self) -> list[Path]:
        """Existing local directories the installer reads: local find-links, `file://`
        indexes, `SSL_CERT_DIR`."""
        found = [_local_path(location) for location in self.find_links]
        found += [_local_path(url) for url in (self.index_url, *self.extra_index_urls) if url]
        if self.ssl_cert_dir:
            found += [Path(part) for part in self.ssl_cert_dir.split(os.pathsep) if part]
        return list(dict.fromkeys(path for path in found if path is not None and path.is_dir()))

    def network_urls(self) -> list[str]:
        """Every URL the installer may connect to: indexes, find-links, proxies, and the
        URLs the operator's `uv.toml` names."""
        urls = [url for url in (self.index_url, *self.extra_index_urls) if url]
        urls += [location for location in self.find_links if "://" in location]
        urls += [
            value
            for name, value in self.passed.items()
            if name in PROXY_VARIABLES and name.upper() != "NO_PROXY"
        ]
        if self.config_file:
            urls += _urls_in_config(Path(self.config_file))
        return [url for url in dict.fromkeys(urls) if not url.startswith("file:")]


def package_sources(
    environment: Mapping[str, str],
    index_url: str | None = None,
    extra_index_urls: tuple[str, ...] = (),
    wheelhouse: Path | None = None,
) -> PackageSources:
    """The sources of the service's settings, else of the worker's `environment`.

    Args:
        environment: the worker's environment, or the part of it that concerns installers.
        index_url, extra_index_urls, wheelhouse: the service's settings. A wheelhouse
            alone is the only source (`--no-index`); with an index it is searched first.
    """
    reach = _reach(environment)
    if index_url or extra_index_urls or wheelhouse is not None:
        return replace(
            reach,
            index_url=index_url or None,
            extra_index_urls=tuple(extra_index_urls),
            find_links=(str(wheelhouse),) if wheelhouse is not None else (),
            no_index=not index_url and not extra_index_urls,
        )
    credentials = {
        name: value for name, value in environment.items() if INDEX_CREDENTIALS.fullmatch(name)
    }
    return replace(
        reach,
        index_url=_first(environment, "UV_DEFAULT_INDEX", "UV_INDEX_URL", "PIP_INDEX_URL"),
        extra_index_urls=_extra_indexes(environment),
        find_links=_first_list(environment, "UV_FIND_LINKS", "PIP_FIND_LINKS"),
        config_file=operator_uv_config(environment),
        passed={**reach.passed, **credentials},
    )


def operator_uv_config(environment: Mapping[str, str]) -> str | None:
    """The operator's `uv.toml`, found as uv finds it for the worker's user.

    `UV_CONFIG_FILE`, else the user's (`$XDG_CONFIG_HOME/uv/uv.toml` or
    `~/.config/uv/uv.toml`), else the system's (`$XDG_CONFIG_DIRS/uv/uv.toml`, then
    `/etc/uv/uv.toml`); none with `UV_NO_CONFIG`. uv itself merges a user's file over the
    system's; a build reads the first one found, whole.
    """
    if _true(environment.get("UV_NO_CONFIG")):
        return None
    if explicit := environment.get("UV_CONFIG_FILE"):
        return explicit
    candidates: list[Path] = []
    if config_home := environment.get("XDG_CONFIG_HOME"):
        candidates.append(Path(config_home) / "uv" / "uv.toml")
    elif home := environment.get("HOME"):
        candidates.append(Path(home) / ".config" / "uv" / "uv.toml")
    config_dirs = environment.get("XDG_CONFIG_DIRS") or SYSTEM_CONFIG_DIRS
    candidates += [Path(part) / "uv" / "uv.toml" for part in config_dirs.split(":") if part]
    candidates.append(Path(SYSTEM_UV_CONFIG))
    return next((str(path) for path in candidates if path.is_file()), None)


def _reach(environment: Mapping[str, str]) -> PackageSources:
    """How any source is reached: no source yet, only proxies, trust and strategy."""
    system_certs = environment.get("UV_SYSTEM_CERTS") or environment.get("UV_NATIVE_TLS")
    return PackageSources(
        trusted_hosts=_first_list(environment, "UV_INSECURE_HOST", "PIP_TRUSTED_HOST"),
        index_strategy=environment.get("UV_INDEX_STRATEGY") or None,
        ssl_cert_file=environment.get("SSL_CERT_FILE") or None,
        ssl_cert_dir=environment.get("SSL_CERT_DIR") or None,
        pip_cert=environment.get("PIP_CERT") or None,
        system_certs=system_certs is None or system_certs.strip().lower() not in FALSE_WORDS,
        passed={name: value for name, value in environment.items() if name in PROXY_VARIABLES},
    )


def _extra_indexes(environment: Mapping[str, str]) -> tuple[str, ...]:
    # `UV_INDEX` entries may be named (`internal=https://...`); the URL is what counts.
    named = [
        entry.split("=", 1)[1] if _is_named(entry) else entry
        for entry in _split(environment.get("UV_INDEX"))
    ]
    found = (*named, *_split(environment.get("UV_EXTRA_INDEX_URL")))
    return found or _split(environment.get("PIP_EXTRA_INDEX_URL"))


def _is_named(entry: str) -> bool:
    name, equals, _ = entry.partition("=")
    return bool(equals) and "/" not in name and ":" not in name


def _first(environment: Mapping[str, str], *names: str) -> str | None:
    return next((environment[name] for name in names if environment.get(name)), None)


def _first_list(environment: Mapping[str, str], *names: str) -> tuple[str, ...]:
    return next((_split(environment[name]) for name in names if environment.get(name)), ())


def _split(value: str | None) -> tuple[str, ...]:
    # uv and pip both separate the entries of one variable by whitespace.
    return tuple(value.split()) if value else ()


def _true(value: str | None) -> bool:
    return value is not None and value.strip().lower() not in ("", *FALSE_WORDS)


def _host_and_port(host: str) -> str:
    # uv takes a URL for an insecure host; pip's `--trusted-host` only `host[:port]`.
    if "://" not in host:
        return host
    return urlsplit(host).netloc.rpartition("@")[2]


def _local_path(location: str) -> Path | None:
    if location.startswith("file:"):
        return Path(unquote(urlsplit(location).path))
    if "://" in location or not os.path.isabs(location):
        return None
    return Path(location)


def _urls_in_config(path: Path) -> list[str]:
    """Every quoted URL a `uv.toml` holds, whatever its key (`index-url`, `[[index]] url`...)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []  # uv says what is wrong with it in the build log
    return QUOTED_URL.findall(text)
