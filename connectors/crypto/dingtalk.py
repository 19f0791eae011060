"""DingTalk robot, HTTP (outgoing) mode: the ``timestamp`` and ``sign`` request headers.

Protocol (PROTOCOLS.md, marked [M]: official text seen only through a mirror):
``sign = base64(HMAC-SHA256(key=app_secret, msg=f"{timestamp}\\n{app_secret}"))`` with
``timestamp`` in milliseconds, and the request is refused when |now - timestamp| > 1 hour.
There is no official test vector; the tests use a self-computed one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from ._util import check_fresh, constant_time_equal, parse_timestamp, secret_bytes
from .errors import SignatureError

__all__ = ["MAX_SKEW_MS", "SIGN_HEADER", "TIMESTAMP_HEADER", "sign", "verify"]

SIGN_HEADER = "sign"
TIMESTAMP_HEADER = "timestamp"
MAX_SKEW_MS = 3_600_000


def sign(app_secret: str | bytes, timestamp_ms: str | int) -> str:
    """Return base64(HMAC-SHA256(app_secret, f"{timestamp_ms}\\n{app_secret}"))."""
    key = secret_bytes(app_secret, "DingTalk app_secret")
    message = str(timestamp_ms).encode("utf-8") + b"\n" + key
    return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode("ascii")


def verify(app_secret: str | bytes, timestamp_ms: str | int | None, sign_header: str | None, now_ms: int,
           max_skew_ms: int = MAX_SKEW_MS) -> None:
    """Check the ``timestamp`` and ``sign`` headers of a robot callback.

    The timestamp is checked first (it is public), then the signature in constant time.

    Raises:
        StaleTimestamp: the timestamp is missing, not an integer, or more than `max_skew_ms`
            away from `now_ms` in either direction.
        SignatureError: the sign header is missing or does not match.
    """
    secret_bytes(app_secret, "DingTalk app_secret")  # a missing secret is a configuration error, say so first
    ts = parse_timestamp(timestamp_ms, f"{TIMESTAMP_HEADER} header")
    check_fresh(ts, now_ms, max_skew_ms, "ms", f"{TIMESTAMP_HEADER} header")
    if not sign_header:
        raise SignatureError(f"missing {SIGN_HEADER} header")
    if not constant_time_equal(sign(app_secret, timestamp_ms), sign_header):
        raise SignatureError(f"{SIGN_HEADER} header does not match the timestamp and app_secret")
