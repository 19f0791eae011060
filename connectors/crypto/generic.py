"""kefu's own generic webhook: ``X-Kefu-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>``.

For shop systems that push messages to kefu directly. The body alone is signed (no timestamp),
so a captured request can be replayed: senders should put a unique message id in the body and
kefu dedupes on it.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from ._util import body_bytes, constant_time_equal, secret_bytes
from .errors import SignatureError

__all__ = ["HEADER", "PREFIX", "sign", "verify"]

HEADER = "X-Kefu-Signature"
PREFIX = "sha256="
_HEX = re.compile(r"[0-9a-fA-F]*")
_HEX_LEN = hashlib.sha256().digest_size * 2


def sign(secret: str | bytes, body: bytes) -> str:
    """Return the full header value ``sha256=<hex HMAC-SHA256(secret, body)>``."""
    # hmac.digest: OpenSSL's one-shot HMAC, the same bytes as hmac.new(...).hexdigest() without
    # building two hash objects per call (every webhook is signed or verified once)
    return PREFIX + hmac.digest(secret_bytes(secret, "webhook secret"), body_bytes(body), "sha256").hex()


def verify(secret: str | bytes, header_value: str | None, body: bytes) -> None:
    """Check ``X-Kefu-Signature`` over the raw body bytes (hex digits in either case).

    Raises:
        SignatureError: with a distinct message for a missing header, a wrong prefix, a digest
            that is not 64 hex digits, and a mismatch (compared in constant time).
    """
    if not header_value:
        raise SignatureError(f"missing {HEADER} header")
    if not header_value.startswith(PREFIX):
        raise SignatureError(f"{HEADER} must start with {PREFIX!r}")
    digest = header_value[len(PREFIX):]
    if len(digest) != _HEX_LEN:
        raise SignatureError(f"{HEADER} must carry {_HEX_LEN} hex digits after {PREFIX!r}, got {len(digest)}")
    if not _HEX.fullmatch(digest):
        raise SignatureError(f"{HEADER} digest is not hexadecimal")
    if not constant_time_equal(sign(secret, body), PREFIX + digest.lower()):
        raise SignatureError(f"{HEADER} does not match the body")
