"""A package index served over HTTPS on loopback, its certificate signed by a private CA
made for the test with the `openssl` command line: the situation of a worker behind a
TLS-intercepting proxy or using a company's own index."""

from __future__ import annotations

import contextlib
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.capabilities import missing_capability

SERVER_EXTENSIONS = """\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
"""


@dataclass(frozen=True)
class PrivateCa:
    """A CA's certificate (what a worker must trust) and a server certificate it signed
    for 127.0.0.1."""

    certificate: Path
    server_certificate: Path
    server_key: Path


def make_private_ca(directory: Path) -> PrivateCa:
    """Make a CA and a certificate for 127.0.0.1 in `directory` (keys stay there)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        missing_capability("the openssl command line (to make a private CA)")
    ca_key, ca = directory / "ca.key", directory / "ca.pem"
    key, request, certificate = (
        directory / "server.key",
        directory / "server.csr",
        directory / "server.pem",
    )
    extensions = directory / "server.ext"
    extensions.write_text(SERVER_EXTENSIONS)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for command in (
        [openssl, "req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", "2",
         "-subj", "/CN=compute tests private CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        [openssl, "req", *ec, "-keyout", key, "-out", request, "-subj", "/CN=127.0.0.1"],
        [openssl, "x509", "-req", "-in", request, "-CA", ca, "-CAkey", ca_key,
         "-CAcreateserial", "-out", certificate, "-days", "2", "-extfile", extensions],
    ):  # fmt: skip
        subprocess.run([str(part) for part in command], check=True, capture_output=True)
    return PrivateCa(ca, certificate, key)


@dataclass
class TlsIndex:
    """A PEP 503 simple index of some wheels at `url`; `requested` lists the paths asked for."""

    port: int
    requested: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/simple"


def _handler(index: TlsIndex, wheels: list[Path]) -> type[BaseHTTPRequestHandler]:
    # PEP 503 project names from the wheels' file names: `tiny_pkg-1.0-...` is `tiny-pkg`.
    projects = {wheel.name.split("-")[0].replace("_", "-").lower(): wheel for wheel in wheels}
    files = {wheel.name: wheel for wheel in wheels}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the names http.server calls
            self._answer(body=True)

        def do_HEAD(self) -> None:  # noqa: N802
            self._answer(body=False)

        def _answer(self, body: bool) -> None:
            index.requested.append(self.path)
            name = self.path.rstrip("/").rsplit("/", 1)[-1]
            if self.path.startswith("/simple/") and name in projects:
                file = projects[name].name
                page = f'<html><body><a href="/files/{file}">{file}</a></body></html>'
                self._send(200, page.encode(), "text/html", body)
            elif self.path.startswith("/files/") and name in files:
                self._send(200, files[name].read_bytes(), "application/octet-stream", body)
            else:
                self._send(404, b"not found", "text/plain", body)

        def _send(self, status: int, content: bytes, content_type: str, body: bool) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            if body:
                self.wfile.write(content)

        def log_message(self, format: str, *args: object) -> None:
            pass  # quiet test output

    return Handler


class _TlsServer(ThreadingHTTPServer):
    """Shakes hands in each request's own thread: a client that refuses the certificate
    (the point of some tests) must not hold up the others."""

    def __init__(self, context: ssl.SSLContext, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.context = context

    def finish_request(self, request, client_address) -> None:  # noqa: ANN001 - socketserver's
        with contextlib.suppress(OSError):
            wrapped = self.context.wrap_socket(request, server_side=True)
            super().finish_request(wrapped, client_address)

    def handle_error(self, request, client_address) -> None:  # noqa: ANN001
        pass  # a client that gave up mid-response


@contextlib.contextmanager
def serving_index(ca: PrivateCa, wheels: list[Path]) -> Iterator[TlsIndex]:
    """Serve `wheels` over HTTPS on 127.0.0.1 with `ca`'s server certificate until exit."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(ca.server_certificate, ca.server_key)
    index = TlsIndex(port=0)
    server = _TlsServer(context, _handler(index, wheels))
    index.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield index
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()
