"""Share-link tokens (docs/API.md, "Share links"; docs/SECURITY.md #27).

A token is ``base64url(payload || mac)`` without padding, 82 characters:

* ``payload`` (29 bytes): version ``1`` (1 byte), the file id (16 bytes), the expiry in
  unix seconds (8 bytes, big-endian) and the file's share generation (4 bytes);
* ``mac``: HMAC-SHA256 of the payload under a key derived from the JWT secret
  (``HMAC-SHA256(secret, "mediaflow share links v1")``), so a share token can never be
  mistaken for, or turned into, any other signed value.

The token names exactly one file: no id from the URL or the request reaches the lookup.
Revoking bumps the file's ``share_generation``, which no earlier token carries. Pure: the
API checks the file row and the generation.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
import uuid
from dataclasses import dataclass

VERSION = 1
_PAYLOAD = struct.Struct(">B16sQI")
_MAC_BYTES = 32
TOKEN_BYTES = _PAYLOAD.size + _MAC_BYTES
MIN_EXPIRES_IN = 60
MAX_EXPIRES_IN = 7 * 24 * 3600
DEFAULT_EXPIRES_IN = 3600


class ShareTokenInvalid(ValueError):
    """Not a token we signed (malformed, tampered, or signed under another secret)."""


class ShareTokenExpired(ValueError):
    """Signed by us, but past its expiry."""


@dataclass(frozen=True)
class ShareGrant:
    file_id: uuid.UUID
    expires_at: int  # unix seconds
    generation: int


def _key(secret: str) -> bytes:
    return hmac.new(secret.encode(), b"mediaflow share links v1", hashlib.sha256).digest()


def make_token(secret: str, grant: ShareGrant) -> str:
    payload = _PAYLOAD.pack(VERSION, grant.file_id.bytes, grant.expires_at, grant.generation)
    mac = hmac.new(_key(secret), payload, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(payload + mac).rstrip(b"=").decode()


def read_token(secret: str, token: str, now: float) -> ShareGrant:
    """The grant a token carries; raises ShareTokenInvalid or ShareTokenExpired."""
    if len(token) > 2 * TOKEN_BYTES or not token.isascii():
        raise ShareTokenInvalid("malformed share token")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise ShareTokenInvalid("malformed share token") from None
    if len(raw) != TOKEN_BYTES or base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != token:
        raise ShareTokenInvalid("malformed share token")  # one spelling per token only
    payload, mac = raw[:_PAYLOAD.size], raw[_PAYLOAD.size:]
    if not hmac.compare_digest(hmac.new(_key(secret), payload, hashlib.sha256).digest(), mac):
        raise ShareTokenInvalid("invalid share token")
    version, file_id, expires_at, generation = _PAYLOAD.unpack(payload)
    if version != VERSION:
        raise ShareTokenInvalid("invalid share token")
    if now >= expires_at:
        raise ShareTokenExpired("the share link has expired")
    return ShareGrant(uuid.UUID(bytes=file_id), expires_at, generation)
