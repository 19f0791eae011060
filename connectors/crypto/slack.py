"""Slack request signing (``X-Slack-Signature`` / ``X-Slack-Request-Timestamp``), v0 scheme.

``X-Slack-Signature = "v0=" + hex(HMAC-SHA256(signing_secret, f"v0:{timestamp}:" + raw_body))``;
requests older or newer than 5 minutes are refused. Verified against the official vector from
slackapi/python-slack-sdk. Kept as the reference design for timestamped HMAC webhooks.
"""

from __future__ import annotations

import hashlib
import hmac

from ._util import body_bytes, check_fresh, constant_time_equal, parse_timestamp, secret_bytes
from .errors import SignatureError

__all__ = ["MAX_AGE", "SIGNATURE_HEADER", "TIMESTAMP_HEADER", "VERSION", "sign", "verify"]

SIGNATURE_HEADER = "X-Slack-Signature"
TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
VERSION = "v0"
MAX_AGE = 300


def sign(secret: str | bytes, timestamp: str | int, body: bytes) -> str:
    """Return ``v0=<hex HMAC-SHA256(secret, "v0:{timestamp}:" + body)>``."""
    message = f"{VERSION}:{timestamp}:".encode() + body_bytes(body)
    return f"{VERSION}=" + hmac.new(secret_bytes(secret, "Slack signing secret"), message, hashlib.sha256).hexdigest()


def verify(secret: str | bytes, timestamp: str | int | None, body: bytes, signature_header: str | None,
           now: float, max_age: float = MAX_AGE) -> None:
    """Check a Slack request: timestamp freshness first, then the signature in constant time.

    Raises:
        StaleTimestamp: the timestamp is missing, not an integer, or more than `max_age`
            seconds from `now`.
        SignatureError: the signature is missing, lacks the ``v0=`` prefix, or does not match.
    """
    secret_bytes(secret, "Slack signing secret")  # a missing secret is a configuration error, say so first
    ts = parse_timestamp(timestamp, f"{TIMESTAMP_HEADER} header")
    check_fresh(ts, now, max_age, "s", f"{TIMESTAMP_HEADER} header")
    if not signature_header:
        raise SignatureError(f"missing {SIGNATURE_HEADER} header")
    if not signature_header.startswith(f"{VERSION}="):
        raise SignatureError(f"{SIGNATURE_HEADER} must start with '{VERSION}='")
    if not constant_time_equal(sign(secret, timestamp, body), signature_header):
        raise SignatureError(f"{SIGNATURE_HEADER} does not match the timestamp and body")
