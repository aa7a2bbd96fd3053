"""What a job's processes may reach on the network: a per-host nftables table keyed on uid.

Jobs run as uids of a range reserved for them. A table of our own, `inet
compute_jobs_<first>_<last>`, hooks every packet the host sends and refuses those whose
socket belongs to a uid of that range and whose destination is

- an address of the host itself (`fib daddr type local`: loopback, `::1`, every
  interface's address, including ones added later), or a broadcast address, which the
  host delivers to itself as well: the broker, the database and the API listen there;
- link-local (169.254.0.0/16, where the cloud metadata endpoint answers, and fe80::/10)
  or multicast, which loops back to the host's own listeners.

The `COMPUTE_JOB_NETWORK` setting says what else they may reach: `outbound` (everything
else), `none` (nothing at all, loopback included), or a comma-separated list of CIDRs
(only those). TCP is refused with a reset and anything else with an ICMP error, so a
job's connect fails at once rather than hanging until its timeout.

The table is replaced in one `nft -f -` transaction: workers sharing a host and a
range, or a restarted worker, converge on the same rules; workers of other ranges own
other tables and never touch this one. Unix-domain sockets are not IP and not covered.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import shutil
import socket
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)

DEFAULT_NETWORK_SETTING = "outbound"
TABLE_PREFIX = "compute_jobs"
NFT_TIMEOUT_SECONDS = 10

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Service = tuple[IPAddress, int]  # an address and a TCP port
# Where a URL that names no port connects: a proxy may be SOCKS (`ALL_PROXY`); the
# database and the broker are named by their own schemes (`postgresql+psycopg://`).
DEFAULT_PORTS = {
    "https": 443,
    "socks4": 1080,
    "socks4a": 1080,
    "socks5": 1080,
    "socks5h": 1080,
    "postgresql": 5432,
    "postgres": 5432,
    "mysql": 3306,
    "redis": 6379,
    "rediss": 6379,
}


class NetworkMode(str, Enum):
    OUTBOUND = "outbound"
    NONE = "none"
    ALLOW_LIST = "allow-list"


class NetworkMechanism(str, Enum):
    NFTABLES = "nftables"
    # Nothing enforces the setting: jobs reach whatever the worker reaches.
    UNRESTRICTED = "unrestricted"


@dataclass(frozen=True)
class NetworkSetting:
    """A validated `COMPUTE_JOB_NETWORK`: a mode and, for an allow-list, its networks."""

    mode: NetworkMode
    allowed: tuple[IPNetwork, ...] = ()

    def describe(self) -> str:
        if self.mode is NetworkMode.OUTBOUND:
            return "host, link-local and multicast addresses refused, other outbound allowed"
        if self.mode is NetworkMode.NONE:
            return "all network refused, loopback included"
        listed = ", ".join(str(network) for network in self.allowed)
        return f"only {listed} allowed, never host, link-local or multicast addresses"


@dataclass(frozen=True)
class NetworkPolicy:
    """What keeps jobs off the network, as applied at the worker's start."""

    mechanism: NetworkMechanism
    description: str
    table: str | None = None

    @property
    def enforced(self) -> bool:
        return self.mechanism is NetworkMechanism.NFTABLES


def parse_network_setting(setting: str | None) -> NetworkSetting:
    """Read `COMPUTE_JOB_NETWORK`: `outbound` (the default), `none`, or CIDRs joined by commas.

    Raises:
        ValueError: an entry is neither a keyword nor a CIDR; the message names it.
    """
    text = (setting or DEFAULT_NETWORK_SETTING).strip().lower()
    if text in (NetworkMode.OUTBOUND.value, NetworkMode.NONE.value):
        return NetworkSetting(NetworkMode(text))
    entries = [entry.strip() for entry in text.split(",") if entry.strip()]
    if not entries:
        return NetworkSetting(NetworkMode(DEFAULT_NETWORK_SETTING))
    return NetworkSetting(NetworkMode.ALLOW_LIST, tuple(_network(entry) for entry in entries))


def table_name(first_uid: int, count: int) -> str:
    """The nftables table (family `inet`) that holds the rules for this uid range."""
    return f"{TABLE_PREFIX}_{first_uid}_{first_uid + count - 1}"


