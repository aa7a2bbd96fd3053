"""The job network policy, on real sockets: a forked child takes a uid of a test range and
tries to connect; the host's own services stay out of its reach, other machines do not.

The uid range (300000+) is not the worker's default, so a worker running on this host
keeps its own table; this module removes its tables when it is done.
"""

from __future__ import annotations

import errno
import ipaddress
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from tests.capabilities import ROOT, missing_capability, requires
from tests.unprivileged import as_uid
from tests.worker.execution.netns import Peer, peer_namespace
from worker.execution.network import (
    NetworkMechanism,
    NetworkMode,
    NetworkPolicy,
    Service,
    apply_network_policy,
    parse_network_setting,
    remove_network_policy,
    service_endpoints,
    services_of,
    table_name,
)

FIRST_UID = 300000
COUNT = 100
JOB_UID = FIRST_UID + 1
OTHER_FIRST_UID = FIRST_UID + COUNT  # a second worker's range, right after ours
# A refusal must come back at once; a dropped packet would hang until CONNECT_TIMEOUT.
CONNECT_TIMEOUT = 3.0
FAST = 1.0
REFUSED = {"ECONNREFUSED", "EACCES", "EPERM", "EHOSTUNREACH", "ENETUNREACH"}

requires_root = requires(ROOT, "root (installing nftables rules and switching uids)")


def connect(host: str, port: int) -> tuple[str, float]:
    """Try a TCP connect: "connected", an errno name, or "timeout"; and how long it took."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    started = time.monotonic()
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(CONNECT_TIMEOUT)
        try:
            sock.connect((host, port))
            outcome = "connected"
        except TimeoutError:
            outcome = "timeout"
        except OSError as error:
            outcome = errno.errorcode.get(error.errno or 0, str(error))
    return outcome, time.monotonic() - started


def job_connects(host: str, port: int, uid: int = JOB_UID) -> tuple[str, float]:
    """`connect` from a child that has become `uid` (a job's, unless told otherwise)."""
    result = as_uid(uid, lambda: connect(host, port))
    if isinstance(result, list):
        return result[0], result[1]
    return str(result), float("nan")  # the child hung or failed: say how


def assert_refused_fast(result: tuple[str, float]) -> None:
    outcome, seconds = result
    assert outcome in REFUSED, result
    assert seconds < FAST, result


def assert_connected(result: tuple[str, float]) -> None:
    assert result[0] == "connected", result


@pytest.fixture(scope="module")
def install() -> Iterator[Callable[..., NetworkPolicy]]:
    """Apply a setting to the test range (or another); every table is removed at the end."""
    if shutil.which("nft") is None:
        missing_capability("nftables' `nft` (Debian: apt-get install nftables)")
    ranges = {(FIRST_UID, COUNT), (OTHER_FIRST_UID, COUNT)}
    for first, count in ranges:
        remove_network_policy(first, count)

    def installer(
        setting: str,
        first_uid: int = FIRST_UID,
        services: Sequence[Service] = (),
        refused: Sequence[Service] = (),
    ) -> NetworkPolicy:
        policy = apply_network_policy(first_uid, COUNT, setting, services, refused=refused)
        assert policy.enforced, policy.description
        return policy

    yield installer
    for first, count in ranges:
        remove_network_policy(first, count)


@pytest.fixture(scope="module")
def peer() -> Iterator[Peer]:
    """A listener on another "machine": a namespace of ours, one veth away."""
    if not ROOT:
        missing_capability("root (building a network namespace)")
    with peer_namespace() as built:
        yield built


@pytest.fixture(scope="module")
def listener() -> Iterator[int]:
    """A TCP port this test listens on, on every address of the host, IPv4 and IPv6."""
    with socket.create_server(("::", 0), family=socket.AF_INET6, dualstack_ipv6=True) as server:
        server.listen(256)
        yield server.getsockname()[1]


def reachable_from_root(host: str, port: int) -> None:
    outcome, _ = connect(host, port)
    if outcome != "connected":
        missing_capability(f"a service on {host}:{port} for jobs not to reach ({outcome})")


@requires_root
@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1", "host's veth address"]
)
def test_a_job_cannot_reach_the_host_on_any_of_its_addresses(
    install: Callable[..., NetworkPolicy], listener: int, peer: Peer, host: str
) -> None:
    host = peer.host_address if host == "host's veth address" else host
    install("outbound")
    assert connect(host, listener)[0] == "connected"  # the worker itself still can
    assert_refused_fast(job_connects(host, listener))


