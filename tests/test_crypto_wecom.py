"""WeCom WXBizMsgCrypt: the official vectors, round trips, 32-byte padding, tampering and safe XML."""

from __future__ import annotations

import base64
import hmac
import struct

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from connectors.crypto import DecryptError, MalformedPayload, ProtocolError, ReceiverMismatch, SignatureError
from connectors.crypto.wecom import WeComCrypto, parse_xml, xml_fields

# Official vectors (PROTOCOLS.md, from Tencent's weworkapi_python callback/Sample.py).
TOKEN = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo"
AES_KEY = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"
CORP_ID = "ww1436e0e65a779aee"

URL_SIG = "012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb"
URL_TS = "1476416373"
URL_NONCE = "47744683"
ECHOSTR = "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA=="
ECHO_PLAIN = "1288432023552776189"

MSG_SIG = "0c3914025cb4b4d68103f6bfc8db550f79dcf48e"
MSG_TS = "1476422779"
MSG_NONCE = "1597212914"
MSG_ENCRYPT = "Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAybhhMl9pFeK8NslNPVdMwmBQTNoW4mY7AIjeLvEl3NyeTkAgGzBhzTtRLNshw2AEew+kkYcD+Fq72Kt00fT0WnN87hGrW8SqGc+NcT3mu87Ha3dz1pSDi6GaUA6A0sqfde0VJPQbZ9U+3JWcoD4Z5jaU0y9GSh010wsHF8KZD24YhmZH4ch4Ka7ilEbjbfvhKkNL65HHL0J6EYJIZUC2pFrdkJ7MhmEbU2qARR4iQHE7wy24qy0cRX3Mfp6iELcDNfSsPGjUQVDGxQDCWjayJOpcwocugux082f49HKYg84EpHSGXAyh+/oxwaWbvL6aSDPOYuPDGOCI8jmnKiypE+"
MSG_PLAIN = "<xml><ToUserName>ww1436e0e65a779aee</ToUserName><FromUserName>ChenJiaShun</FromUserName><CreateTime>1476422779</CreateTime><MsgType>text</MsgType><Content>你好</Content><MsgId>1456453720</MsgId><AgentID>1000002</AgentID></xml>"

KEY = base64.b64decode(AES_KEY + "=")
TS, NONCE = "1700000000", "123456789"


@pytest.fixture
def wecom() -> WeComCrypto:
    return WeComCrypto(TOKEN, AES_KEY, CORP_ID)


def raw_decrypt(encrypt: str) -> bytes:
    """Independent AES-256-CBC decryption (no unpadding) used to cross-check the module."""
    decryptor = Cipher(algorithms.AES(KEY), modes.CBC(KEY[:16])).decryptor()
    return decryptor.update(base64.b64decode(encrypt)) + decryptor.finalize()


def raw_encrypt(plain: bytes) -> str:
    """Encrypt already padded bytes with the official key, for hand-built malformed payloads."""
    encryptor = Cipher(algorithms.AES(KEY), modes.CBC(KEY[:16])).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()


def flip_byte(encrypt: str, index: int) -> str:
    raw = bytearray(base64.b64decode(encrypt))
    raw[index] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def resigned(wecom: WeComCrypto, encrypt: str) -> str:
    """Decrypt `encrypt` with a freshly computed signature, i.e. as an attacker who knows the token."""
    return wecom.decrypt(wecom.signature(TS, NONCE, encrypt), TS, NONCE, encrypt)


# -- official vectors -------------------------------------------------------------------------


def test_official_verify_url_vector(wecom):
    assert wecom.signature(URL_TS, URL_NONCE, ECHOSTR) == URL_SIG
    assert wecom.verify_url(URL_SIG, URL_TS, URL_NONCE, ECHOSTR) == ECHO_PLAIN


def test_official_decrypt_msg_vector(wecom):
    assert wecom.signature(MSG_TS, MSG_NONCE, MSG_ENCRYPT) == MSG_SIG
    assert wecom.decrypt(MSG_SIG, MSG_TS, MSG_NONCE, MSG_ENCRYPT) == MSG_PLAIN


