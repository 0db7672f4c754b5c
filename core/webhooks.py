"""Webhook targets and signatures (SPEC §3 "Webhooks", SECURITY.md item 19)."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
from urllib.parse import urlsplit

METADATA_HOSTS = {"metadata.google.internal", "metadata", "instance-data"}


class WebhookTargetRefused(ValueError):
    """The URL points somewhere mediaflow must not call."""


def _address_is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise WebhookTargetRefused(f"webhook host {host!r} does not resolve") from exc
    return sorted({info[4][0] for info in infos})


def check_target(url: str, *, allow_private: bool) -> list[str]:
    """Refuse non-http(s) URLs, credentials in URLs, and (unless allowed) any host that
    resolves to a loopback, private, link-local (169.254.169.254) or reserved address.
    Returns the resolved addresses."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookTargetRefused("webhook url must be http(s)://host/…")
    if parts.username or parts.password:
        raise WebhookTargetRefused("webhook url must not carry credentials")
    host = parts.hostname.rstrip(".").lower()
    if host in METADATA_HOSTS and not allow_private:
        raise WebhookTargetRefused("webhook url points at a cloud metadata service")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise WebhookTargetRefused("webhook url has an invalid port") from exc
    addresses = resolve(host, port)
    if not allow_private:
        private = [a for a in addresses if not _address_is_public(a)]
        if private:
            raise WebhookTargetRefused(
                "webhook url resolves to a private, loopback or link-local address "
                f"({', '.join(private)}); set MEDIAFLOW_WEBHOOK_ALLOW_PRIVATE=true to allow it"
            )
    return addresses


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
