"""Requests the server makes to URLs a tenant chose (outgoing webhooks, Web Push endpoints,
an organization's provider endpoints): they must never reach the platform's own network.

`url_check_syntax` runs when such a URL is saved (scheme, host, port 1–65535, no literal
non-public address) and `url_resolve_public` right before each request: the host is resolved
once, with a time bound, every address must be public, and `pinned_session` then connects to
exactly the address that was checked — a second DNS lookup could answer 127.0.0.1 (DNS
rebinding). The Host header, TLS SNI and certificate verification still use the host name.

Callers answer every refusal and every connection failure with the same public message
(`PUBLIC_ERROR`): telling "does not resolve" from "port closed" from "private address" would
turn the feature into a scanner of the platform's network. The precise reason goes to logs.

`settings.OUTBOUND_ALLOW_LOOPBACK` lets loopback addresses (127.0.0.0/8, ::1) through — and
nothing else that is non-public — so tests and a development machine can talk to a receiver on
127.0.0.1. Production never sets it.
"""
from __future__ import annotations

import ipaddress
import logging
import socket
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

logger = logging.getLogger(__name__)

PUBLIC_ERROR = "Could not deliver to the endpoint."
RESOLVE_TIMEOUT_SECONDS = 3.0

# Ranges that are not plain, globally routed unicast, whatever `is_global` says on this Python:
# translation and tunnelling prefixes embed an IPv4 address (64:ff9b::7f00:1 is 127.0.0.1 behind
# a NAT64 gateway, 2002:7f00:1:: is 6to4 for 127.0.0.1, ::127.0.0.1 is IPv4-compatible), so no
# target may use them at all.
_BLOCKED_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15",
    "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
    "::/96",            # unspecified, loopback and IPv4-compatible ::a.b.c.d
    "::ffff:0:0/96",    # IPv4-mapped
    "64:ff9b::/96",     # NAT64 (RFC 6052)
    "64:ff9b:1::/48",   # local-use NAT64 (RFC 8215)
    "100::/64",         # discard-only
    "2001::/23",        # IETF protocol assignments, Teredo (2001::/32) included
    "2001:db8::/32",    # documentation
    "2002::/16",        # 6to4
    "fc00::/7",         # unique local
    "fe80::/10",        # link-local
    "fec0::/10",        # site-local (deprecated)
    "ff00::/8",         # multicast
))
_LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


class OutboundRefused(Exception):
    """This request must not be made. `reason` is for logs and operators, never for the caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    address: str  # the checked address every connection of this target goes to


def loopback_allowed() -> bool:
    return bool(getattr(settings, "OUTBOUND_ALLOW_LOOPBACK", False))


def address_refusal(address: str) -> str:
    """Why this IP must not be contacted ("" when it may)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"{address!r} is not an IP address"
    if loopback_allowed() and any(ip in net for net in _LOOPBACK):
        return ""
    if any(ip.version == net.version and ip in net for net in _BLOCKED_NETWORKS):
        return f"{ip} is in a non-public range"
    if not ip.is_global or ip.is_multicast or ip.is_reserved or ip.is_link_local or ip.is_unspecified:
        return f"{ip} is not a public address"
    return ""


