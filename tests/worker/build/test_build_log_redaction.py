"""Build logs show no secret and no worker path: real builds against a password-protected
index that the test serves on 127.0.0.1, with the credentials in the index URL."""

from __future__ import annotations

import base64
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from worker.build import (
    BuildResult,
    BuildSettings,
    InstallerOptions,
    InterpreterRegistry,
    build_function,
)

from .conftest import IMAGE
from .zips import bundle_zip

USER = "builder"


@dataclass
class Index:
    """A PEP 503 index of one wheel that answers only requests carrying its credentials."""

    port: int
    password: str
    authorized: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{USER}:{self.password}@127.0.0.1:{self.port}/simple"


def _handler(index: Index, wheel: Path) -> type[BaseHTTPRequestHandler]:
    expected = "Basic " + base64.b64encode(f"{USER}:{index.password}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the names http.server calls
            self._answer(body=True)

        def do_HEAD(self) -> None:  # noqa: N802
            self._answer(body=False)

        def _answer(self, body: bool) -> None:
            if self.headers.get("Authorization") != expected:
                self._send(401, b"", "text/plain", body, {"WWW-Authenticate": "Basic"})
                return
            index.authorized.append(self.path)
            if self.path.rstrip("/") == "/simple/tinypkg":
                link = f'<a href="/files/{wheel.name}">{wheel.name}</a>'
                page = f"<html><body>{link}</body></html>".encode()
                self._send(200, page, "text/html", body)
            elif self.path == f"/files/{wheel.name}":
                self._send(200, wheel.read_bytes(), "application/zip", body)
            else:
                self._send(404, b"not found", "text/plain", body)

        def _send(
            self,
            status: int,
            content: bytes,
            content_type: str,
            body: bool,
            headers: dict[str, str] | None = None,
        ) -> None:
            self.send_response(status)
            for name, value in {"Content-Type": content_type, **(headers or {})}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            if body:
                self.wfile.write(content)

        def log_message(self, format: str, *args: object) -> None:
            pass  # quiet test output

    return Handler


@pytest.fixture(scope="module")
def index(wheelhouse: Path) -> Iterator[Index]:
    wheel = next(wheelhouse.glob("tinypkg-*.whl"))
    found = Index(port=0, password=f"SECRET-{uuid.uuid4().hex}")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(found, wheel))
    found.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield found
    server.shutdown()
    thread.join(timeout=5)
    server.server_close()


@pytest.fixture(params=["uv", "pip"])
def settings(request: pytest.FixtureRequest, tmp_path: Path, index: Index) -> BuildSettings:
    """A worker's settings with every directory under `tmp_path`, installing from `index`."""
    work = tmp_path / "work"
    operator_wheelhouse = tmp_path / "operator-wheelhouse"
    operator_wheelhouse.mkdir()
    return BuildSettings(
        env_root=work / "envs",
        installer=InstallerOptions(
            index_url=index.url,
            wheelhouse=operator_wheelhouse,
            timeout_seconds=120,
            installer=request.param,
            uv_cache_dir=tmp_path / "uv-cache",
        ),
        scratch_root=work / "scratch",
        work_dir=work,
    )


def interpreter_paths() -> set[str]:
    found = InterpreterRegistry().interpreters().values()
    return {str(i.path) for i in found} | {os.path.realpath(i.path) for i in found}


def assert_nothing_leaks(result: BuildResult, index: Index, tmp_path: Path) -> None:
    shown = f"{result.log_text}\n{result.error or ''}"
    assert index.password not in shown, shown
    for path in {str(tmp_path), os.path.realpath(tmp_path)}:
        assert path not in shown, shown
    # Nor where the worker's Python is installed: the image and version say enough.
    python = result.environment.python if result.environment else None
    for interpreter in interpreter_paths():
        assert interpreter not in shown, (interpreter, shown)
    assert python is None or str(python) not in shown
    # The index is still named, so the owner can tell where packages came from.
    assert f"--index-url http://***@127.0.0.1:{index.port}/simple" in shown, shown
    assert "--find-links <wheelhouse>" in shown and "<environment>/bin/python" in shown, shown


def test_successful_build_log_shows_no_secret_and_no_worker_path(
    settings: BuildSettings, index: Index, tmp_path: Path
) -> None:
    bundle = bundle_zip(("requirements.txt", b"tinypkg\n"))
    result = build_function(bundle, IMAGE, settings, unpack_to=tmp_path / "work" / "bundle")
    assert result.ok, result.log_text
    assert "/simple/tinypkg/" in index.authorized, "the credentials reached the index"
    assert_nothing_leaks(result, index, tmp_path)


def test_failed_build_log_shows_no_secret_and_no_worker_path(
    settings: BuildSettings, index: Index, tmp_path: Path
) -> None:
    bundle = bundle_zip(("requirements.txt", b"tinypkg\nno-such-package-anywhere\n"))
    result = build_function(bundle, IMAGE, settings)
    assert not result.ok and result.error is not None
    assert "no-such-package-anywhere" in result.log_text and "Build failed" in result.log_text
    assert_nothing_leaks(result, index, tmp_path)