def test_official_inbound_body_is_parsed_and_decrypted(wecom):
    body = f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><Encrypt><![CDATA[{MSG_ENCRYPT}]]></Encrypt><AgentID><![CDATA[1000002]]></AgentID></xml>"
    assert wecom.decrypt_body(MSG_SIG, MSG_TS, MSG_NONCE, body.encode()) == MSG_PLAIN
    fields = xml_fields(wecom.decrypt_body(MSG_SIG, MSG_TS, MSG_NONCE, body))
    assert fields["Content"] == "你好"
    assert fields["MsgId"] == "1456453720"


def test_integer_timestamp_signs_like_its_string(wecom):
    assert wecom.signature(int(MSG_TS), MSG_NONCE, MSG_ENCRYPT) == MSG_SIG
    assert wecom.decrypt(MSG_SIG, int(MSG_TS), MSG_NONCE, MSG_ENCRYPT) == MSG_PLAIN


@pytest.mark.parametrize("encrypt", [ECHOSTR, MSG_ENCRYPT], ids=["verify_url", "decrypt_msg"])
def test_official_vectors_need_32_byte_padding(encrypt):
    """PROTOCOLS.md: PKCS7(128) rejects the official DecryptMsg vector, PKCS7(256) accepts both."""
    plain = raw_decrypt(encrypt)
    assert len(plain) % 32 == 0
    assert 1 <= plain[-1] <= 32
    unpadder = padding.PKCS7(256).unpadder()
    assert unpadder.update(plain) + unpadder.finalize() == plain[: -plain[-1]]


def test_pkcs7_128_rejects_the_decrypt_msg_vector():
    plain = raw_decrypt(MSG_ENCRYPT)
    assert plain[-1] == 22  # > 16: only a 32-byte block size allows it
    unpadder = padding.PKCS7(128).unpadder()
    with pytest.raises(ValueError):
        unpadder.update(plain) + unpadder.finalize()


@pytest.mark.parametrize(
    ("encrypt", "plaintext", "nonce", "timestamp", "signature"),
    [
        (ECHOSTR, ECHO_PLAIN, URL_NONCE, URL_TS, URL_SIG),
        (MSG_ENCRYPT, MSG_PLAIN, MSG_NONCE, MSG_TS, MSG_SIG),
    ],
    ids=["verify_url", "decrypt_msg"],
)
def test_encrypt_reproduces_official_ciphertext_with_its_random16(wecom, encrypt, plaintext, nonce, timestamp, signature):
    random16 = raw_decrypt(encrypt)[:16]
    assert wecom.encrypt(plaintext, nonce, timestamp, random16=random16) == {
        "Encrypt": encrypt,
        "MsgSignature": signature,
        "TimeStamp": timestamp,
        "Nonce": nonce,
    }


# -- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "plaintext",
    ["", "a", "hello", "你好，亲，包邮吗？", "<xml><Content><![CDATA[在吗 😀]]></Content></xml>", "x" * 5000],
    ids=["empty", "one-char", "ascii", "chinese", "xml-emoji", "long"],
)
@pytest.mark.parametrize("random16", [None, b"0123456789abcdef"], ids=["random", "fixed"])
def test_round_trip(wecom, plaintext, random16):
    out = wecom.encrypt(plaintext, NONCE, TS, random16=random16)
    assert out["MsgSignature"] == wecom.signature(TS, NONCE, out["Encrypt"])
    assert wecom.decrypt(out["MsgSignature"], out["TimeStamp"], out["Nonce"], out["Encrypt"]) == plaintext
    assert wecom.verify_url(out["MsgSignature"], TS, NONCE, out["Encrypt"]) == plaintext


