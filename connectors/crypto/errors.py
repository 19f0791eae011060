"""The one exception hierarchy for every protocol check in `connectors.crypto`.

A webhook handler catches `ProtocolError`, answers with the status its subclass suggests
(`MalformedPayload` → 400, everything else → 401/403) and logs `str(exc)`, which always
names the failing check. Messages never contain a secret or an expected signature.
"""

from __future__ import annotations

from bot.errors import RefusedError


class ProtocolError(RefusedError):
    """An inbound request failed a protocol-level check and must be rejected."""

    status = 401


class SignatureError(ProtocolError):
    """A signature, token or secret header is missing, malformed or does not match."""


class StaleTimestamp(ProtocolError):
    """A signed timestamp is missing, not an integer, or outside the accepted window."""


class DecryptError(ProtocolError):
    """An encrypted payload is not base64, has a bad length or padding, or is not UTF-8."""


class ReceiverMismatch(ProtocolError):
    """A WeCom payload decrypted correctly but was addressed to another receive_id (CorpID)."""


class MalformedPayload(ProtocolError):
    """A required field is absent or the body cannot be parsed (bad XML, forbidden DOCTYPE)."""

    status = 400