def render_ruleset(
    first_uid: int,
    count: int,
    setting: NetworkSetting,
    services: Sequence[Service] = (),
    refused: Sequence[Service] = (),
) -> str:
    """The `nft -f` script that replaces this range's table with the rules for `setting`;
    `services` (address, TCP port) stay reachable whatever else is refused, and `refused`
    ones are refused whatever the setting allows."""
    _check_range(first_uid, count)
    table = table_name(first_uid, count)
    last = first_uid + count - 1
    uids = str(first_uid) if count == 1 else f"{first_uid}-{last}"
    rules = [
        "fib daddr type { local, broadcast, multicast } goto refuse",
        "ip daddr { 169.254.0.0/16, 224.0.0.0/4 } goto refuse",
        "ip6 daddr { fe80::/10, ff00::/8 } goto refuse",
    ]
    if setting.mode is NetworkMode.NONE:
        rules = ["goto refuse"]
    elif setting.mode is NetworkMode.ALLOW_LIST:
        for family, version in (("ip", 4), ("ip6", 6)):
            listed = [str(net) for net in setting.allowed if net.version == version]
            if listed:
                rules.append(f"{family} daddr {{ {', '.join(listed)} }} accept")
        rules.append("goto refuse")
    exceptions = [f"{_match(address, port)} accept" for address, port in services]
    denials = [f"{_match(address, port)} goto refuse" for address, port in refused]
    body = "".join(f"    {rule}\n" for rule in (*exceptions, *denials, *rules))
    # Adding the table first makes the delete succeed on a host that has none yet; the
    # three steps commit together, so no packet ever sees the range unfiltered.
    # The uid match must be positive ("skuid in range: go check"), never "skuid not in
    # range: accept": the reset a reject sends back has no socket, so it matches no uid
    # and would itself be refused, leaving the job's connect to hang until it times out.
    return (
        f"add table inet {table}\n"
        f"delete table inet {table}\n"
        f"table inet {table} {{\n"
        "  chain output {\n"
        "    type filter hook output priority 0; policy accept;\n"
        f"    meta skuid {uids} goto job\n"
        "  }\n"
        "  chain job {\n"
        f"{body}"
        "  }\n"
        "  chain refuse {\n"
        "    meta l4proto tcp reject with tcp reset\n"
        "    reject with icmpx type admin-prohibited\n"
        "  }\n"
        "}\n"
    )


def _match(address: IPAddress, port: int) -> str:
    return f"{'ip' if address.version == 4 else 'ip6'} daddr {address} tcp dport {port}"


def apply_network_policy(
    first_uid: int,
    count: int,
    setting: str | None,
    services: Sequence[Service] = (),
    who: str = "job",
    refused: Sequence[Service] = (),
) -> NetworkPolicy:
    """Install the rules for the uids `first_uid .. first_uid + count - 1`.

    Never fails for want of means: without root, `nft` or kernel support it returns an
    unenforced policy whose description says what those uids can reach and why.

    Args:
        services: (address, TCP port) pairs left reachable, on this host too: the
            indexes, find-links hosts and proxies a build needs (`services_of`).
        who: whose network this is, for the description (`job`, `build`).
        refused: (address, TCP port) pairs refused whatever the setting allows: the
            service's own database, broker and blob store on other machines
            (`service_endpoints`), which the host-address rule does not cover.

    Raises:
        ValueError: `setting` is invalid, or the range is empty or includes root.
    """
    parsed = parse_network_setting(setting)
    script = render_ruleset(first_uid, count, parsed, services, refused)
    table = table_name(first_uid, count)
    uids = f"uids {first_uid}-{first_uid + count - 1}"
    problem = _run_nft(script)
    if problem is not None:
        return NetworkPolicy(NetworkMechanism.UNRESTRICTED, _unrestricted(who, uids, problem))
    described = f"{who} network: nftables owner match on {uids}: {parsed.describe()}"
    if services:
        described += f"; except {show_services(services)}"
    if refused:
        # Counted, not listed: the description reaches users (`/workers`, `/readyz`),
        # and the addresses of the database and the broker are the operator's.
        described += f"; the service's own {len(refused)} endpoints refused"
    return NetworkPolicy(NetworkMechanism.NFTABLES, f"{described} (table inet {table})", table)


