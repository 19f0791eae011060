"""Feishu / Lark events v2: the official decrypt vector, round trips, tampering, X-Lark-Signature."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from connectors.crypto import DecryptError, MalformedPayload, ProtocolError, SignatureError, feishu

# Official vector (PROTOCOLS.md, from larksuite/oapi-sdk-python).
KEY = "test key"
ENCRYPT = "P37w+VZImNgPEO1RBhJ6RtKl7n6zymIbEG1pReEzghk="
PLAIN = "hello world"

TS, NONCE = "1700000000", "a1b2c3"
BODY = json.dumps({"encrypt": ENCRYPT}).encode()


def flip_byte(encrypt: str, index: int) -> str:
    raw = bytearray(base64.b64decode(encrypt))
    raw[index] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


@pytest.fixture
def spy(monkeypatch):
    calls = []
    real = hmac.compare_digest

    def compare(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", compare)
    return calls


# -- decryption -------------------------------------------------------------------------------


def test_official_decrypt_vector():
    assert feishu.decrypt(KEY, ENCRYPT) == PLAIN
    assert feishu.decrypt(KEY.encode(), ENCRYPT) == PLAIN


def test_official_vector_layout_is_iv_then_one_block():
    raw = base64.b64decode(ENCRYPT)
    key = hashlib.sha256(KEY.encode()).digest()
    decryptor = Cipher(algorithms.AES(key), modes.CBC(raw[:16])).decryptor()
    assert decryptor.update(raw[16:]) + decryptor.finalize() == b"hello world" + b"\x05" * 5


def test_encrypt_with_the_official_iv_reproduces_the_vector():
    assert feishu.encrypt(KEY, PLAIN, iv=base64.b64decode(ENCRYPT)[:16]) == ENCRYPT


@pytest.mark.parametrize(
    "plaintext",
    [
        "",
        "a",
        "x" * 15,
        "x" * 16,
        "x" * 17,
        "你好，亲，在吗？",
        json.dumps({"type": "url_verification", "challenge": "ajls384kdjx98XX", "token": "xxxxxx"}),
        json.dumps({"schema": "2.0", "event": {"message": {"content": json.dumps({"text": "包邮吗？"}, ensure_ascii=False)}}}, ensure_ascii=False),
    ],
    ids=["empty", "one", "15", "16", "17", "chinese", "url-verification", "event"],
)
@pytest.mark.parametrize("iv", [None, bytes(range(16))], ids=["random-iv", "fixed-iv"])
def test_round_trip(plaintext, iv):
    encrypted = feishu.encrypt(KEY, plaintext, iv=iv)
    raw = base64.b64decode(encrypted)
    assert len(raw) == 16 + (len(plaintext.encode()) // 16 + 1) * 16  # a full pad block when aligned
    assert feishu.decrypt(KEY, encrypted) == plaintext


def test_random_iv_changes_the_ciphertext_each_time():
    assert feishu.encrypt(KEY, PLAIN) != feishu.encrypt(KEY, PLAIN)
    assert feishu.encrypt(KEY, PLAIN, iv=bytes(16)) == feishu.encrypt(KEY, PLAIN, iv=bytes(16))


@pytest.mark.parametrize("iv", [b"", bytes(15), bytes(17), "0123456789abcdef"])
def test_encrypt_requires_a_16_byte_iv(iv):
    with pytest.raises(ValueError, match="iv must be exactly 16 bytes"):
        feishu.encrypt(KEY, PLAIN, iv=iv)


@pytest.mark.parametrize("key", ["test key2", "Test key", "test key "])
def test_wrong_key_is_a_decrypt_error(key):
    with pytest.raises(DecryptError, match=r"bad padding: pad value \d+ outside 1\.\.16"):
        feishu.decrypt(key, ENCRYPT)


@pytest.mark.parametrize(
    ("byte_index", "message"),
    [
        (11, "bad padding: the last 5 bytes are not all 5"),
        (15, "bad padding: the last 4 bytes are not all 4"),
        (16, r"bad padding: pad value 104 outside 1\.\.16"),
        (31, r"bad padding: pad value 112 outside 1\.\.16"),
    ],
)
def test_flipped_bits_that_reach_the_padding_are_caught(byte_index, message):
    with pytest.raises(DecryptError, match=message):
        feishu.decrypt(KEY, flip_byte(ENCRYPT, byte_index))


@pytest.mark.parametrize(("byte_index", "plaintext"), [(0, "iello world"), (5, "hello!world"), (10, "hello worle")])
def test_iv_bit_flips_pass_decryption_so_verify_the_signature_first(byte_index, plaintext):
    """AES-CBC is malleable: a flipped IV bit flips the same plaintext bit and decryption succeeds."""
    tampered = flip_byte(ENCRYPT, byte_index)
    assert feishu.decrypt(KEY, tampered) == plaintext
    signature = feishu.signature(TS, NONCE, KEY, BODY)
    with pytest.raises(SignatureError):
        feishu.verify_signature(TS, NONCE, KEY, json.dumps({"encrypt": tampered}).encode(), signature)


@pytest.mark.parametrize(
    ("position", "outcome"),
    [(0, "Tello world"), (20, DecryptError), (len(ENCRYPT) - 2, DecryptError)],
    ids=["in-iv", "in-block", "last-char"],
)
def test_one_flipped_base64_char(position, outcome):
    char = ENCRYPT[position]
    tampered = ENCRYPT[:position] + ("A" if char != "A" else "B") + ENCRYPT[position + 1:]
    if outcome is DecryptError:
        with pytest.raises(DecryptError, match="bad padding"):
            feishu.decrypt(KEY, tampered)
    else:  # a changed IV char silently changes the plaintext: only the signature catches it
        assert feishu.decrypt(KEY, tampered) == outcome


@pytest.mark.parametrize(
    ("encrypt", "message"),
    [
        (base64.b64encode(base64.b64decode(ENCRYPT)[:16]).decode(), "16 bytes, shorter than a 16-byte IV plus one block"),
        (base64.b64encode(base64.b64decode(ENCRYPT)[:-1]).decode(), "31 bytes, shorter than a 16-byte IV plus one block"),
        (base64.b64encode(base64.b64decode(ENCRYPT) + bytes(15)).decode(), "ciphertext length 31 is not a positive multiple of 16"),
        (base64.b64encode(base64.b64decode(ENCRYPT) + b"x").decode(), "ciphertext length 17 is not a positive multiple of 16"),
        (base64.b64encode(b"abc").decode(), "3 bytes, shorter than a 16-byte IV"),
        (ENCRYPT[:-1], "not valid base64"),
        (ENCRYPT.replace("+", "-"), "not valid base64"),
        ("hello world", "not valid base64"),
        ("你好", "not valid base64"),
    ],
    ids=["iv-only", "truncated-1", "extra-15", "extra-byte", "tiny", "bad-b64-padding", "urlsafe-alphabet", "plain-text", "chinese"],
)
def test_truncated_and_non_base64(encrypt, message):
    with pytest.raises(DecryptError, match=message):
        feishu.decrypt(KEY, encrypt)


def test_non_utf8_plaintext_is_a_decrypt_error():
    key = hashlib.sha256(KEY.encode()).digest()
    iv = bytes(16)
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    raw = iv + encryptor.update(b"\xff\xfe bad utf8" + b"\x05" * 5) + encryptor.finalize()
    with pytest.raises(DecryptError, match="not UTF-8"):
        feishu.decrypt(KEY, base64.b64encode(raw).decode())


@pytest.mark.parametrize("encrypt", ["", None])
def test_missing_encrypt_field(encrypt):
    with pytest.raises(MalformedPayload, match="missing encrypt field"):
        feishu.decrypt(KEY, encrypt)


def test_empty_key_is_a_configuration_error():
    with pytest.raises(ValueError, match="encrypt_key is empty"):
        feishu.decrypt("", ENCRYPT)


# -- X-Lark-Signature -------------------------------------------------------------------------


def test_signature_is_plain_sha256_of_the_concatenation_not_hmac():
    expected = hashlib.sha256((TS + NONCE + KEY).encode() + BODY).hexdigest()
    assert feishu.signature(TS, NONCE, KEY, BODY) == expected
    assert feishu.signature(int(TS), NONCE, KEY, BODY) == expected
    assert expected != hmac.new(KEY.encode(), (TS + NONCE).encode() + BODY, hashlib.sha256).hexdigest()


def test_signature_covers_raw_bytes_including_chinese_and_whitespace():
    body = '{"encrypt": "…", "text": "你好"}\n'.encode()
    assert feishu.signature(TS, NONCE, KEY, body) == hashlib.sha256((TS + NONCE + KEY).encode() + body).hexdigest()
    assert feishu.signature(TS, NONCE, KEY, body) != feishu.signature(TS, NONCE, KEY, body.rstrip())


def test_verify_signature_accepts_a_good_signature(spy):
    signature = feishu.signature(TS, NONCE, KEY, BODY)
    assert feishu.verify_signature(TS, NONCE, KEY, BODY, signature) is None
    assert spy == [(signature.encode(), signature.encode())]


@pytest.mark.parametrize(
    ("ts", "nonce", "key", "body"),
    [
        ("1700000001", NONCE, KEY, BODY),
        (TS, "a1b2c4", KEY, BODY),
        (TS, NONCE, "other key", BODY),
        (TS, NONCE, KEY, BODY + b" "),
        (TS, NONCE, KEY, BODY.replace(b"P37w", b"P37x")),
        (TS, "\udcff", KEY, BODY),
    ],
    ids=["timestamp", "nonce", "key", "trailing-space", "body-char", "surrogate-nonce"],
)
def test_verify_signature_rejects_any_changed_input(spy, ts, nonce, key, body):
    signature = feishu.signature(TS, NONCE, KEY, BODY)
    with pytest.raises(SignatureError, match="X-Lark-Signature does not match"):
        feishu.verify_signature(ts, nonce, key, body, signature)
    assert len(spy) == 1


@pytest.mark.parametrize("signature", ["0" * 64, "签名", "x"])
def test_verify_signature_rejects_wrong_or_odd_headers(signature):
    with pytest.raises(SignatureError, match="does not match"):
        feishu.verify_signature(TS, NONCE, KEY, BODY, signature)


@pytest.mark.parametrize(
    ("ts", "nonce", "signature", "message"),
    [
        (TS, NONCE, None, "missing X-Lark-Signature header"),
        (TS, NONCE, "", "missing X-Lark-Signature header"),
        (None, NONCE, "ab", "missing X-Lark-Request-Timestamp header"),
        ("", NONCE, "ab", "missing X-Lark-Request-Timestamp header"),
        (TS, None, "ab", "missing X-Lark-Request-Nonce header"),
    ],
)
def test_verify_signature_missing_headers(ts, nonce, signature, message):
    with pytest.raises(SignatureError, match=message):
        feishu.verify_signature(ts, nonce, KEY, BODY, signature)


def test_signature_refuses_text_bodies():
    with pytest.raises(TypeError, match="raw body must be bytes"):
        feishu.signature(TS, NONCE, KEY, BODY.decode())


# -- verification token -----------------------------------------------------------------------


def test_verify_token(spy):
    assert feishu.verify_token("v-token", "v-token") is None
    assert spy == [(b"v-token", b"v-token")]
    with pytest.raises(SignatureError, match="verification token does not match"):
        feishu.verify_token("v-token", "v-tokem")
    with pytest.raises(SignatureError, match="missing verification token"):
        feishu.verify_token("v-token", None)
    with pytest.raises(ValueError, match="verification token is empty"):
        feishu.verify_token("", "")


def test_all_failures_are_protocol_errors():
    for call in (lambda: feishu.decrypt(KEY, "!"), lambda: feishu.verify_signature(TS, NONCE, KEY, BODY, "x")):
        with pytest.raises(ProtocolError):
            call()
