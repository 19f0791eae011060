"""Chatwoot webhook / agent-bot signature: ``X-Chatwoot-Signature`` and ``X-Chatwoot-Timestamp``.

Protocol (PROTOCOLS.md, marked [M]: the official text was seen only through a mirror, and only
for Chatwoot v4.13+ agent bots; confirm against Chatwoot's own docs before relying on it):
``X-Chatwoot-Signature: sha256=hex(HMAC-SHA256(secret, timestamp + "." + raw_body))`` with
``X-Chatwoot-Timestamp`` in Unix seconds. Chatwoot states no freshness window; kefu refuses
timestamps more than `max_age` seconds (default 300) away from now to stop replays.
"""

from __future__ import annotations

import hashlib
import hmac

from ._util import body_bytes, check_fresh, constant_time_equal, parse_timestamp, secret_bytes
from .errors import SignatureError

__all__ = ["MAX_AGE", "PREFIX", "SIGNATURE_HEADER", "TIMESTAMP_HEADER", "sign", "verify"]

SIGNATURE_HEADER = "X-Chatwoot-Signature"
TIMESTAMP_HEADER = "X-Chatwoot-Timestamp"
PREFIX = "sha256="
MAX_AGE = 300


def sign(secret: str | bytes, timestamp: str | int, raw_body: bytes) -> str:
    """Return the full header value ``sha256=<hex HMAC-SHA256(secret, f"{timestamp}." + raw_body)>``."""
    message = f"{timestamp}.".encode() + body_bytes(raw_body)
    return PREFIX + hmac.new(secret_bytes(secret, "Chatwoot secret"), message, hashlib.sha256).hexdigest()


def verify(secret: str | bytes, timestamp: str | int | None, raw_body: bytes, signature_header: str | None,
           now: float, max_age: float = MAX_AGE) -> None:
    """Check a Chatwoot delivery over the raw body bytes: timestamp first, then the signature.

    Raises:
        StaleTimestamp: the timestamp header is missing, not an integer, or more than `max_age`
            seconds from `now`.
        SignatureError: the signature header is missing, lacks the ``sha256=`` prefix, or does
            not match (compared in constant time).
    """
    secret_bytes(secret, "Chatwoot secret")  # a missing secret is a configuration error, say so first
    ts = parse_timestamp(timestamp, f"{TIMESTAMP_HEADER} header")
    check_fresh(ts, now, max_age, "s", f"{TIMESTAMP_HEADER} header")
    if not signature_header:
        raise SignatureError(f"missing {SIGNATURE_HEADER} header")
    if not signature_header.startswith(PREFIX):
        raise SignatureError(f"{SIGNATURE_HEADER} must start with {PREFIX!r}")
    if not constant_time_equal(sign(secret, timestamp, raw_body), signature_header):
        raise SignatureError(f"{SIGNATURE_HEADER} does not match the timestamp and body")
