"""Telegram Bot API webhook: the ``X-Telegram-Bot-Api-Secret-Token`` header.

Telegram echoes the ``secret_token`` given to setWebhook (1-256 characters of A-Z, a-z, 0-9,
``_`` and ``-``) in this header on every update; there is no signature over the body.
"""

from __future__ import annotations

import re

from ._util import constant_time_equal
from .errors import SignatureError

__all__ = ["HEADER", "verify_secret_token"]

HEADER = "X-Telegram-Bot-Api-Secret-Token"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")


def verify_secret_token(expected: str, header_value: str | None) -> None:
    """Check the header against the configured secret_token in constant time.

    Raises:
        ValueError: `expected` is not a token Telegram would accept (empty would let anyone in).
        SignatureError: the header is missing or does not match.
    """
    if not isinstance(expected, str) or not _TOKEN.fullmatch(expected):
        raise ValueError("Telegram secret_token must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
    if not header_value:
        raise SignatureError(f"missing {HEADER} header")
    if not constant_time_equal(expected, header_value):
        raise SignatureError(f"{HEADER} does not match the configured secret token")
