"""Small shared helpers: constant-time equality, input coercion, AES-CBC and PKCS#7 of any block size."""

from __future__ import annotations

import base64
import binascii
import hmac
import re

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .errors import DecryptError, StaleTimestamp

_DIGITS = re.compile(r"[0-9]{1,20}")


def constant_time_equal(a: str | bytes, b: str | bytes) -> bool:
    """Compare two secrets or signatures without leaking where they differ.

    Both sides are turned into UTF-8 bytes first, because `hmac.compare_digest` refuses
    non-ASCII `str` (an attacker-controlled header must not turn into a TypeError or
    UnicodeEncodeError).
    """
    return hmac.compare_digest(_comparable(a), _comparable(b))


def _comparable(value: str | bytes) -> bytes:
    # surrogatepass: a header decoded with surrogateescape must fail the comparison, not raise
    return value.encode("utf-8", "surrogatepass") if isinstance(value, str) else bytes(value)


def to_bytes(value: str | bytes) -> bytes:
    """UTF-8 encode a `str`; pass bytes-like values through as `bytes`."""
    if isinstance(value, str):
        return value.encode("utf-8")
    return bytes(value)


def secret_bytes(secret: str | bytes, what: str = "secret") -> bytes:
    """Return the secret as bytes, refusing an empty one (it would accept forged requests)."""
    if not isinstance(secret, str | bytes | bytearray):
        raise TypeError(f"{what} must be str or bytes, not {type(secret).__name__}")
    if not secret:
        raise ValueError(f"{what} is empty: configure it before accepting webhooks")
    return to_bytes(secret)


def body_bytes(body: bytes | bytearray | memoryview) -> bytes:
    """Return the raw body as bytes; a `str` is refused because signatures cover the exact bytes received."""
    if isinstance(body, str):
        raise TypeError("raw body must be bytes: sign and verify the exact bytes received, never re-encoded text")
    if not isinstance(body, bytes | bytearray | memoryview):
        raise TypeError(f"raw body must be bytes, not {type(body).__name__}")
    return bytes(body)


def parse_timestamp(value: str | int | None, what: str = "timestamp") -> int:
    """Parse a header timestamp made of ASCII digits only (no sign, spaces or underscores)."""
    if value is None or value == "":
        raise StaleTimestamp(f"missing {what}")
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise StaleTimestamp(f"{what} must be an integer, got {type(value).__name__}")
    if isinstance(value, int):
        if value < 0:
            raise StaleTimestamp(f"{what} is negative: {value}")
        return value
    if not _DIGITS.fullmatch(value):
        raise StaleTimestamp(f"{what} is not a non-negative integer: {value[:32]!r}")
    return int(value)


def check_fresh(ts: int, now: float, window: float, unit: str, what: str = "timestamp") -> None:
    """Raise StaleTimestamp when |now - ts| exceeds the window (both past and future)."""
    skew = now - ts
    if abs(skew) > window:
        direction = "old" if skew > 0 else "in the future"
        raise StaleTimestamp(
            f"{what} {ts} is {_number(abs(skew))} {unit} {direction} (accepted window ±{_number(window)} {unit})"
        )


def _number(value: float) -> str:
    """Render 3600001 as "3600001" (not "3.6e+06") and 1.5 as "1.5"."""
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}".rstrip("0")


def pkcs7_pad(data: bytes, block: int) -> bytes:
    """Pad to a multiple of `block` bytes with pad values 1..block (a full block when already aligned)."""
    if not 1 <= block <= 255:
        raise ValueError(f"PKCS#7 block size must be 1..255, got {block}")
    n = block - len(data) % block
    return data + bytes([n]) * n


def pkcs7_unpad(data: bytes, block: int) -> bytes:
    """Strip PKCS#7 padding of pad values 1..block, checking every pad byte."""
    if not data:
        raise DecryptError("bad padding: decrypted plaintext is empty")
    n = data[-1]
    if not 1 <= n <= block:
        raise DecryptError(f"bad padding: pad value {n} outside 1..{block}")
    if n > len(data):
        raise DecryptError(f"bad padding: pad value {n} longer than the {len(data)}-byte plaintext")
    if data[-n:] != bytes([n]) * n:
        raise DecryptError(f"bad padding: the last {n} bytes are not all {n}")
    return data[:-n]


def aes_cbc_encrypt(key: bytes, iv: bytes, plaintext: bytes) -> bytes:
    """AES-CBC over already padded plaintext."""
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return encryptor.update(plaintext) + encryptor.finalize()


def aes_cbc_decrypt(key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    """AES-CBC decryption without unpadding; the ciphertext length is checked first."""
    if not ciphertext or len(ciphertext) % 16:
        raise DecryptError(f"ciphertext length {len(ciphertext)} is not a positive multiple of 16 (truncated?)")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return decryptor.update(ciphertext) + decryptor.finalize()


def b64decode_strict(text: str | bytes, what: str) -> bytes:
    """Decode standard base64, refusing characters outside the alphabet and bad padding."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DecryptError(f"{what} is not valid base64: {exc}") from None