# 20 header bytes + message + 18-byte CorpID: messages of 26, 58, 90 bytes end exactly on a 32-byte boundary.
@pytest.mark.parametrize("plaintext", ["a" * 25, "a" * 26, "a" * 27, "a" * 57, "a" * 58, "a" * 59, "好" * 30, "好" * 29])
def test_padding_to_32_byte_blocks(wecom, plaintext):
    content = 20 + len(plaintext.encode()) + len(CORP_ID)
    out = wecom.encrypt(plaintext, NONCE, TS, random16=bytes(16))
    plain = raw_decrypt(out["Encrypt"])
    pad = 32 - content % 32  # a full block of 32 when already aligned
    assert len(plain) == content + pad
    assert plain[-pad:] == bytes([pad]) * pad
    assert plain[:16] == bytes(16)
    assert struct.unpack(">I", plain[16:20])[0] == len(plaintext.encode())
    assert plain[content - len(CORP_ID): content] == CORP_ID.encode()
    assert resigned(wecom, out["Encrypt"]) == plaintext


def test_aligned_message_gets_a_full_32_byte_pad_block(wecom):
    out = wecom.encrypt("好" * 30, NONCE, TS, random16=bytes(16))  # 20 + 90 + 18 = 128 bytes
    assert len(base64.b64decode(out["Encrypt"])) == 160
    assert raw_decrypt(out["Encrypt"])[-32:] == bytes([32]) * 32


def test_fixed_random16_is_deterministic_and_random_is_not(wecom):
    fixed = b"\x01" * 16
    assert wecom.encrypt("你好", NONCE, TS, fixed) == wecom.encrypt("你好", NONCE, TS, fixed)
    assert wecom.encrypt("你好", NONCE, TS)["Encrypt"] != wecom.encrypt("你好", NONCE, TS)["Encrypt"]
    assert wecom.encrypt("你好", NONCE, TS, fixed)["Encrypt"] != wecom.encrypt("你好", NONCE, TS, b"\x02" * 16)["Encrypt"]


@pytest.mark.parametrize("random16", [b"", b"short", bytes(15), bytes(17), "0123456789abcdef"])
def test_encrypt_requires_exactly_16_random_bytes(wecom, random16):
    with pytest.raises(ValueError, match="random16 must be exactly 16 bytes"):
        wecom.encrypt("hi", NONCE, TS, random16=random16)


@pytest.mark.parametrize("timestamp", ["", "abc", "-1", "1.5", " 1"])
def test_encrypt_requires_a_numeric_timestamp(wecom, timestamp):
    with pytest.raises(ValueError, match="timestamp must be Unix seconds"):
        wecom.encrypt("hi", NONCE, timestamp)


def test_reply_xml_round_trips_through_the_safe_parser(wecom):
    body = wecom.reply_xml("<xml><Content>好的，马上发货</Content></xml>", NONCE, TS, random16=bytes(16))
    assert body.startswith("<xml><Encrypt><![CDATA[") and body.endswith("]]></Nonce></xml>")
    fields = xml_fields(body)
    assert list(fields) == ["Encrypt", "MsgSignature", "TimeStamp", "Nonce"]
    assert fields == wecom.encrypt("<xml><Content>好的，马上发货</Content></xml>", NONCE, TS, random16=bytes(16))
    plain = wecom.decrypt(fields["MsgSignature"], fields["TimeStamp"], fields["Nonce"], fields["Encrypt"])
    assert plain == "<xml><Content>好的，马上发货</Content></xml>"


@pytest.mark.parametrize("nonce", ["", "]]>", "a b", "<x>", "n" * 65])
def test_reply_xml_refuses_nonces_that_cannot_sit_in_cdata(wecom, nonce):
    with pytest.raises(ValueError, match="reply nonce"):
        wecom.reply_xml("hi", nonce, TS)


# -- signature and receiver checks ------------------------------------------------------------


def test_wrong_token_is_a_signature_error():
    other = WeComCrypto("another-token", AES_KEY, CORP_ID)
    with pytest.raises(SignatureError, match="msg_signature does not match"):
        other.decrypt(MSG_SIG, MSG_TS, MSG_NONCE, MSG_ENCRYPT)
    with pytest.raises(SignatureError, match=r"sha1\(token, timestamp, nonce, echostr\)"):
        other.verify_url(URL_SIG, URL_TS, URL_NONCE, ECHOSTR)


