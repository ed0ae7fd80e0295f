"""Which network addresses a capture may connect to (server-side request forgery).

A page is hostile: `<img src=/r>` redirecting to http://10.0.0.5/ or to the cloud's
metadata service (169.254.169.254, which hands out the machine's credentials) would
have that internal response sealed into the capture. So every connection, the HTTP
crawler's and the recording proxy's (browser, media), is decided by the address the
name resolves to at connection time (a DNS name can point inside), and made to that
checked address: loopback, private, link-local and other non-public ranges are refused
unless the host is one the operator named as a seed (an internal target chosen on
purpose) or `--allow-private-addresses` is given; the link-local range where metadata
services live needs `--allow-metadata-addresses` of its own.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from archive.errors import ArchiveError

# where cloud machines keep their credentials: link-local IPv4 (AWS, GCP, Azure, ...),
# link-local IPv6 and AWS's IPv6 metadata address (in the unique-local range)
METADATA_NETWORKS = tuple(ipaddress.ip_network(n) for n in ("169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128"))


class AddressRefused(ArchiveError, OSError):
    """A connection the address policy refuses; its message says which address and why."""


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").rstrip(".").lower()
    except ValueError:
        return ""


@dataclass(frozen=True)
class AddressPolicy:
    seed_hosts: frozenset[str] = field(default_factory=frozenset)
    allow_private: bool = False
    allow_metadata: bool = False

    @classmethod
    def for_seeds(cls, seeds: list[str], allow_private: bool = False,
                  allow_metadata: bool = False) -> "AddressPolicy":
        return cls(frozenset(h for h in map(_host, seeds) if h), allow_private, allow_metadata)

    def refusal(self, host: str, address: str) -> str | None:
        """Why connecting to `address` (which `host` resolved to) is refused, or None."""
        if host.rstrip(".").lower() in self.seed_hosts:
            return None
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return f"{address} is not an IP address"
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip in network for network in METADATA_NETWORKS):
            if self.allow_metadata:
                return None
            return (f"{host} is at {ip}, a link-local address (where cloud metadata services "
                    "give out credentials); --allow-metadata-addresses fetches it")
        if ip.is_global or self.allow_private:
            return None
        return (f"{host} is at {ip}, a loopback, private or reserved address, and not a seed's "
                "host; --allow-private-addresses fetches it")

    def resolve(self, host: str, port: int) -> list[tuple]:
        """getaddrinfo's answers for `host` that may be connected to; AddressRefused when
        there are none (socket.gaierror when the name does not resolve)."""
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        allowed, reasons = [], []
        for answer in answers:
            reason = self.refusal(host, answer[4][0])
            (reasons.append(reason) if reason else allowed.append(answer))
        if not allowed:
            raise AddressRefused(f"refused to connect: {reasons[0]}")
        return allowed


def connect(policy: AddressPolicy, host: str, port: int, timeout: float | None) -> socket.socket:
    """A TCP connection to the first allowed address of `host` that answers (the address
    checked is the address connected to: nothing resolves the name again in between)."""
    error: OSError | None = None
    for family, kind, proto, _, address in policy.resolve(host, port):
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            sock.connect(address)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    raise error or OSError(f"cannot connect to {host}")
