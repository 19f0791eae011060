"""WeCom (企业微信) callback crypto, WXBizMsgCrypt: signatures, AES-256-CBC, and a safe XML parser.

Protocol (PROTOCOLS.md, from Tencent's official weworkapi_python sample and doc 90468):

- ``msg_signature = sha1_hex("".join(sorted([token, timestamp, nonce, encrypt])))``; for URL
  verification (GET) the fourth element is ``echostr``, for messages (POST) the XML's ``<Encrypt>``.
- key = b64decode(EncodingAESKey + "="), 32 bytes; AES-256-CBC with IV = key[:16].
- plaintext = random16 | uint32 big-endian msg length | msg | receive_id (the CorpID for
  self-built apps, the suite id for third-party apps), PKCS#7-padded to a **32-byte** block: pad
  values run 1..32, so ``cryptography``'s PKCS7(128) unpadder rejects the official vector.

The signature is the only authenticity check (AES-CBC alone is malleable), so every public
method verifies it before decrypting anything. There is no timestamp window in the protocol;
dedupe on MsgId instead.

Query parameters must be percent-decoded before they reach this module, but a literal ``+`` must
stay a ``+``: form-style decoding that turns it into a space breaks the base64 echostr and its
signature.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import struct
import xml.etree.ElementTree as ET
from xml.parsers import expat

from ._util import (
    aes_cbc_decrypt,
    aes_cbc_encrypt,
    b64decode_strict,
    constant_time_equal,
    pkcs7_pad,
    pkcs7_unpad,
)
from .errors import DecryptError, MalformedPayload, ReceiverMismatch, SignatureError

__all__ = ["BLOCK_SIZE", "MAX_XML_BYTES", "WeComCrypto", "parse_xml", "xml_fields"]

BLOCK_SIZE = 32  # WXBizMsgCrypt pads to 32 bytes, not the AES block size
MAX_XML_BYTES = 1 << 20  # callbacks are a few KB; refuse anything absurd before parsing
_HEADER = struct.Struct(">I")
_REPLY_NONCE = re.compile(r"[0-9A-Za-z_-]{1,64}")
_TIMESTAMP = re.compile(r"[0-9]{1,20}")


class WeComCrypto:
    """Verify, decrypt and encrypt WeCom callbacks for one app.

    Args:
        token: the callback Token configured in the WeCom admin console.
        encoding_aes_key: the 43-character EncodingAESKey.
        receive_id: the CorpID (or suite id) every decrypted payload must carry; ``""`` for the
            personal third-party apps where WeCom sends an empty one.

    Raises:
        ValueError: the token is empty or the EncodingAESKey is not 43 base64 characters.
    """

    def __init__(self, token: str, encoding_aes_key: str, receive_id: str) -> None:
        if not isinstance(token, str) or not token:
            raise ValueError("WeCom token is empty")
        if not isinstance(receive_id, str):
            raise ValueError("WeCom receive_id must be a str (the CorpID, suite id, or \"\")")
        if not isinstance(encoding_aes_key, str) or len(encoding_aes_key) != 43:
            raise ValueError("WeCom EncodingAESKey must be exactly 43 base64 characters")
        try:
            key = b64decode_strict(encoding_aes_key + "=", "EncodingAESKey")
        except DecryptError as exc:
            raise ValueError(str(exc)) from None
        if len(key) != 32:  # pragma: no cover - 43 chars + "=" always decode to 32 bytes
            raise ValueError(f"EncodingAESKey decodes to {len(key)} bytes, expected 32")
        self.token = token
        self.receive_id = receive_id
        self._key = key
        self._iv = key[:16]
        self._receive_id = receive_id.encode("utf-8")

    def __repr__(self) -> str:  # never print the token or key
        return f"WeComCrypto(receive_id={self.receive_id!r})"

    # -- signatures ---------------------------------------------------------------------

    def signature(self, timestamp: str | int, nonce: str, encrypt: str) -> str:
        """Return sha1_hex of the sorted concatenation of token, timestamp, nonce and encrypt."""
        parts = sorted([self.token, str(timestamp), nonce, encrypt])
        # surrogatepass: an odd query string must end in a mismatch, not a UnicodeEncodeError
        return hashlib.sha1("".join(parts).encode("utf-8", "surrogatepass")).hexdigest()

    def _check_signature(self, msg_signature: str | None, timestamp: str | int | None, nonce: str | None,
                         encrypt: str | None, field: str) -> str:
        if not msg_signature:
            raise SignatureError("missing msg_signature")
        if timestamp is None or timestamp == "":
            raise MalformedPayload("missing timestamp")
        if nonce is None or nonce == "":
            raise MalformedPayload("missing nonce")
        if not encrypt:
            raise MalformedPayload(f"missing {field}")
        expected = self.signature(timestamp, nonce, encrypt)
        if not constant_time_equal(expected, msg_signature):
            raise SignatureError(f"msg_signature does not match sha1(token, timestamp, nonce, {field})")
        return encrypt

    # -- inbound ------------------------------------------------------------------------

    def verify_url(self, msg_signature: str, timestamp: str | int, nonce: str, echostr: str) -> str:
        """Answer WeCom's GET URL verification: check the signature, return the echostr plaintext.

        Raises:
            SignatureError: msg_signature is missing or wrong.
            MalformedPayload: timestamp, nonce or echostr is missing.
            DecryptError: echostr is not valid ciphertext.
            ReceiverMismatch: echostr was encrypted for another receive_id.
        """
        echostr = self._check_signature(msg_signature, timestamp, nonce, echostr, "echostr")
        return self._decrypt(echostr, "echostr")

    def decrypt(self, msg_signature: str, timestamp: str | int, nonce: str, encrypt: str) -> str:
        """Check the signature over ``encrypt`` (the XML's <Encrypt>) and return the XML plaintext.

        Raises the same errors as `verify_url`.
        """
        encrypt = self._check_signature(msg_signature, timestamp, nonce, encrypt, "Encrypt")
        return self._decrypt(encrypt, "Encrypt")

    def decrypt_body(self, msg_signature: str, timestamp: str | int, nonce: str, body: bytes | str) -> str:
        """Parse the raw POST body ``<xml>…<Encrypt>…</Encrypt>…</xml>`` safely, then `decrypt` it."""
        fields = xml_fields(body)
        encrypt = fields.get("Encrypt")
        if not encrypt:
            raise MalformedPayload("inbound XML has no <Encrypt> element")
        return self.decrypt(msg_signature, timestamp, nonce, encrypt)

    def _decrypt(self, encrypt: str, field: str) -> str:
        raw = b64decode_strict(encrypt, field)
        plain = pkcs7_unpad(aes_cbc_decrypt(self._key, self._iv, raw), BLOCK_SIZE)
        if len(plain) < 20:
            raise DecryptError(f"decrypted {field} is {len(plain)} bytes, shorter than random16 + length")
        (msg_len,) = _HEADER.unpack_from(plain, 16)
        available = len(plain) - 20
        if msg_len > available:
            raise DecryptError(f"declared message length {msg_len} exceeds the {available} bytes decrypted")
        msg, receive_id = plain[20:20 + msg_len], plain[20 + msg_len:]
        if receive_id != self._receive_id:
            got = receive_id.decode("utf-8", "replace")[:64]
            raise ReceiverMismatch(f"payload is for receive_id {got!r}, expected {self.receive_id!r}")
        try:
            return msg.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecryptError(f"decrypted {field} is not UTF-8: {exc.reason} at byte {exc.start}") from None

    # -- outbound -----------------------------------------------------------------------

    def encrypt(self, plaintext: str, nonce: str, timestamp: str | int,
                random16: bytes | None = None) -> dict[str, str]:
        """Encrypt a reply and sign it.

        Args:
            plaintext: the reply XML (any text; it is UTF-8 encoded).
            nonce: the nonce to sign with (the request's nonce is fine).
            timestamp: Unix seconds.
            random16: the 16 leading random bytes; fresh `os.urandom(16)` when None (pass a
                fixed value only in tests).

        Returns:
            ``{"Encrypt", "MsgSignature", "TimeStamp", "Nonce"}``, all strings.
        """
        if random16 is None:
            random16 = os.urandom(16)
        if not isinstance(random16, bytes | bytearray) or len(random16) != 16:
            raise ValueError("random16 must be exactly 16 bytes")
        timestamp = str(timestamp)
        if not _TIMESTAMP.fullmatch(timestamp):
            raise ValueError(f"timestamp must be Unix seconds, got {timestamp[:32]!r}")
        if not nonce:
            raise ValueError("nonce is empty")
        msg = plaintext.encode("utf-8")
        if len(msg) > 0xFFFFFFFF:  # pragma: no cover - 4 GiB replies are not a thing
            raise ValueError("message too long for a uint32 length")
        plain = bytes(random16) + _HEADER.pack(len(msg)) + msg + self._receive_id
        encrypt = base64.b64encode(aes_cbc_encrypt(self._key, self._iv, pkcs7_pad(plain, BLOCK_SIZE))).decode("ascii")
        return {
            "Encrypt": encrypt,
            "MsgSignature": self.signature(timestamp, nonce, encrypt),
            "TimeStamp": timestamp,
            "Nonce": nonce,
        }

    def reply_xml(self, plaintext: str, nonce: str, timestamp: str | int, random16: bytes | None = None) -> str:
        """Build the passive encrypted reply body, in the layout of the official SDK.

        The nonce must match ``[0-9A-Za-z_-]{1,64}`` so that it can sit in a CDATA section.
        """
        if not _REPLY_NONCE.fullmatch(nonce or ""):
            raise ValueError("reply nonce must be 1-64 characters of [0-9A-Za-z_-]")
        parts = self.encrypt(plaintext, nonce, timestamp, random16)
        return (
            "<xml>"
            f"<Encrypt><![CDATA[{parts['Encrypt']}]]></Encrypt>"
            f"<MsgSignature><![CDATA[{parts['MsgSignature']}]]></MsgSignature>"
            f"<TimeStamp>{parts['TimeStamp']}</TimeStamp>"
            f"<Nonce><![CDATA[{parts['Nonce']}]]></Nonce>"
            "</xml>"
        )


# -- safe XML -------------------------------------------------------------------------------


class _Forbidden(Exception):
    pass


def _forbid(what: str):
    def handler(*_args):
        raise _Forbidden(what)

    return handler


def parse_xml(body: bytes | str, *, max_bytes: int = MAX_XML_BYTES) -> ET.Element:
    """Parse an inbound XML body into an ElementTree element, refusing DTDs and entities.

    expat reports a DOCTYPE before it reads any entity declaration, so refusing it there stops
    XXE and billion-laughs payloads without a text search that could misfire on a customer's
    message quoting ``<!DOCTYPE`` inside CDATA.

    Raises:
        MalformedPayload: the body is too large, is not well-formed, or declares a DOCTYPE,
            ENTITY, NOTATION or external entity reference.
    """
    if not isinstance(body, bytes | bytearray | str):
        raise TypeError(f"XML body must be bytes or str, not {type(body).__name__}")
    size = len(body) if not isinstance(body, str) else len(body.encode("utf-8"))
    if size > max_bytes:
        raise MalformedPayload(f"XML body is {size} bytes, above the {max_bytes}-byte limit")
    if not size:
        raise MalformedPayload("XML body is empty")
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _forbid("DOCTYPE declaration")
    parser.EntityDeclHandler = _forbid("ENTITY declaration")
    parser.UnparsedEntityDeclHandler = _forbid("unparsed ENTITY declaration")
    parser.NotationDeclHandler = _forbid("NOTATION declaration")
    parser.ExternalEntityRefHandler = _forbid("external entity reference")
    parser.buffer_text = True
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(bytes(body) if isinstance(body, bytearray) else body, True)
    except _Forbidden as exc:
        raise MalformedPayload(f"XML with a {exc} is refused (XXE / entity expansion)") from None
    except expat.ExpatError as exc:
        raise MalformedPayload(f"malformed XML: {exc}") from None
    except ValueError as exc:  # e.g. a declared multi-byte encoding such as GBK, which expat cannot read
        raise MalformedPayload(f"unreadable XML: {exc}") from None
    return builder.close()


def xml_fields(body: bytes | str, *, root: str = "xml", max_bytes: int = MAX_XML_BYTES) -> dict[str, str]:
    """Parse a flat WeCom ``<xml>`` body into ``{child tag: text}`` (CDATA unwrapped, "" when empty).

    Nested elements keep only their own direct text; use `parse_xml` for those events.

    Raises:
        MalformedPayload: as `parse_xml`, or the root is not ``<root>``, or a child repeats.
    """
    element = parse_xml(body, max_bytes=max_bytes)
    if element.tag != root:
        raise MalformedPayload(f"expected a <{root}> root element, got <{element.tag}>")
    fields: dict[str, str] = {}
    for child in element:
        if child.tag in fields:
            raise MalformedPayload(f"element <{child.tag}> appears more than once")
        fields[child.tag] = child.text or ""
    return fields