@pytest.mark.parametrize(
    ("sig", "ts", "nonce"),
    [
        ("0" * 40, MSG_TS, MSG_NONCE),
        (MSG_SIG.upper(), MSG_TS, MSG_NONCE),
        (MSG_SIG[:-1], MSG_TS, MSG_NONCE),
        (MSG_SIG, "1476422780", MSG_NONCE),
        (MSG_SIG, MSG_TS, "1597212915"),
        ("签名" * 10, MSG_TS, MSG_NONCE),
        ("\udcff" * 40, MSG_TS, MSG_NONCE),
        (MSG_SIG, MSG_TS, "\udcff"),
    ],
    ids=["zeros", "uppercase", "truncated", "other-timestamp", "other-nonce", "non-ascii", "surrogate-sig", "surrogate-nonce"],
)
def test_wrong_signature_or_signed_fields(wecom, sig, ts, nonce):
    with pytest.raises(SignatureError, match="msg_signature does not match"):
        wecom.decrypt(sig, ts, nonce, MSG_ENCRYPT)


@pytest.mark.parametrize("position", [0, 10, 150, len(MSG_ENCRYPT) - 3])
def test_one_flipped_base64_char_fails_the_signature(wecom, position):
    char = MSG_ENCRYPT[position]
    tampered = MSG_ENCRYPT[:position] + ("A" if char != "A" else "B") + MSG_ENCRYPT[position + 1:]
    with pytest.raises(SignatureError):
        wecom.decrypt(MSG_SIG, MSG_TS, MSG_NONCE, tampered)


def test_wrong_corp_id_is_receiver_mismatch():
    other = WeComCrypto(TOKEN, AES_KEY, "ww0000000000000000")
    with pytest.raises(ReceiverMismatch, match="payload is for receive_id 'ww1436e0e65a779aee', expected 'ww0000000000000000'"):
        other.decrypt(MSG_SIG, MSG_TS, MSG_NONCE, MSG_ENCRYPT)
    with pytest.raises(ReceiverMismatch):
        other.verify_url(URL_SIG, URL_TS, URL_NONCE, ECHOSTR)


def test_empty_receive_id_is_matched_exactly():
    suite = WeComCrypto(TOKEN, AES_KEY, "")
    out = suite.encrypt("hi", NONCE, TS)
    assert suite.decrypt(out["MsgSignature"], TS, NONCE, out["Encrypt"]) == "hi"
    with pytest.raises(ReceiverMismatch, match="expected ''"):
        suite.decrypt(MSG_SIG, MSG_TS, MSG_NONCE, MSG_ENCRYPT)


def test_wrong_aes_key_fails_decryption():
    other = WeComCrypto(TOKEN, "A" * 43, CORP_ID)
    with pytest.raises(DecryptError, match="bad padding"):
        other.decrypt(MSG_SIG, MSG_TS, MSG_NONCE, MSG_ENCRYPT)


def test_signature_is_compared_in_constant_time(wecom, monkeypatch):
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert wecom.decrypt(MSG_SIG, MSG_TS, MSG_NONCE, MSG_ENCRYPT) == MSG_PLAIN
    assert calls == [(MSG_SIG.encode(), MSG_SIG.encode())]
    with pytest.raises(SignatureError):
        wecom.verify_url("f" * 40, URL_TS, URL_NONCE, ECHOSTR)
    assert calls[-1] == (URL_SIG.encode(), b"f" * 40)


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        ((None, MSG_TS, MSG_NONCE, MSG_ENCRYPT), SignatureError, "missing msg_signature"),
        (("", MSG_TS, MSG_NONCE, MSG_ENCRYPT), SignatureError, "missing msg_signature"),
        ((MSG_SIG, None, MSG_NONCE, MSG_ENCRYPT), MalformedPayload, "missing timestamp"),
        ((MSG_SIG, "", MSG_NONCE, MSG_ENCRYPT), MalformedPayload, "missing timestamp"),
        ((MSG_SIG, MSG_TS, None, MSG_ENCRYPT), MalformedPayload, "missing nonce"),
        ((MSG_SIG, MSG_TS, MSG_NONCE, ""), MalformedPayload, "missing Encrypt"),
        ((MSG_SIG, MSG_TS, MSG_NONCE, None), MalformedPayload, "missing Encrypt"),
    ],
)
def test_missing_parameters(wecom, args, error, message):
    with pytest.raises(error, match=message):
        wecom.decrypt(*args)


