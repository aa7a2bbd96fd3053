"""Whether the API can listen where it is told to, asked before `compute up` starts anything.

A second `compute up` on a port already served would otherwise migrate, start a broker
and a worker that joins the first one's database, and only then fail to bind.
"""

from __future__ import annotations

import errno
import socket

import requests

from .service import root_url
from .supervisor import ServiceError

HEALTH_TIMEOUT_SECONDS = 2.0


def ensure_port_free(host: str, port: int) -> None:
    """Bind `host`:`port` as gunicorn would, then let it go.

    Raises:
        ServiceError: the address cannot be bound, saying whether a Compute API (another
            `compute up`, most likely) is the one holding it.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as error:
        raise ServiceError(f"cannot listen on {host!r}: {error.strerror}") from error
    with socket.socket(family, kind, proto) as probe:
        # As gunicorn does: connections of a stopped server lingering in TIME_WAIT do
        # not keep a new one from listening.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            raise ServiceError(_refusal(host, port, error)) from error


def _refusal(host: str, port: int, error: OSError) -> str:
    where = f"port {port} on {host}"
    if error.errno == errno.EADDRINUSE:
        if serves_compute(host, port):
            return (
                f"{where} is already served by another compute up (its /healthz answers); "
                "stop it, or choose another --port"
            )
        return f"{where} is in use by another program; choose another --port"
    if error.errno == errno.EACCES:
        return f"{where} needs privileges to listen on; choose a port above 1023"
    return f"cannot listen on {where}: {error.strerror}"


def serves_compute(host: str, port: int) -> bool:
    """Whether a Compute API answers its health check at `host`:`port`."""
    try:
        answer = requests.get(f"{root_url(host, port)}/healthz", timeout=HEALTH_TIMEOUT_SECONDS)
        body = answer.json()
        # The health check says more than its status (each dependency's state, ...).
        return answer.status_code == 200 and isinstance(body, dict) and body.get("status") == "ok"
    except (requests.RequestException, ValueError):
        return False
