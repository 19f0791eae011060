"""The Taobao Open Platform (TOP) request signature, for the gateway's ``router/rest`` API.

The algorithm, as TOP documents it (open.taobao.com "API调用方法详解", 签名算法) and every SDK
implements it:

1. take every request parameter (common and business ones) except ``sign`` and byte uploads,
   leaving out empty values, and sort them by name in plain byte (ASCII) order;
2. join them as ``name1value1name2value2…`` (no separators);
3. digest the UTF-8 bytes: ``md5`` wraps the string in the app secret,
   ``md5(secret + joined + secret)``; ``hmac`` is HMAC-MD5 keyed with the secret; ``hmac-sha256``
   is HMAC-SHA256 keyed with the secret;
4. write the digest as UPPERCASE hexadecimal.

Pure functions, no network: the TMC poller signs its calls with `sign`, and the fake TOP gateway
in the tests checks every request with `verify`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Literal

from ._util import constant_time_equal, secret_bytes
from .errors import SignatureError

__all__ = ["SIGN_METHODS", "SignMethod", "canonical", "sign", "verify"]

SignMethod = Literal["md5", "hmac", "hmac-sha256"]
SIGN_METHODS: tuple[str, ...] = ("md5", "hmac", "hmac-sha256")


def canonical(params: Mapping[str, object]) -> str:
    """Steps 1–2: the sorted ``namevalue`` string the digest is taken over.

    ``sign`` itself never takes part, nor does a parameter whose value is None or empty (the
    Java SDK's ``areNotEmpty`` check: an empty value is not sent, so it cannot be signed).
    """
    pairs = sorted((str(k), str(v)) for k, v in params.items() if k != "sign" and v is not None and str(v) != "")
    return "".join(k + v for k, v in pairs)


def sign(params: Mapping[str, object], secret: str | bytes, method: SignMethod = "md5") -> str:
    """The ``sign`` parameter for a request: uppercase hex, 32 digits (md5, hmac) or 64 (hmac-sha256).

    Raises:
        ValueError: an unknown sign method or an empty secret.
    """
    key = secret_bytes(secret, "app secret")
    data = canonical(params).encode("utf-8")
    if method == "md5":
        digest = hashlib.md5(key + data + key).digest()
    elif method == "hmac":
        digest = hmac.new(key, data, hashlib.md5).digest()
    elif method == "hmac-sha256":
        digest = hmac.new(key, data, hashlib.sha256).digest()
    else:
        raise ValueError(f"unknown TOP sign_method {method!r} (known: {', '.join(SIGN_METHODS)})")
    return digest.hex().upper()


def verify(params: Mapping[str, object], secret: str | bytes) -> None:
    """Check a request's ``sign`` with the ``sign_method`` it names (the fake gateway's side).

    Raises:
        SignatureError: no ``sign``, an unknown ``sign_method``, or a mismatch (constant time).
    """
    given = params.get("sign")
    if not given:
        raise SignatureError("missing sign parameter")
    method = str(params.get("sign_method") or "md5")
    if method not in SIGN_METHODS:
        raise SignatureError(f"unknown sign_method {method!r}")
    if not constant_time_equal(sign(params, secret, method), str(given)):  # type: ignore[arg-type]
        raise SignatureError("sign does not match the parameters")