def test_missing_echostr(wecom):
    with pytest.raises(MalformedPayload, match="missing echostr"):
        wecom.verify_url(URL_SIG, URL_TS, URL_NONCE, "")


# -- tampered ciphertext that still carries a valid signature ----------------------------------
# AES-CBC is malleable: only the signature makes WeCom payloads authentic. These cases show what
# the decryption layer itself catches when an attacker who knows the token re-signs.


@pytest.mark.parametrize(
    ("byte_index", "error", "message"),
    [
        (0, DecryptError, "declared message length 16777444 exceeds the 246 bytes decrypted"),
        (100, DecryptError, "not UTF-8"),
        (234, ReceiverMismatch, "payload is for receive_id 'ww0436e0e65a779aee'"),
        (271, DecryptError, "bad padding: the last 23 bytes are not all 23"),
        (287, DecryptError, r"bad padding: pad value 104 outside 1\.\.32"),
    ],
    ids=["length-field", "message-body", "corp-id", "pad-bytes", "pad-value"],
)
def test_resigned_bit_flips_are_caught_by_decryption(wecom, byte_index, error, message):
    with pytest.raises(error, match=message):
        resigned(wecom, flip_byte(MSG_ENCRYPT, byte_index))


def test_resigned_flip_in_first_block_goes_unnoticed_so_signature_is_essential(wecom):
    assert resigned(wecom, flip_byte(MSG_ENCRYPT, 5)) == "<yml>" + MSG_PLAIN[5:]
    with pytest.raises(SignatureError):
        wecom.decrypt(MSG_SIG, MSG_TS, MSG_NONCE, flip_byte(MSG_ENCRYPT, 5))


@pytest.mark.parametrize(
    ("encrypt", "message"),
    [
        (base64.b64encode(base64.b64decode(MSG_ENCRYPT)[:-1]).decode(), "ciphertext length 287 is not a positive multiple of 16"),
        (base64.b64encode(base64.b64decode(MSG_ENCRYPT)[:-16]).decode(), "bad padding"),
        (base64.b64encode(base64.b64decode(MSG_ENCRYPT)[:-32]).decode(), "bad padding"),
        (base64.b64encode(b"\x00" * 8).decode(), "ciphertext length 8 is not a positive multiple of 16"),
        (MSG_ENCRYPT[:-4], "ciphertext length 285 is not a positive multiple of 16"),
        (MSG_ENCRYPT[:-1], "not valid base64"),
        (MSG_ENCRYPT[:100] + "!" + MSG_ENCRYPT[101:], "not valid base64"),
        (MSG_ENCRYPT[:100] + " " + MSG_ENCRYPT[100:], "not valid base64"),
        ("你好" * 8, "not valid base64"),
        ("====", "not valid base64"),
    ],
    ids=["truncated-1", "truncated-16", "truncated-32", "short", "truncated-b64-quad", "bad-b64-padding",
         "bang", "space", "chinese", "only-padding"],
)
def test_truncated_and_non_base64_ciphertext(wecom, encrypt, message):
    with pytest.raises(DecryptError, match=message):
        resigned(wecom, encrypt)


def build(content: bytes, pad: bytes) -> str:
    return raw_encrypt(content + pad)


