"""Where the SDK finds the service URL and the user's token.

This is the only module of the SDK that reads the environment. Each setting is
resolved on its own, first match wins:

1. a value passed explicitly (``compute.configure(url=..., token=...)``);
2. ``COMPUTE_URL`` / ``COMPUTE_TOKEN``;
3. ``DESCARTESLABS_COMPUTE_URL`` / ``DESCARTESLABS_TOKEN``, for code written for the
   older client;
4. the JSON file at ``$COMPUTE_CONFIG``, else ``~/.config/compute/config.json``,
   with the keys ``url`` and ``token`` (written by ``compute login``).

``COMPUTE_PROGRESS`` (``1`` or ``0``) turns progress bars on or off where a call does
not say (see ``_progress``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._exceptions import ConfigurationError

ENV_URL = "COMPUTE_URL"
ENV_TOKEN = "COMPUTE_TOKEN"
ENV_CONFIG = "COMPUTE_CONFIG"
LEGACY_ENV_URL = "DESCARTESLABS_COMPUTE_URL"
LEGACY_ENV_TOKEN = "DESCARTESLABS_TOKEN"
DEFAULT_CONFIG_PATH = Path("~/.config/compute/config.json")
ENV_PROGRESS = "COMPUTE_PROGRESS"
SETTING_ON = frozenset({"1", "true", "yes", "on"})
SETTING_OFF = frozenset({"0", "false", "no", "off"})


def progress_setting() -> bool | None:
    """``COMPUTE_PROGRESS`` as on (True) or off (False); None when it is not set.

    Raises:
        ConfigurationError: It is set to a value that is neither on nor off.
    """
    setting = os.environ.get(ENV_PROGRESS, "").strip().lower()
    if setting in SETTING_ON:
        return True
    if setting in SETTING_OFF:
        return False
    if setting:
        raise ConfigurationError(
            f"{ENV_PROGRESS}={setting!r}: use 1 to show progress bars or 0 to hide them"
        )
    return None


@dataclass(frozen=True)
class Settings:
    """The resolved connection settings.

    Attributes:
        url: The base URL of the API, without a trailing slash, or None if unknown.
        token: The bearer token, or None if unknown.
    """

    url: str | None
    token: str | None

    def require(self) -> Settings:
        """Return self, or raise ConfigurationError when the URL or token is missing."""
        missing = [name for name, value in (("URL", self.url), ("token", self.token)) if not value]
        if missing:
            raise ConfigurationError(
                f"No compute service {' or '.join(missing)} configured: set {ENV_URL} and "
                f"{ENV_TOKEN}, run `compute login`, or call compute.configure(url=..., token=...)"
            )
        return self


def config_path(path: str | os.PathLike[str] | None = None) -> Path:
    """Return the config file location: ``path``, ``$COMPUTE_CONFIG`` or the default."""
    chosen = path or os.environ.get(ENV_CONFIG) or DEFAULT_CONFIG_PATH
    return Path(chosen).expanduser()


def load_config(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Read the JSON config file.

    Args:
        path: The file to read; defaults to :func:`config_path`.

    Returns:
        The file's keys (``url``, ``token``), or an empty dict when there is no file.

    Raises:
        ConfigurationError: The file exists but is not a JSON object.
    """
    file = config_path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigurationError(f"Cannot read config file {file}: {exc}") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigurationError(f"Config file {file} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigurationError(f"Config file {file} must hold a JSON object")
    return data


def write_config(url: str, token: str, path: str | os.PathLike[str] | None = None) -> Path:
    """Write the service URL and token to the config file, readable by the owner only.

    Args:
        url: The base URL of the API, e.g. ``http://127.0.0.1:8000/compute/v1``.
        token: The bearer token.
        path: The file to write; defaults to :func:`config_path`.

    Returns:
        The path written.
    """
    file = config_path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump({"url": url, "token": token}, handle, indent=2)
        handle.write("\n")
    os.chmod(file, 0o600)
    return file


def load_settings(url: str | None = None, token: str | None = None) -> Settings:
    """Resolve the URL and token from the arguments, the environment and the config file.

    Args:
        url: An explicit base URL that wins over every other source.
        token: An explicit token that wins over every other source.

    Returns:
        The settings; either value may be None when nothing provides it.
    """
    url = url or os.environ.get(ENV_URL) or os.environ.get(LEGACY_ENV_URL)
    token = token or os.environ.get(ENV_TOKEN) or os.environ.get(LEGACY_ENV_TOKEN)
    if not (url and token):
        stored = load_config()
        url = url or stored.get("url")
        token = token or stored.get("token")
    return Settings(url=url.rstrip("/") if url else None, token=token or None)
