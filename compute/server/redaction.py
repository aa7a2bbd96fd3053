"""Keep secrets and worker paths out of what users and log readers see.

`redact_urls` strips credentials from any URL in a text. A `Redactor` also replaces
known secret values (found by `secret_values` in the settings) with `***` and known
directories with placeholders such as `<wheelhouse>`; both are cheap enough to run on
every line. Where each is used:

    build logs      a `Redactor` with the operator's secrets and the worker's paths
    service logs    `RedactingFilter` on every handler (`install_log_filter`)
    job output      `job_output_redactor`: the operator's secret values only

Only the standard library is used, so the API process can install the filter too.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

MASK = "***"
# A value this short would be replaced wherever it occurs, wrecking the text while
# hiding little (it is guessable); in a URL it is still removed by `redact_urls`.
MIN_SECRET_CHARS = 6
# Words that make a setting or query parameter's value a secret: `access_token`,
# `api_key`, `X-Amz-Signature`, `SECRET_KEY`, `db_password`, `oauth`...
SENSITIVE_WORDS = ("token", "key", "password", "passwd", "pwd", "secret", "sig", "auth")
_SENSITIVE_NAME = re.compile("|".join(SENSITIVE_WORDS), re.IGNORECASE)
# `scheme://userinfo@`: whatever precedes the `@` (user, or user:password) is dropped.
_USERINFO = re.compile(r"\b([a-z][a-z0-9+.\-]*://)[^\s/?#@\"<>]+@", re.IGNORECASE)
_QUERY_SECRET = re.compile(
    r"([?&;][^=&#\s]*(?:" + "|".join(SENSITIVE_WORDS) + r")[^=&#\s]*=)[^&#\s\"'<>]*",
    re.IGNORECASE,
)


def redact_urls(text: str) -> str:
    """Remove credentials from every URL in `text`.

    `scheme://user:password@host` and `scheme://user@host` become `scheme://***@host`;
    the values of query parameters named like a token, key, password, secret or
    signature become `***`.
    """
    # Most lines have neither character: skip the regular expressions for them.
    if "@" in text:
        text = _USERINFO.sub(r"\1" + MASK + "@", text)
    if "=" in text:
        text = _QUERY_SECRET.sub(r"\1" + MASK, text)
    return text


def url_secrets(url: str) -> list[str]:
    """The secret parts of `url`: its password (or an HTTP URL's lone user name, often a
    token) and its sensitive query parameters' values, as written and percent-decoded."""
    try:
        parts = urlsplit(url)
        password, username = parts.password, parts.username
    except ValueError:
        return []
    # `https://TOKEN@host` is how indexes take tokens; `postgresql://postgres@db` names a
    # user that trust authentication lets in, and hiding it would garble every log line.
    if not password and parts.scheme in ("http", "https"):
        password = username
    found = [password or ""]
    found += [value for name, value in parse_qsl(parts.query) if _SENSITIVE_NAME.search(name)]
    return [form for value in found if value for form in {value, unquote(value)}]


def secret_values(settings: Mapping[str, object]) -> list[str]:
    """The secrets among `settings` (a Flask config, say): every text value of a setting
    named like a secret (`SECRET_KEY`), and the secret parts of every URL-valued one
    (`PACKAGE_INDEX_URL`, `REDIS_URL`, `SQLALCHEMY_DATABASE_URI`...)."""
    found: list[str] = []
    for name, value in settings.items():
        if not isinstance(value, str) or not value:
            continue
        if _SENSITIVE_NAME.search(name):
            found.append(value)
        elif "://" in value:
            found += url_secrets(value)
    return found


class Redactor:
    """Replaces secret values with `***` and paths with placeholders, then redacts URLs.

    Build one per set of values and call it on each text: a call is a few substring
    searches and, only when a line has an `@` or `=`, two regular expressions.

    Args:
        secrets: values to hide wherever they appear; short ones are ignored.
        paths: directories to name by a placeholder, e.g. `{wheelhouse: "<wheelhouse>"}`.
        urls: also strip credentials from URLs (`redact_urls`).
    """

    def __init__(
        self,
        secrets: Iterable[str] = (),
        paths: Mapping[Path, str] | None = None,
        *,
        urls: bool = True,
    ) -> None:
        replacements: dict[str, str] = {}
        for path, placeholder in (paths or {}).items():
            for form in (os.fspath(path), os.path.realpath(path)):
                if os.path.dirname(form) != form:  # never the root: it is in every path
                    replacements.setdefault(form, placeholder)
        for secret in secrets:
            if len(secret) >= MIN_SECRET_CHARS:
                replacements[secret] = MASK
        # Longest first: a bundle directory inside the work directory keeps its own name.
        self._replacements = sorted(replacements.items(), key=lambda item: -len(item[0]))
        self._urls = urls

    def __call__(self, text: str) -> str:
        for value, replacement in self._replacements:
            if value in text:
                text = text.replace(value, replacement)
        return redact_urls(text) if self._urls else text


def job_output_redactor(config: Mapping[str, object]) -> Redactor:
    """A redactor for the lines a job prints: they are the user's own, URLs included, so
    it hides only the service's secret values (`secret_values(config)`)."""
    return Redactor(secret_values(config), urls=False)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts every record's message, arguments and traceback.

    Install it on handlers (see `install_log_filter`): a filter on a logger does not
    see the records its descendants propagate to it.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.redact = Redactor(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: the handler reports it when it formats
            return True
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def install_log_filter(
    loggers: Iterable[logging.Logger], secrets: Iterable[str] = ()
) -> RedactingFilter:
    """Add one `RedactingFilter` to every handler of `loggers`; return it."""
    redacting = RedactingFilter(secrets)
    for logger in loggers:
        for handler in logger.handlers:
            if not any(isinstance(known, RedactingFilter) for known in handler.filters):
                handler.addFilter(redacting)
    return redacting
