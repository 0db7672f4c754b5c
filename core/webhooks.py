"""Webhook targets and signatures (docs/API.md "Webhook", docs/SECURITY.md #19); the same
guard judges URL imports (docs/API.md "Import from a URL") and each of their redirects.

A target is checked on the addresses its host resolves to, and the delivery then connects
to one of *those* addresses (:func:`pinned`) rather than resolving the name again: a
hostname that answers a public address to the check and 127.0.0.1 to the connection (DNS
rebinding) cannot slip through. IPv6 forms that embed an IPv4 address (mapped, compatible,
6to4, Teredo, NAT64) are judged by the address they embed.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
from urllib.parse import urlsplit, urlunsplit

METADATA_HOSTS = {"metadata.google.internal", "metadata", "instance-data"}
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


class WebhookTargetRefused(ValueError):
    """The URL points somewhere mediaflow must not call."""


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries (and may be routed to)."""
    found = [ip.ipv4_mapped, ip.sixtofour, *(ip.teredo or ())]
    if any(ip in network for network in _NAT64) or ip in _IPV4_COMPATIBLE:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return [v4 for v4 in found if v4 is not None]


def _address_is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    candidates: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        # an IPv4-mapped address *is* its IPv4 address; the others are judged on both
        candidates = [*embedded] if ip.ipv4_mapped else [ip, *embedded]
    return all(c.is_global and not c.is_multicast for c in candidates)


def resolve(host: str, port: int, purpose: str = "webhook") -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise WebhookTargetRefused(f"{purpose} host {host!r} does not resolve") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def check_target(url: str, *, allow_private: bool, purpose: str = "webhook") -> list[str]:
    """Refuse non-http(s) URLs, credentials in URLs, and (unless allowed) any host that
    resolves to a loopback, private, link-local (169.254.169.254) or reserved address.
    Returns the resolved addresses, in resolver order: connect only to these.
    ``purpose`` (``webhook`` or ``import``) names the URL and its setting in messages."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookTargetRefused(f"{purpose} url must be http(s)://host/…")
    if parts.username or parts.password:
        raise WebhookTargetRefused(f"{purpose} url must not carry credentials")
    host = parts.hostname.rstrip(".").lower()
    if host in METADATA_HOSTS and not allow_private:
        raise WebhookTargetRefused(f"{purpose} url points at a cloud metadata service")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise WebhookTargetRefused(f"{purpose} url has an invalid port") from exc
    addresses = resolve(host, port, purpose)
    if not allow_private:
        private = [a for a in addresses if not _address_is_public(a)]
        if private:
            raise WebhookTargetRefused(
                f"{purpose} url resolves to a private, loopback or link-local address "
                f"({', '.join(private)}); set MEDIAFLOW_{purpose.upper()}_ALLOW_PRIVATE=true "
                "to allow it"
            )
    return addresses


def pinned(url: str, address: str) -> tuple[str, str, str]:
    """``url`` aimed at the checked ``address``: (url, Host header, TLS server name).

    The Host header and the TLS server name (SNI and certificate check) stay the original
    host's, so the receiver sees the request it expects.
    """
    parts = urlsplit(url)
    hostname = parts.hostname or ""
    literal = f"[{address.split('%', 1)[0]}]" if ":" in address else address
    netloc = literal if parts.port is None else f"{literal}:{parts.port}"
    host_header = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=netloc)), host_header, hostname


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, *, now: int, tolerance: int = 300) -> bool:
    """Receiver side, for clients and tests: constant-time check with a replay window."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, fields.get("v1", ""))