def services_of(urls: Iterable[str | None]) -> list[Service]:
    """The (address, TCP port) pairs `urls` name, their host names resolved now; URLs
    without a host (a directory of wheels) or that do not resolve give none."""
    found: list[Service] = []
    for url in urls:
        if not url:
            continue
        parts = urlsplit(url if "://" in url else f"http://{url}")
        scheme = parts.scheme.lower().split("+")[0]
        try:
            port = parts.port or DEFAULT_PORTS.get(scheme, 80)
        except ValueError:
            continue
        if not parts.hostname:
            continue
        try:
            infos = socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)
        except OSError:
            continue
        for info in infos:
            host = info[4][0]
            if not isinstance(host, str):  # only the IP families give a host as text
                continue
            service = (ipaddress.ip_address(host.split("%")[0]), port)
            if service not in found:
                found.append(service)
    return found


def service_endpoints(
    database_url: str | None, broker_url: str | None, blob_endpoint: str | None
) -> list[Service]:
    """Where the service's own database, broker and blob store listen, as jobs would
    connect to them: on other machines of a deployment, the host-address rule does not
    keep jobs away from them.

    A blob store is left out when it is on the internet (AWS's S3, say): its addresses
    are shared with what jobs may legitimately reach, and its keys are what guard it.
    Host names are resolved now, at the worker's start.
    """
    found = services_of([database_url, broker_url])
    for service in services_of([blob_endpoint]):
        if not service[0].is_global and service not in found:
            found.append(service)
    return found


def show_services(services: Sequence[Service]) -> str:
    """`address:port` of each, joined by commas, as the worker's log names them."""
    return ", ".join(_show(address, port) for address, port in services)


def _show(address: IPAddress, port: int) -> str:
    return f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"


def remove_network_policy(first_uid: int, count: int) -> bool:
    """Delete this range's table; whether there was one to delete."""
    nft = shutil.which("nft")
    if nft is None:
        return False
    table = table_name(first_uid, count)
    done = subprocess.run(
        [nft, "delete", "table", "inet", table],
        capture_output=True,
        text=True,
        timeout=NFT_TIMEOUT_SECONDS,
        check=False,
    )
    return done.returncode == 0


def _run_nft(script: str) -> str | None:
    """Load `script`; None once it is in force, else why it could not be."""
    if os.geteuid() != 0:
        return "the worker is not root, and only root can install firewall rules"
    nft = shutil.which("nft")
    if nft is None:
        return "nft not found: install nftables (Debian: apt-get install nftables)"
    try:
        done = subprocess.run(
            [nft, "-f", "-"],
            input=script,
            capture_output=True,
            text=True,
            timeout=NFT_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"nft could not run: {error}"
    if done.returncode != 0:
        first_line = next(iter(done.stderr.strip().splitlines()), f"exit {done.returncode}")
        logger.debug("nft refused the job network rules:\n%s\n%s", script, done.stderr)
        return f"the kernel refused the rules ({first_line}); in a container, grant NET_ADMIN"
    return None


def _unrestricted(who: str, uids: str, problem: str) -> str:
    return (
        f"{who} network: UNRESTRICTED for {uids}: {who}s CAN reach the host's loopback "
        f"services (Redis, PostgreSQL, the API) and the cloud metadata endpoint, because "
        f"{problem}"
    )


def _network(entry: str) -> IPNetwork:
    try:
        return ipaddress.ip_network(entry)
    except ValueError as error:
        raise ValueError(
            f"COMPUTE_JOB_NETWORK: {entry!r} is neither 'outbound', 'none' nor a CIDR ({error})"
        ) from None


def _check_range(first_uid: int, count: int) -> None:
    if count < 1:
        raise ValueError(f"the job uid range must hold at least one uid, not {count}")
    if first_uid < 1:
        raise ValueError(f"the job uid range must not include root (it starts at {first_uid})")
