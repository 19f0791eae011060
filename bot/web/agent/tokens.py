"""Agent sign-in tokens: random, shown once, stored only as a scrypt hash.

A token reads ``kefu_<id>_<secret>``: ``id`` finds the row without scanning, ``secret`` (32
random bytes) is checked against ``scrypt(secret, salt)`` with a constant-time compare. The
store never holds a usable token, so a copied store file signs nobody in. Issuing a new token
revokes the agent's older ones (a lost token is replaced, not added to).

scrypt is slow on purpose (~50 ms, 16 MiB); `TokenVerifier` remembers tokens it has already
verified in this process (keyed by a SHA-256 of the token, never the token itself) and still
reads the row on every request, so a revoked token stops working at once.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import UTC, datetime

from bot.store import Store

PREFIX = "kefu_"
_FORMAT = re.compile(r"^kefu_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32, "maxmem": 64 * 1024 * 1024}


def _hash(secret: str, salt: bytes) -> str:
    return hashlib.scrypt(secret.encode("ascii"), salt=salt, **_SCRYPT).hex()


def issue_token(store: Store, agent_id: str, at: datetime | None = None) -> str:
    """A new token for ``agent_id``; only its hash is stored, older tokens of the agent are revoked."""
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_bytes(16)
    store.add_agent_token(token_id, agent_id, salt.hex(), _hash(secret, salt), at or datetime.now(UTC))
    return f"{PREFIX}{token_id}_{secret}"


class TokenVerifier:
    """Token → agent id, against the store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._verified: dict[str, str] = {}  # sha256(token) → token id it was verified against

    def agent_for(self, token: str | None) -> str | None:
        """The agent a token belongs to, or None (malformed, unknown, revoked or wrong)."""
        match = _FORMAT.match(token or "")
        if not match:
            return None
        token_id, secret = match.groups()
        row = self.store.agent_token(token_id)
        if row is None:
            return None
        fingerprint = hashlib.sha256(token.encode("ascii")).hexdigest()
        if self._verified.get(fingerprint) == token_id:
            return row["agent_id"]
        if not hmac.compare_digest(_hash(secret, bytes.fromhex(row["salt"])), row["hash"]):
            return None
        self._verified[fingerprint] = token_id
        return row["agent_id"]