@requires_root
@pytest.mark.parametrize(
    ("host", "port"), [("127.0.0.1", 6379), ("::1", 6379), ("127.0.0.1", 5432)]
)
def test_a_job_cannot_reach_redis_or_postgres_but_the_worker_can(
    install: Callable[..., NetworkPolicy], host: str, port: int
) -> None:
    reachable_from_root(host, port)
    install("outbound")
    assert_refused_fast(job_connects(host, port))
    assert connect(host, port)[0] == "connected"


@requires_root
def test_a_job_cannot_reach_the_metadata_endpoint(
    install: Callable[..., NetworkPolicy],
) -> None:
    install("outbound")
    assert_refused_fast(job_connects("169.254.169.254", 80))


@requires_root
@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_a_jobs_udp_datagram_to_loopback_never_arrives(
    install: Callable[..., NetworkPolicy], host: str
) -> None:
    install("outbound")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as receiver:
        receiver.bind((host, 0))
        receiver.settimeout(0.5)
        address = receiver.getsockname()[:2]

        def send(payload: bytes) -> str:
            with socket.socket(family, socket.SOCK_DGRAM) as sender:
                try:
                    sender.sendto(payload, address)
                except OSError as error:
                    return errno.errorcode.get(error.errno or 0, str(error))
            return "sent"

        as_uid(JOB_UID, lambda: send(b"from the job"))
        send(b"from the worker")
        # The worker's datagram arrives; the job's, sent first, never does.
        assert receiver.recv(100) == b"from the worker"
        with pytest.raises(TimeoutError):
            receiver.recv(100)


@requires_root
def test_outbound_lets_a_job_reach_other_machines(
    install: Callable[..., NetworkPolicy], peer: Peer
) -> None:
    policy = install("outbound")
    assert policy.mechanism is NetworkMechanism.NFTABLES
    assert "other outbound allowed" in policy.description
    assert_connected(job_connects(peer.address, peer.port))


@requires_root
def test_a_named_service_on_the_host_stays_reachable_and_nothing_else(
    install: Callable[..., NetworkPolicy], listener: int
) -> None:
    """Builds reach the operator's package index, which may listen on the worker host."""
    with socket.create_server(("127.0.0.1", 0)) as other:
        services = services_of([f"http://user:secret@127.0.0.1:{listener}/simple", None])
        assert services == [(ipaddress.ip_address("127.0.0.1"), listener)]
        policy = install("outbound", services=services)
        assert f"except 127.0.0.1:{listener}" in policy.description
        assert_connected(job_connects("127.0.0.1", listener))
        assert_refused_fast(job_connects("127.0.0.1", other.getsockname()[1]))
        assert_refused_fast(job_connects("::1", listener))
    install("outbound")  # the other tests' rules


@requires_root
def test_the_services_own_endpoints_on_another_machine_are_refused(
    install: Callable[..., NetworkPolicy], peer: Peer
) -> None:
    """A worker node's database, broker or blob store is on another machine: the
    host-address rule does not cover it, so it is refused by address and port."""
    own = (ipaddress.ip_address(peer.address), peer.port)
    policy = install("outbound", refused=[own])
    # Counted, not named: the description is shown to users.
    assert "the service's own 1 endpoints refused" in policy.description
    assert peer.address not in policy.description
    assert_refused_fast(job_connects(peer.address, peer.port))
    assert_connected(connect(peer.address, peer.port))  # the worker itself reaches it
    # Even when an allow-list names its network.
    install(f"{peer.address}/32", refused=[own])
    assert_refused_fast(job_connects(peer.address, peer.port))
    # By port: the same machine's other services stay reachable.
    install("outbound", refused=[(own[0], peer.port + 1)])
    assert_connected(job_connects(peer.address, peer.port))
    install("outbound")  # the other tests' rules


def test_the_services_own_endpoints_are_found_in_its_urls() -> None:
    def address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        return ipaddress.ip_address(text)

    found = service_endpoints(
        "postgresql+psycopg://compute:secret@10.1.2.3/compute",
        "redis://:secret@10.1.2.4:6380/0",
        "http://10.1.2.5:9000",
    )
    assert found == [
        (address("10.1.2.3"), 5432),
        (address("10.1.2.4"), 6380),
        (address("10.1.2.5"), 9000),
    ]
    # A file database has no endpoint; a store on the internet is guarded by its keys,
    # and its addresses serve what jobs may reach.
    assert service_endpoints("sqlite:////data/compute.db", None, "https://52.216.8.1") == []
    assert service_endpoints(None, "redis://127.0.0.1", "http://127.0.0.1:9000") == [
        (address("127.0.0.1"), 6379),
        (address("127.0.0.1"), 9000),
    ]