@pytest.mark.parametrize(
    ("content", "pad", "message"),
    [
        (b"r" * 16 + struct.pack(">I", 2) + b"hi" + CORP_ID.encode(), b"\x00" * 24, r"pad value 0 outside 1\.\.32"),
        (b"r" * 16 + struct.pack(">I", 2) + b"hi" + CORP_ID.encode(), b"\x21" * 24, r"pad value 33 outside 1\.\.32"),
        (b"r" * 16 + struct.pack(">I", 2) + b"hi" + CORP_ID.encode(), b"\x18" * 23 + b"\x17", "the last 23 bytes are not all 23"),
        (b"r" * 16 + struct.pack(">I", 2) + b"hi" + CORP_ID.encode(), b"\x18" * 22 + b"\x00\x18", "the last 24 bytes are not all 24"),
        (b"", b"\x20" * 32, "decrypted Encrypt is 0 bytes, shorter than random16 \\+ length"),
        (b"r" * 10, b"\x16" * 22, "decrypted Encrypt is 10 bytes, shorter than random16 \\+ length"),
        (b"r" * 16 + struct.pack(">I", 999) + b"hi" + CORP_ID.encode(), b"\x18" * 24, "declared message length 999 exceeds the 20 bytes"),
        (b"r" * 16 + struct.pack(">I", 2) + b"\xff\xfe" + CORP_ID.encode(), b"\x18" * 24, "not UTF-8"),
    ],
    ids=["pad-0", "pad-33", "pad-mixed", "pad-inner-byte", "only-padding", "too-short", "length-overflow", "not-utf8"],
)
def test_malformed_plaintexts(wecom, content, pad, message):
    with pytest.raises(DecryptError, match=message):
        resigned(wecom, build(content, pad))


def test_pkcs7_128_style_padding_is_accepted_when_valid(wecom):
    """A 16-byte-aligned plaintext with valid pad bytes 1..32 decrypts (the WeCom SDKs never check 32-alignment)."""
    content = b"r" * 16 + struct.pack(">I", 6) + b"hello!" + CORP_ID.encode()  # 44 bytes
    assert resigned(wecom, build(content, b"\x04" * 4)) == "hello!"


def test_every_failure_is_a_protocol_error(wecom):
    for bad in (lambda: wecom.decrypt("0" * 40, TS, NONCE, MSG_ENCRYPT), lambda: resigned(wecom, "!!!!")):
        with pytest.raises(ProtocolError):
            bad()


# -- constructor ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "key", "message"),
    [
        ("", AES_KEY, "token is empty"),
        (TOKEN, AES_KEY[:-1], "exactly 43 base64 characters"),
        (TOKEN, AES_KEY + "A", "exactly 43 base64 characters"),
        (TOKEN, "!" * 43, "not valid base64"),
        (TOKEN, None, "exactly 43 base64 characters"),
        (None, AES_KEY, "token is empty"),
    ],
)
def test_constructor_rejects_bad_configuration(token, key, message):
    with pytest.raises(ValueError, match=message):
        WeComCrypto(token, key, CORP_ID)


def test_constructor_requires_a_str_receive_id():
    with pytest.raises(ValueError, match="receive_id must be a str"):
        WeComCrypto(TOKEN, AES_KEY, None)


def test_repr_does_not_leak_secrets(wecom):
    assert TOKEN not in repr(wecom) and AES_KEY not in repr(wecom)
    assert CORP_ID in repr(wecom)


