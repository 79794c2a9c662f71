"""Signed, expiring tokens for the URLs of uploads and downloads: HMAC-SHA256 over what the URL
may do, for whom and until when. Nothing secret is in a token, and nothing of the document."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from datetime import UTC, datetime


class BadSignature(Exception):
    """Not a token we made, or one changed since."""


class Expired(Exception):
    """A token we made whose time is up."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(key: bytes, purpose: str, fields: list[str], expires_at: datetime) -> str:
    """`purpose` (what the URL is for) and `fields`, valid until `expires_at`."""
    body = ".".join([purpose, *fields, str(int(expires_at.timestamp()))])
    mac = hmac.new(key, body.encode(), hashlib.sha256).digest()
    return _b64(body.encode()) + "." + _b64(mac)


def verify(key: bytes, purpose: str, token: str, now: datetime) -> list[str]:
    """The fields of a token made by `sign` for `purpose`; BadSignature or Expired otherwise."""
    try:
        encoded, mac = token.split(".")
        body = _unb64(encoded)
        given = _unb64(mac)
    except (ValueError, binascii.Error) as exc:
        raise BadSignature() from exc
    # One spelling per token: base64's spare low bits must not make another string that passes.
    if _b64(body) != encoded or _b64(given) != mac:
        raise BadSignature()
    if not hmac.compare_digest(hmac.new(key, body, hashlib.sha256).digest(), given):
        raise BadSignature()
    parts = body.decode().split(".")
    if parts[0] != purpose or len(parts) < 2 or not parts[-1].isdigit():
        raise BadSignature()
    if datetime.fromtimestamp(int(parts[-1]), UTC) <= now:
        raise Expired()
    return parts[1:-1]