@requires_root
def test_none_refuses_a_job_everything(
    install: Callable[..., NetworkPolicy], peer: Peer, listener: int
) -> None:
    install("none")
    assert_refused_fast(job_connects(peer.address, peer.port))
    assert_refused_fast(job_connects("127.0.0.1", listener))
    assert_connected(connect(peer.address, peer.port))


@requires_root
def test_an_allow_list_lets_a_job_reach_only_what_it_lists(
    install: Callable[..., NetworkPolicy], peer: Peer, listener: int
) -> None:
    install(f"198.51.100.0/24, {peer.address}/32")
    assert_connected(job_connects(peer.address, peer.port))
    install("198.51.100.0/24,2001:db8::/32")
    assert_refused_fast(job_connects(peer.address, peer.port))
    # Listing the host's own addresses does not open them.
    install(f"127.0.0.0/8,::1/128,{peer.host_address}/32")
    for host in ("127.0.0.1", "::1", peer.host_address):
        assert_refused_fast(job_connects(host, listener))


@requires_root
@pytest.mark.parametrize("uid", [FIRST_UID - 1, FIRST_UID + 2 * COUNT])
def test_uids_outside_the_range_keep_their_network(
    install: Callable[..., NetworkPolicy], peer: Peer, listener: int, uid: int
) -> None:
    install("none")
    install("none", OTHER_FIRST_UID)
    assert_connected(job_connects("127.0.0.1", listener, uid))
    assert_connected(job_connects(peer.address, peer.port, uid))


@requires_root
def test_workers_of_different_ranges_keep_their_own_rules(
    install: Callable[..., NetworkPolicy], peer: Peer
) -> None:
    ours = install("outbound")
    theirs = install("none", OTHER_FIRST_UID)
    assert ours.table != theirs.table
    assert_connected(job_connects(peer.address, peer.port))
    assert_refused_fast(job_connects(peer.address, peer.port, OTHER_FIRST_UID + 5))
    assert remove_network_policy(OTHER_FIRST_UID, COUNT)
    assert_connected(job_connects(peer.address, peer.port, OTHER_FIRST_UID + 5))
    assert_connected(job_connects(peer.address, peer.port))
    assert_refused_fast(job_connects("127.0.0.1", 6379))


@requires_root
def test_applying_again_converges_on_the_same_rules(
    install: Callable[..., NetworkPolicy],
) -> None:
    def listed() -> str:
        return nft_list(table_name(FIRST_UID, COUNT))

    install("none")
    install("outbound")
    once = listed()
    install("outbound")
    assert listed() == once
    assert once.count("goto refuse") == 3  # refilled, not appended to


def nft_list(table: str) -> str:
    return subprocess.run(
        ["nft", "list", "table", "inet", table], capture_output=True, text=True, check=True
    ).stdout


@requires_root
def test_without_nft_it_says_jobs_can_reach_the_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    policy = apply_network_policy(FIRST_UID, COUNT, "outbound")
    assert policy.mechanism is NetworkMechanism.UNRESTRICTED
    assert not policy.enforced
    assert "CAN reach the host's loopback services" in policy.description
    assert "nft not found: install nftables" in policy.description


@requires_root
def test_a_kernel_refusal_is_reported_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Fault injection: an `nft` that fails as it does in a container without NET_ADMIN.
    fake = tmp_path / "nft"
    fake.write_text(
        "#!/bin/sh\necho 'Error: Could not process rule: Operation not permitted' >&2\nexit 1\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    policy = apply_network_policy(FIRST_UID, COUNT, "outbound")
    assert not policy.enforced
    assert "Operation not permitted" in policy.description
    assert "NET_ADMIN" in policy.description


@requires_root
def test_a_worker_that_is_not_root_says_so() -> None:
    described = as_uid(JOB_UID, lambda: apply_network_policy(FIRST_UID, COUNT, "none").description)
    assert isinstance(described, str)
    assert "CAN reach" in described and "not root" in described, described


def test_settings_are_validated() -> None:
    assert parse_network_setting(None).mode is NetworkMode.OUTBOUND
    assert parse_network_setting(" None ").mode is NetworkMode.NONE
    listed = parse_network_setting("10.0.0.0/8, 2001:db8::/32,192.0.2.7")
    assert [str(network) for network in listed.allowed] == [
        "10.0.0.0/8",
        "2001:db8::/32",
        "192.0.2.7/32",
    ]
    for bad in ("10.0.0.0/33", "outbond", "10.0.0.1/8"):
        with pytest.raises(ValueError, match=f"'{bad}'"):
            parse_network_setting(f"192.0.2.0/24,{bad}")
    with pytest.raises(ValueError, match="root"):
        apply_network_policy(0, 10, "outbound")
    with pytest.raises(ValueError, match="at least one"):
        apply_network_policy(FIRST_UID, 0, "outbound")
