"""Redaction of URLs, secret values and paths; the log filter, in-process and as the real
Celery worker installs it."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from compute.server.redaction import (
    Redactor,
    install_log_filter,
    job_output_redactor,
    redact_urls,
    secret_values,
    url_secrets,
)

REPO_ROOT = Path(__file__).resolve().parents[3]
PASSWORD = "SECRET-0123456789abcdef"
INDEX_URL = f"http://builder:{PASSWORD}@127.0.0.1:3141/simple"

REDACTED_URLS = {
    INDEX_URL: "http://***@127.0.0.1:3141/simple",
    f"--index-url {INDEX_URL} -r x": "--index-url http://***@127.0.0.1:3141/simple -r x",
    "UV_INDEX_URL=https://ghp_TOKEN123@pkgs.example.com/simple/": (
        "UV_INDEX_URL=https://***@pkgs.example.com/simple/"
    ),
    "HTTPS_PROXY=http://u:p@proxy:3128": "HTTPS_PROXY=http://***@proxy:3128",
    "redis://:hunter22@127.0.0.1:6379/0": "redis://***@127.0.0.1:6379/0",
    "error for url (https://user:pa%40ss@host/simple/x/)": "error for url (https://***@host/simple/x/)",
    "https://h/f.whl?X-Amz-Date=1&X-Amz-Signature=abc123#frag": (
        "https://h/f.whl?X-Amz-Date=1&X-Amz-Signature=***#frag"
    ),
    "https://h/simple?access_token=t0k&page=2": "https://h/simple?access_token=***&page=2",
    "https://h/x?api_key=k3y": "https://h/x?api_key=***",
}
UNCHANGED = [
    "Collecting tinypkg==1.0",
    "mail ops@example.com about git@github.com:org/repo.git",
    "https://h/simple?page=2&sort=name",
    "x = 1; y == 2",
]


@pytest.mark.parametrize("text", list(REDACTED_URLS))
def test_credentials_are_removed_from_urls(text: str) -> None:
    redacted = redact_urls(text)
    assert redacted == REDACTED_URLS[text]
    assert redact_urls(redacted) == redacted


@pytest.mark.parametrize("text", UNCHANGED)
def test_text_without_credentials_is_unchanged(text: str) -> None:
    assert redact_urls(text) == text


def test_url_secrets_are_the_password_token_and_sensitive_parameters() -> None:
    assert url_secrets(INDEX_URL) == [PASSWORD]
    assert sorted(url_secrets("https://u:p%40ssword@h/")) == ["p%40ssword", "p@ssword"]
    assert url_secrets("https://ghp_TOKEN123@h/simple") == ["ghp_TOKEN123"]
    assert url_secrets("https://h/x?token=abcdef&page=2") == ["abcdef"]
    # A trusted database user is a name, not a secret: hiding it would garble every line.
    assert url_secrets("postgresql+psycopg://postgres@127.0.0.1/test") == []
    assert url_secrets("https://h/simple") == url_secrets("not a url") == []


def test_secret_values_of_settings() -> None:
    settings = {
        "SECRET_KEY": "signing-key-value",
        "PACKAGE_INDEX_URL": INDEX_URL,
        "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://app:db-password@db/compute",
        "PUBLIC_URL": "https://compute.example.com",
        "TOKEN_TTL_SECONDS": 3600,
        "WHEELHOUSE": None,
    }
    assert sorted(secret_values(settings)) == sorted(["signing-key-value", PASSWORD, "db-password"])


def test_redactor_hides_values_and_names_paths(tmp_path: Path) -> None:
    work = tmp_path / "work"
    redact = Redactor(
        [PASSWORD, "short"],
        {work: "<work>", work / "envs": "<environments>", Path("/"): "<root>"},
    )
    text = f"password {PASSWORD} at {work}/envs/abc and {work}/scratch; {INDEX_URL}; short /usr"
    assert redact(text) == (
        "password *** at <environments>/abc and <work>/scratch; "
        "http://***@127.0.0.1:3141/simple; short /usr"
    )


def test_job_output_keeps_the_users_urls_and_hides_the_operators_secrets() -> None:
    redact = job_output_redactor({"PACKAGE_INDEX_URL": INDEX_URL, "SECRET_KEY": "signing-key"})
    line = f"env: {PASSWORD} signing-key; mine: https://me:my-own-pass@example.com"
    assert redact(line) == "env: *** ***; mine: https://me:my-own-pass@example.com"


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger of its own whose one handler writes to a string, with the filter on it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger(f"{__name__}.captured")
    logger.addHandler(handler)
    logger.propagate = False
    install_log_filter([logger], [PASSWORD])
    yield logger, stream
    logger.removeHandler(handler)


def test_log_filter_redacts_a_url_passed_as_an_argument(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    logger.warning("fetching %s (attempt %d)", INDEX_URL, 2)
    logger.warning("the index password is %r", PASSWORD)
    try:
        raise ConnectionError(f"cannot reach {INDEX_URL}")
    except ConnectionError:
        logger.exception("index down")
    output = stream.getvalue()
    assert PASSWORD not in output, output
    assert "WARNING fetching http://***@127.0.0.1:3141/simple (attempt 2)" in output
    assert "the index password is '***'" in output
    assert "ConnectionError: cannot reach http://***@127.0.0.1:3141/simple" in output


def test_log_filter_leaves_clean_records_as_they_were(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, _ = captured
    records: list[logging.LogRecord] = []
    logger.handlers[0].addFilter(lambda record: records.append(record) or True)
    logger.warning("built environment %s in %.1f s", "abc", 1.5)
    assert records[0].msg == "built environment %s in %.1f s"
    assert records[0].args == ("abc", 1.5)


WORKER_PROBE = """
import logging, sys
from celery.utils.log import get_task_logger
from worker.celery_app import app

app.log.setup(loglevel="INFO", logfile=sys.argv[1])
url, password = sys.argv[2], sys.argv[3]
logging.getLogger("worker.probe").warning("fetching %s", url)
logging.getLogger("worker.probe").warning("password %s", password)
get_task_logger("worker.probe.task").warning("task fetching %s", url)
"""


def test_worker_log_handlers_redact_credentials(tmp_path: Path) -> None:
    # A fresh interpreter: setting up the worker's logging replaces the root handlers.
    log = tmp_path / "worker.log"
    environment = {
        "PATH": "/usr/bin:/bin",
        "COMPUTE_DATA_DIR": str(tmp_path / "data"),
        "REDIS_URL": "redis://127.0.0.1:6379/15",
        "COMPUTE_PACKAGE_INDEX_URL": INDEX_URL,
    }
    subprocess.run(
        [sys.executable, "-c", WORKER_PROBE, str(log), INDEX_URL, PASSWORD],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        timeout=60,
        check=True,
    )
    output = log.read_text()
    assert PASSWORD not in output, output
    assert "fetching http://***@127.0.0.1:3141/simple" in output, output
    assert "task fetching http://***@127.0.0.1:3141/simple" in output, output
    assert "password ***" in output, output
