"""Feishu / Lark event subscription v2: body decryption and the X-Lark-Signature check.

Protocol (PROTOCOLS.md, from larksuite/oapi-sdk-python):

- Encrypted body ``{"encrypt": "<base64>"}``: key = sha256(encrypt_key), raw = b64decode(encrypt),
  IV = raw[:16], AES-256-CBC over raw[16:], PKCS#7 with the ordinary 16-byte block.
- ``X-Lark-Signature = sha256_hex(timestamp + nonce + encrypt_key + raw_body)``: a plain SHA-256
  of the concatenation, NOT an HMAC. Headers: X-Lark-Request-Timestamp, X-Lark-Request-Nonce.

AES-CBC without a MAC is malleable (flipping an IV bit flips the same plaintext bit), so verify
the signature over the raw body before decrypting; that also keeps padding errors from becoming
an oracle. Feishu states no timestamp window, so none is enforced here; dedupe on
header.event_id.
"""

from __future__ import annotations

import base64
import hashlib
import os

from ._util import (
    aes_cbc_decrypt,
    aes_cbc_encrypt,
    b64decode_strict,
    body_bytes,
    constant_time_equal,
    pkcs7_pad,
    pkcs7_unpad,
    secret_bytes,
)
from .errors import DecryptError, MalformedPayload, SignatureError

__all__ = [
    "NONCE_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "decrypt",
    "encrypt",
    "signature",
    "verify_signature",
    "verify_token",
]

SIGNATURE_HEADER = "X-Lark-Signature"
TIMESTAMP_HEADER = "X-Lark-Request-Timestamp"
NONCE_HEADER = "X-Lark-Request-Nonce"


def _key(encrypt_key: str | bytes) -> bytes:
    return hashlib.sha256(secret_bytes(encrypt_key, "Feishu encrypt_key")).digest()


def decrypt(encrypt_key: str | bytes, encrypt_b64: str) -> str:
    """Decrypt the ``encrypt`` field of an event body and return the JSON text.

    Raises:
        MalformedPayload: the field is missing or empty.
        DecryptError: not base64, shorter than IV + one block, not block-aligned, bad padding
            or not UTF-8.
    """
    if not encrypt_b64:
        raise MalformedPayload("missing encrypt field")
    raw = b64decode_strict(encrypt_b64, "encrypt")
    if len(raw) < 32:
        raise DecryptError(f"encrypt is {len(raw)} bytes, shorter than a 16-byte IV plus one block (truncated?)")
    plain = pkcs7_unpad(aes_cbc_decrypt(_key(encrypt_key), raw[:16], raw[16:]), 16)
    try:
        return plain.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecryptError(f"decrypted encrypt is not UTF-8: {exc.reason} at byte {exc.start}") from None


def encrypt(encrypt_key: str | bytes, plaintext: str, iv: bytes | None = None) -> str:
    """Encrypt like Feishu does (for tests and round trips): base64(iv | AES-256-CBC(pkcs7(text))).

    `iv` defaults to 16 fresh random bytes; pass a fixed one only in tests.
    """
    if iv is None:
        iv = os.urandom(16)
    if not isinstance(iv, bytes | bytearray) or len(iv) != 16:
        raise ValueError("iv must be exactly 16 bytes")
    ciphertext = aes_cbc_encrypt(_key(encrypt_key), bytes(iv), pkcs7_pad(plaintext.encode("utf-8"), 16))
    return base64.b64encode(bytes(iv) + ciphertext).decode("ascii")


def signature(timestamp: str | int, nonce: str, encrypt_key: str | bytes, raw_body: bytes) -> str:
    """Return sha256_hex(timestamp + nonce + encrypt_key + raw_body) (plain SHA-256, not HMAC)."""
    prefix = f"{timestamp}{nonce}".encode("utf-8", "surrogatepass") + secret_bytes(encrypt_key, "Feishu encrypt_key")
    return hashlib.sha256(prefix + body_bytes(raw_body)).hexdigest()


def verify_signature(timestamp: str | int | None, nonce: str | None, encrypt_key: str | bytes,
                     raw_body: bytes, signature_header: str | None) -> None:
    """Check X-Lark-Signature over the raw body bytes, in constant time.

    Raises:
        SignatureError: a header is missing or the signature does not match.
    """
    if not signature_header:
        raise SignatureError(f"missing {SIGNATURE_HEADER} header")
    if timestamp is None or timestamp == "":
        raise SignatureError(f"missing {TIMESTAMP_HEADER} header")
    if nonce is None or nonce == "":
        raise SignatureError(f"missing {NONCE_HEADER} header")
    expected = signature(timestamp, nonce, encrypt_key, raw_body)
    if not constant_time_equal(expected, signature_header):
        raise SignatureError(f"{SIGNATURE_HEADER} does not match sha256(timestamp + nonce + encrypt_key + body)")


def verify_token(expected: str, received: str | None) -> None:
    """Check the Verification Token of a url_verification or v2 event header, in constant time.

    Raises:
        SignatureError: the token is missing or wrong.
    """
    secret_bytes(expected, "Feishu verification token")
    if not received:
        raise SignatureError("missing verification token")
    if not constant_time_equal(expected, received):
        raise SignatureError("verification token does not match")