# -- safe XML ---------------------------------------------------------------------------------

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<xml><Content>&lol3;</Content></xml>"""

XXE = """<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><Content>&xxe;</Content></xml>"""


@pytest.mark.parametrize(
    "body",
    [
        BILLION_LAUGHS,
        XXE,
        '<!DOCTYPE xml SYSTEM "http://example.com/x.dtd"><xml/>',
        "<!DOCTYPE xml><xml/>",
        '<?xml version="1.0"?><!-- c --><!DOCTYPE xml [<!ENTITY % p SYSTEM "http://example.com/p">%p;]><xml/>',
        BILLION_LAUGHS.encode("utf-16"),
    ],
    ids=["billion-laughs", "xxe-file", "external-dtd", "bare-doctype", "parameter-entity", "utf16-billion-laughs"],
)
def test_xml_with_doctype_is_refused(body):
    with pytest.raises(MalformedPayload, match="DOCTYPE declaration is refused"):
        parse_xml(body)
    with pytest.raises(MalformedPayload, match="DOCTYPE"):
        xml_fields(body)


def test_decrypt_body_refuses_doctype_before_anything_else(wecom):
    with pytest.raises(MalformedPayload, match="DOCTYPE"):
        wecom.decrypt_body(MSG_SIG, MSG_TS, MSG_NONCE, XXE.encode())


def test_customer_text_quoting_doctype_inside_cdata_is_fine():
    fields = xml_fields("<xml><Content><![CDATA[<!DOCTYPE x [<!ENTITY a 'b'>]> 是什么？]]></Content></xml>")
    assert fields == {"Content": "<!DOCTYPE x [<!ENTITY a 'b'>]> 是什么？"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "XML body is empty"),
        (b"", "XML body is empty"),
        ("<xml><a></xml>", "malformed XML: mismatched tag"),
        ("<xml>&nbsp;</xml>", "malformed XML: undefined entity"),
        ("not xml", "malformed XML: syntax error"),
        ("<xml/><xml/>", "malformed XML: junk after document element"),
        (b"<xml>\xff</xml>", "malformed XML"),
        ("<root><a>1</a></root>", "expected a <xml> root element, got <root>"),
        ("<xml><Encrypt>a</Encrypt><Encrypt>b</Encrypt></xml>", "element <Encrypt> appears more than once"),
        ('<?xml version="1.0" encoding="GBK"?><xml>你好</xml>'.encode("gbk"), "unreadable XML: multi-byte encodings"),
    ],
)
def test_malformed_xml(body, message):
    with pytest.raises(MalformedPayload, match=message):
        xml_fields(body)


def test_oversized_xml_is_refused_before_parsing():
    with pytest.raises(MalformedPayload, match="above the 100-byte limit"):
        xml_fields("<xml>" + "a" * 200 + "</xml>", max_bytes=100)


def test_xml_fields_unwraps_cdata_escapes_and_empty_elements():
    body = "<xml><ToUserName><![CDATA[ww1]]></ToUserName><Content>a &lt;b&gt; &amp; c</Content><Empty/><Spaced>  x  </Spaced></xml>"
    assert xml_fields(body.encode()) == {"ToUserName": "ww1", "Content": "a <b> & c", "Empty": "", "Spaced": "  x  "}


@pytest.mark.parametrize(
    "body",
    [
        '<?xml version="1.0" encoding="UTF-8"?><xml><Content>你好</Content></xml>'.encode(),
        '<?xml version="1.0" encoding="UTF-16"?><xml><Content>你好</Content></xml>'.encode("utf-16"),
        "<xml><Content>你好</Content></xml>",
    ],
    ids=["utf8-bytes", "utf16-bytes", "str"],
)
def test_xml_encodings_expat_reads(body):
    assert xml_fields(body) == {"Content": "你好"}


def test_parse_xml_keeps_nested_events():
    root = parse_xml("<xml><Event>click</Event><SendPicsInfo><Count>1</Count><PicList><item><PicMd5Sum>ab</PicMd5Sum></item></PicList></SendPicsInfo></xml>")
    assert root.findtext("SendPicsInfo/PicList/item/PicMd5Sum") == "ab"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("<xml><ToUserName>ww</ToUserName></xml>", "no <Encrypt> element"),
        ("<xml><Encrypt></Encrypt></xml>", "no <Encrypt> element"),
        ("<xml><Encrypt>a</Encrypt><Encrypt>b</Encrypt></xml>", "appears more than once"),
    ],
)
def test_decrypt_body_needs_exactly_one_encrypt(wecom, body, message):
    with pytest.raises(MalformedPayload, match=message):
        wecom.decrypt_body(MSG_SIG, MSG_TS, MSG_NONCE, body)
