"""HMAC and token checks: DingTalk, Chatwoot, Telegram, Slack and kefu's generic webhook."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

import connectors.crypto as crypto
from connectors.crypto import (
    DecryptError,
    MalformedPayload,
    ProtocolError,
    ReceiverMismatch,
    SignatureError,
    StaleTimestamp,
    chatwoot,
    dingtalk,
    generic,
    slack,
    telegram,
)


@pytest.fixture
def spy(monkeypatch):
    """Record every hmac.compare_digest call (and still compare for real)."""
    calls = []
    real = hmac.compare_digest

    def compare(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", compare)
    return calls


# -- the exception hierarchy ------------------------------------------------------------------


@pytest.mark.parametrize("error", [SignatureError, StaleTimestamp, DecryptError, MalformedPayload, ReceiverMismatch])
def test_every_error_is_a_protocol_error(error):
    assert issubclass(error, ProtocolError)
    assert error.__name__ in crypto.__all__


def test_errors_are_distinct():
    errors = [SignatureError, StaleTimestamp, DecryptError, MalformedPayload, ReceiverMismatch]
    assert not any(issubclass(a, b) for a in errors for b in errors if a is not b)


# -- DingTalk ---------------------------------------------------------------------------------
# No official vector exists; this one is self-computed (PROTOCOLS.md) and NOT official.
DT_SECRET = "this is secret"
DT_TS = "1577262236757"
DT_SIGN = "hmPWwU+7lVdm3ZZz0r9tSfx0L4Q26jWOZr9+Gs6EZQM="


def test_dingtalk_self_computed_vector_not_official():
    assert dingtalk.sign(DT_SECRET, DT_TS) == DT_SIGN
    assert dingtalk.sign(DT_SECRET, int(DT_TS)) == DT_SIGN
    independent = hmac.new(DT_SECRET.encode(), f"{DT_TS}\n{DT_SECRET}".encode(), hashlib.sha256).digest()
    assert base64.b64decode(DT_SIGN) == independent


@pytest.mark.parametrize("now_ms", [1577262236757, 1577262236757 + 3_600_000, 1577262236757 - 3_600_000, 1577262236757 + 60_000])
def test_dingtalk_verify_accepts_within_an_hour(spy, now_ms):
    assert dingtalk.verify(DT_SECRET, DT_TS, DT_SIGN, now_ms) is None
    assert spy == [(DT_SIGN.encode(), DT_SIGN.encode())]


@pytest.mark.parametrize(
    ("now_ms", "message"),
    [
        (1577262236757 + 3_600_001, "is 3600001 ms old"),
        (1577262236757 - 3_600_001, "is 3600001 ms in the future"),
        (1577262236757 + 86_400_000, "ms old"),
    ],
)
def test_dingtalk_stale_timestamp(spy, now_ms, message):
    with pytest.raises(StaleTimestamp, match=message):
        dingtalk.verify(DT_SECRET, DT_TS, DT_SIGN, now_ms)
    assert spy == []  # the public timestamp is checked before the signature


def test_dingtalk_custom_window():
    with pytest.raises(StaleTimestamp, match=r"accepted window ±1000 ms"):
        dingtalk.verify(DT_SECRET, DT_TS, DT_SIGN, int(DT_TS) + 1001, max_skew_ms=1000)
    assert dingtalk.verify(DT_SECRET, DT_TS, DT_SIGN, int(DT_TS) + 1000, max_skew_ms=1000) is None


@pytest.mark.parametrize(
    ("secret", "ts", "sign"),
    [
        ("this is secreT", DT_TS, DT_SIGN),
        (DT_SECRET, "1577262236758", DT_SIGN),
        (DT_SECRET, DT_TS, DT_SIGN.replace("h", "H", 1)),
        (DT_SECRET, DT_TS, DT_SIGN.rstrip("=")),
        (DT_SECRET, DT_TS, "hmPWwU%2B7lVdm3ZZz0r9tSfx0L4Q26jWOZr9%2BGs6EZQM%3D"),
        (DT_SECRET, DT_TS, "签名"),
    ],
    ids=["secret", "timestamp", "flipped-char", "no-padding", "url-encoded", "non-ascii"],
)
def test_dingtalk_bad_signature(secret, ts, sign):
    with pytest.raises(SignatureError, match="sign header does not match"):
        dingtalk.verify(secret, ts, sign, int(DT_TS))


@pytest.mark.parametrize(
    ("ts", "sign", "error", "message"),
    [
        (DT_TS, None, SignatureError, "missing sign header"),
        (DT_TS, "", SignatureError, "missing sign header"),
        (None, DT_SIGN, StaleTimestamp, "missing timestamp header"),
        ("", DT_SIGN, StaleTimestamp, "missing timestamp header"),
        ("abc", DT_SIGN, StaleTimestamp, "not a non-negative integer: 'abc'"),
        ("-1577262236757", DT_SIGN, StaleTimestamp, "not a non-negative integer"),
        (" 1577262236757", DT_SIGN, StaleTimestamp, "not a non-negative integer"),
        ("1577_262236757", DT_SIGN, StaleTimestamp, "not a non-negative integer"),
        ("１５７７２６２２３６７５７", DT_SIGN, StaleTimestamp, "not a non-negative integer"),
        ("1577262236.757", DT_SIGN, StaleTimestamp, "not a non-negative integer"),
    ],
    ids=["no-sign", "empty-sign", "no-ts", "empty-ts", "letters", "negative", "space", "underscore", "fullwidth", "float"],
)
def test_dingtalk_missing_or_malformed_headers(ts, sign, error, message):
    with pytest.raises(error, match=message):
        dingtalk.verify(DT_SECRET, ts, sign, int(DT_TS))


@pytest.mark.parametrize("now_ms", [int(DT_TS), int(DT_TS) + 86_400_000], ids=["fresh", "stale"])
def test_dingtalk_empty_secret_is_a_configuration_error_even_when_stale(now_ms):
    with pytest.raises(ValueError, match="app_secret is empty"):
        dingtalk.verify("", DT_TS, DT_SIGN, now_ms)


# -- Slack (official vector from slackapi/python-slack-sdk) -----------------------------------
SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_TS = "1531420618"
SLACK_BODY = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
SLACK_SIG = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


def test_slack_official_vector():
    assert slack.sign(SLACK_SECRET, SLACK_TS, SLACK_BODY) == SLACK_SIG
    assert slack.sign(SLACK_SECRET, int(SLACK_TS), SLACK_BODY) == SLACK_SIG


@pytest.mark.parametrize("offset", [0, 300, -300, 1.5])
def test_slack_verify_accepts_the_official_vector_when_fresh(spy, offset):
    assert slack.verify(SLACK_SECRET, SLACK_TS, SLACK_BODY, SLACK_SIG, now=int(SLACK_TS) + offset) is None
    assert spy == [(SLACK_SIG.encode(), SLACK_SIG.encode())]


@pytest.mark.parametrize(("offset", "message"), [(301, "is 301 s old"), (-301, "is 301 s in the future"), (86400, "s old")])
def test_slack_stale_timestamp(offset, message):
    with pytest.raises(StaleTimestamp, match=message):
        slack.verify(SLACK_SECRET, SLACK_TS, SLACK_BODY, SLACK_SIG, now=int(SLACK_TS) + offset)


def test_slack_custom_max_age():
    with pytest.raises(StaleTimestamp, match="accepted window ±60 s"):
        slack.verify(SLACK_SECRET, SLACK_TS, SLACK_BODY, SLACK_SIG, now=int(SLACK_TS) + 61, max_age=60)


@pytest.mark.parametrize(
    ("body", "signature", "message"),
    [
        (SLACK_BODY + b"&x=1", SLACK_SIG, "X-Slack-Signature does not match"),
        (SLACK_BODY, SLACK_SIG[:-1] + "4", "X-Slack-Signature does not match"),
        (SLACK_BODY, SLACK_SIG.upper().replace("V0=", "v0="), "X-Slack-Signature does not match"),
        (SLACK_BODY, "v1=" + SLACK_SIG[3:], "must start with 'v0='"),
        (SLACK_BODY, SLACK_SIG[3:], "must start with 'v0='"),
        (SLACK_BODY, None, "missing X-Slack-Signature header"),
        (SLACK_BODY, "", "missing X-Slack-Signature header"),
    ],
    ids=["tampered-body", "flipped-digit", "uppercase", "v1", "no-prefix", "missing", "empty"],
)
def test_slack_bad_signature(body, signature, message):
    with pytest.raises(SignatureError, match=message):
        slack.verify(SLACK_SECRET, SLACK_TS, body, signature, now=int(SLACK_TS))


@pytest.mark.parametrize(("ts", "message"), [(None, "missing X-Slack-Request-Timestamp header"), ("soon", "not a non-negative integer")])
def test_slack_missing_timestamp(ts, message):
    with pytest.raises(StaleTimestamp, match=message):
        slack.verify(SLACK_SECRET, ts, SLACK_BODY, SLACK_SIG, now=int(SLACK_TS))


@pytest.mark.parametrize(
    ("module", "args"),
    [
        (slack, ("", SLACK_TS, SLACK_BODY, SLACK_SIG, 0)),
        (chatwoot, ("", "1", b"{}", "sha256=" + "0" * 64, 10**9)),
    ],
    ids=["slack", "chatwoot"],
)
def test_empty_secret_is_reported_before_a_stale_timestamp(module, args):
    with pytest.raises(ValueError, match="is empty"):
        module.verify(*args)


def test_slack_refuses_text_bodies():
    with pytest.raises(TypeError, match="raw body must be bytes"):
        slack.sign(SLACK_SECRET, SLACK_TS, SLACK_BODY.decode())


# -- Chatwoot [M] -----------------------------------------------------------------------------
CW_SECRET = "cw-webhook-secret"
CW_TS = "1767225600"
CW_BODY = '{"event":"message_created","id":42,"content":"包邮吗？","message_type":"incoming","private":false}'.encode()


def test_chatwoot_sign_matches_the_documented_formula():
    digest = hmac.new(CW_SECRET.encode(), CW_TS.encode() + b"." + CW_BODY, hashlib.sha256).hexdigest()
    assert chatwoot.sign(CW_SECRET, CW_TS, CW_BODY) == "sha256=" + digest
    assert chatwoot.sign(CW_SECRET, int(CW_TS), CW_BODY) == "sha256=" + digest


@pytest.mark.parametrize("offset", [0, 299, -299, 300])
def test_chatwoot_verify_accepts_fresh_deliveries(spy, offset):
    header = chatwoot.sign(CW_SECRET, CW_TS, CW_BODY)
    assert chatwoot.verify(CW_SECRET, CW_TS, CW_BODY, header, now=int(CW_TS) + offset) is None
    assert spy == [(header.encode(), header.encode())]


@pytest.mark.parametrize(
    ("offset", "max_age", "message"),
    [(301, 300, "is 301 s old"), (-301, 300, "in the future"), (61, 60, "accepted window ±60 s"), (3601, 3600, "3601 s old")],
)
def test_chatwoot_stale_timestamp_with_configurable_window(offset, max_age, message):
    header = chatwoot.sign(CW_SECRET, CW_TS, CW_BODY)
    with pytest.raises(StaleTimestamp, match=message):
        chatwoot.verify(CW_SECRET, CW_TS, CW_BODY, header, now=int(CW_TS) + offset, max_age=max_age)


@pytest.mark.parametrize(
    ("ts", "body", "header", "error", "message"),
    [
        (CW_TS, CW_BODY, None, SignatureError, "missing X-Chatwoot-Signature header"),
        (CW_TS, CW_BODY, "", SignatureError, "missing X-Chatwoot-Signature header"),
        (CW_TS, CW_BODY, "sha1=abc", SignatureError, "must start with 'sha256='"),
        (None, CW_BODY, "sha256=abc", StaleTimestamp, "missing X-Chatwoot-Timestamp header"),
        ("1767225600.5", CW_BODY, "sha256=abc", StaleTimestamp, "not a non-negative integer"),
        (CW_TS, CW_BODY, "sha256=" + "0" * 64, SignatureError, "does not match the timestamp and body"),
        (CW_TS, CW_BODY + b" ", "GOOD", SignatureError, "does not match"),
        (CW_TS, CW_BODY.replace("包邮".encode(), "免邮".encode()), "GOOD", SignatureError, "does not match"),
    ],
    ids=["missing", "empty", "wrong-prefix", "no-timestamp", "float-timestamp", "zeros", "trailing-space", "changed-text"],
)
def test_chatwoot_rejections(ts, body, header, error, message):
    if header == "GOOD":
        header = chatwoot.sign(CW_SECRET, CW_TS, CW_BODY)
    with pytest.raises(error, match=message):
        chatwoot.verify(CW_SECRET, ts, body, header, now=int(CW_TS))


def test_chatwoot_signature_is_bound_to_the_timestamp():
    header = chatwoot.sign(CW_SECRET, CW_TS, CW_BODY)
    later = str(int(CW_TS) + 10)
    with pytest.raises(SignatureError, match="does not match"):
        chatwoot.verify(CW_SECRET, later, CW_BODY, header, now=int(later))


def test_chatwoot_docstring_flags_the_mirror_only_source():
    assert "[M]" in chatwoot.__doc__


# -- Telegram ---------------------------------------------------------------------------------
TG_SECRET = "kefu_secret-Token_123"


def test_telegram_accepts_the_exact_token(spy):
    assert telegram.verify_secret_token(TG_SECRET, TG_SECRET) is None
    assert spy == [(TG_SECRET.encode(), TG_SECRET.encode())]


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "missing X-Telegram-Bot-Api-Secret-Token header"),
        ("", "missing X-Telegram-Bot-Api-Secret-Token header"),
        (TG_SECRET.upper(), "does not match the configured secret token"),
        (TG_SECRET + " ", "does not match"),
        (TG_SECRET[:-1], "does not match"),
        ("秘密", "does not match"),
        ("\udcff" * 5, "does not match"),
    ],
    ids=["missing", "empty", "case", "trailing-space", "prefix", "non-ascii", "lone-surrogate"],
)
def test_telegram_rejections(header, message):
    with pytest.raises(SignatureError, match=message):
        telegram.verify_secret_token(TG_SECRET, header)


@pytest.mark.parametrize("expected", ["", "a" * 257, "has space", "秘密", None])
def test_telegram_refuses_an_unusable_configured_token(expected):
    with pytest.raises(ValueError, match="1-256 characters"):
        telegram.verify_secret_token(expected, "anything")


# -- kefu generic webhook ---------------------------------------------------------------------
GEN_SECRET = b"kefu-shared-secret"
GEN_BODY = '{"id":"m-1","text":"在吗？"}'.encode()
GEN_HEADER = "sha256=" + hmac.new(GEN_SECRET, GEN_BODY, hashlib.sha256).hexdigest()


def test_generic_sign_returns_the_full_header_value():
    assert generic.sign(GEN_SECRET, GEN_BODY) == GEN_HEADER
    assert generic.sign(GEN_SECRET.decode(), GEN_BODY) == GEN_HEADER
    assert generic.HEADER == "X-Kefu-Signature"


@pytest.mark.parametrize("header", [GEN_HEADER, "sha256=" + GEN_HEADER[7:].upper()], ids=["lower", "upper-hex"])
def test_generic_verify_accepts(spy, header):
    assert generic.verify(GEN_SECRET, header, GEN_BODY) is None
    assert spy == [(GEN_HEADER.encode(), GEN_HEADER.encode())]


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "missing X-Kefu-Signature header"),
        ("", "missing X-Kefu-Signature header"),
        (GEN_HEADER[7:], "must start with 'sha256='"),
        ("sha1=" + GEN_HEADER[7:], "must start with 'sha256='"),
        ("SHA256=" + GEN_HEADER[7:], "must start with 'sha256='"),
        ("sha256=", "must carry 64 hex digits after 'sha256=', got 0"),
        (GEN_HEADER[:-1], "got 63"),
        (GEN_HEADER + "0", "got 65"),
        ("sha256=" + "g" * 64, "digest is not hexadecimal"),
        ("sha256=" + "秘" * 64, "digest is not hexadecimal"),
        ("sha256=" + "\udcff" * 64, "digest is not hexadecimal"),
        ("sha256=" + "0" * 64, "X-Kefu-Signature does not match the body"),
        (GEN_HEADER[:-1] + ("0" if GEN_HEADER[-1] != "0" else "1"), "does not match the body"),
    ],
    ids=["missing", "empty", "no-prefix", "sha1", "upper-prefix", "no-digest", "short", "long", "non-hex", "non-ascii",
         "surrogates", "zeros", "last-digit"],
)
def test_generic_rejections_have_distinct_messages(header, message):
    with pytest.raises(SignatureError, match=message):
        generic.verify(GEN_SECRET, header, GEN_BODY)


@pytest.mark.parametrize(
    ("secret", "body"),
    [(b"other-secret", GEN_BODY), (GEN_SECRET, GEN_BODY + b"\n"), (GEN_SECRET, b""), (GEN_SECRET, GEN_BODY.replace(b"m-1", b"m-2"))],
    ids=["secret", "newline", "empty-body", "changed-id"],
)
def test_generic_rejects_other_secrets_and_bodies(secret, body):
    with pytest.raises(SignatureError, match="does not match the body"):
        generic.verify(secret, GEN_HEADER, body)


def test_generic_type_and_configuration_errors():
    with pytest.raises(TypeError, match="raw body must be bytes"):
        generic.verify(GEN_SECRET, GEN_HEADER, GEN_BODY.decode())
    with pytest.raises(ValueError, match="webhook secret is empty"):
        generic.verify(b"", GEN_HEADER, GEN_BODY)
    assert generic.verify(GEN_SECRET, GEN_HEADER, bytearray(GEN_BODY)) is None
    assert generic.verify(GEN_SECRET, GEN_HEADER, memoryview(GEN_BODY)) is None
