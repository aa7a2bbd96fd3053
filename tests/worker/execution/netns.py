"""A network namespace of the test's own, one veth away, with a TCP listener inside.

It stands for "some other machine": the only non-host address these tests connect to
is the one inside it. The names and the /30 are unusual so as not to meet anything else.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

NAMESPACE = "compute-test-jobnet"
HOST_LINK = "ctjobnet-host"
INNER_LINK = "ctjobnet-job"
HOST_ADDRESS = "10.213.7.1"
INNER_ADDRESS = "10.213.7.2"
PORT = 8731

LISTENER = f"""
import socket
server = socket.create_server(({INNER_ADDRESS!r}, {PORT}), backlog=128)
while True:
    connection, _ = server.accept()
    connection.close()
"""


@dataclass(frozen=True)
class Peer:
    """The listener in the namespace, and the host's own address on the link to it."""

    address: str
    port: int
    host_address: str


@contextlib.contextmanager
def peer_namespace() -> Iterator[Peer]:
    """Build the namespace and its link, start the listener, and tear it all down after."""
    if shutil.which("ip") is None:
        raise RuntimeError("the `ip` command (iproute2) is needed to build a test namespace")
    _tear_down()  # what a run killed midway left behind
    listener = None
    try:
        for command in (
            f"netns add {NAMESPACE}",
            f"link add {HOST_LINK} type veth peer name {INNER_LINK}",
            f"link set {INNER_LINK} netns {NAMESPACE}",
            f"addr add {HOST_ADDRESS}/30 dev {HOST_LINK}",
            f"link set {HOST_LINK} up",
            f"-n {NAMESPACE} addr add {INNER_ADDRESS}/30 dev {INNER_LINK}",
            f"-n {NAMESPACE} link set {INNER_LINK} up",
            f"-n {NAMESPACE} link set lo up",
        ):
            subprocess.run(["ip", *command.split()], check=True, capture_output=True)
        listener = subprocess.Popen(
            ["ip", "netns", "exec", NAMESPACE, sys.executable, "-I", "-c", LISTENER]
        )
        _wait_for(INNER_ADDRESS, PORT)
        yield Peer(INNER_ADDRESS, PORT, HOST_ADDRESS)
    finally:
        if listener is not None:
            listener.kill()
            listener.wait()
        _tear_down()


def _wait_for(address: str, port: int, seconds: float = 5) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection((address, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _tear_down() -> None:
    # Deleting the namespace deletes its end of the veth, and with it the host's end.
    for command in (f"netns delete {NAMESPACE}", f"link delete {HOST_LINK}"):
        subprocess.run(["ip", *command.split()], capture_output=True, check=False)