def _parts(url: str, schemes: tuple[str, ...]) -> tuple[str, str, int]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a port out of 0–65535 or not a number
        raise OutboundRefused("the URL's port is not a number from 1 to 65535") from None
    scheme = parts.scheme.lower()
    if scheme not in schemes:
        raise OutboundRefused(f"the URL must start with {' or '.join(s + '://' for s in schemes)}")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise OutboundRefused("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise OutboundRefused("the URL must not carry credentials")
    if port == 0:
        raise OutboundRefused("the URL's port is not a number from 1 to 65535")
    return scheme, host, port or (443 if scheme == "https" else 80)


def url_check_syntax(url: str, *, schemes: tuple[str, ...] = ("https", "http")) -> None:
    """What can be checked when the URL is saved, without a DNS lookup (whose answer may change
    and whose failure must not be reported): scheme, host, port, literal addresses."""
    _scheme, host, _port = _parts(url, schemes)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if host.lower() == "localhost" or host.lower().endswith(".localhost"):
            if not loopback_allowed():
                raise OutboundRefused("the URL points at this machine") from None
        return
    refusal = address_refusal(host)
    if refusal:
        raise OutboundRefused(refusal)


def _resolve(host: str, port: int, timeout: float) -> list[str]:
    # getaddrinfo has no timeout of its own: a slow or hostile name server must not hold a
    # worker. One short-lived thread per lookup, so one tenant's slow name server never queues
    # another's lookup behind it; glibc gives up on its own after its resolv.conf timeouts.
    infos: list[tuple[Any, ...]] = []
    errors: list[BaseException] = []

    def lookup() -> None:
        try:
            infos.extend(socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM))
        except (OSError, UnicodeError) as exc:
            errors.append(exc)

    thread = threading.Thread(target=lookup, name="outbound-dns", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise OutboundRefused(f"resolving {host} took more than {timeout:g} s")
    if errors:
        raise OutboundRefused(f"{host} does not resolve ({errors[0].__class__.__name__})")
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise OutboundRefused(f"{host} has no address")
    return addresses


def url_resolve_public(url: str, *, schemes: tuple[str, ...] = ("https", "http"),
                       timeout: float = RESOLVE_TIMEOUT_SECONDS) -> Target:
    """Resolve the URL's host once and return the address to connect to; raise OutboundRefused
    when the URL is malformed or any of its addresses is not public (one private answer among
    public ones is enough to refuse: the resolver chose the order, not us)."""
    scheme, host, port = _parts(url, schemes)
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        addresses = _resolve(host, port, timeout)
    else:
        addresses = [str(literal)]
    for address in addresses:
        refusal = address_refusal(address)
        if refusal:
            raise OutboundRefused(f"{host}: {refusal}")
    return Target(scheme=scheme, host=host, port=port, address=addresses[0].split("%", 1)[0])


def require_https(target: Target) -> None:
    """For services that must be TLS (Web Push): plain http only to loopback under the
    test/development allowance."""
    if target.scheme == "https":
        return
    if loopback_allowed() and any(ipaddress.ip_address(target.address) in net for net in _LOOPBACK):
        return
    raise OutboundRefused("the URL must start with https://")


def _pinned_connection(base: type[HTTPConnection], address: str) -> type[HTTPConnection]:
    class Pinned(base):  # type: ignore[misc, valid-type]
        def _new_conn(self):  # noqa: ANN202 — urllib3's signature
            # urllib3 opens the socket to `_dns_host` (which `host` also reads): swap in the
            # checked address for the connect only, so the Host header, SNI and certificate
            # verification that follow still use the name.
            name: str = getattr(self, "_dns_host")  # noqa: B009 — urllib3's private attribute
            setattr(self, "_dns_host", address)  # noqa: B010
            try:
                return super()._new_conn()
            finally:
                setattr(self, "_dns_host", name)  # noqa: B010

    return Pinned


class PinnedAdapter(HTTPAdapter):
    """Sends only to `target.host`:`target.port`, connecting to `target.address`."""

    def __init__(self, target: Target, **kwargs) -> None:
        self.target = target
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        http_conn = _pinned_connection(HTTPConnection, self.target.address)
        https_conn = _pinned_connection(HTTPSConnection, self.target.address)
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("PinnedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn}),
            "https": type("PinnedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn}),
        }

    def send(self, request, *args, **kwargs):
        try:
            _scheme, host, port = _parts(request.url or "", ("https", "http"))
        except OutboundRefused:
            host, port = "", 0
        if (host.lower(), port) != (self.target.host.lower(), self.target.port):
            # Only the checked host: a redirect or a second URL would skip the check.
            raise requests.exceptions.InvalidURL("this session only sends to its checked host")
        return super().send(request, *args, **kwargs)


class _NoRedirectSession(requests.Session):
    def request(self, *args, **kwargs):
        # A 3xx would send the body (and its credentials) to a place nobody checked.
        kwargs["allow_redirects"] = False
        return super().request(*args, **kwargs)


def pinned_session(target: Target) -> requests.Session:
    """A session that connects only to the checked address, never follows redirects and ignores
    proxy variables (a proxy would resolve the name again, on its side)."""
    session = _NoRedirectSession()
    session.trust_env = False
    adapter = PinnedAdapter(target)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
