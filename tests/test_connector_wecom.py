"""The WeCom app connector against the real server on a free port, WeCom faked by a real server.

Official vectors (PROTOCOLS.md) for URL verification and an inbound message, plus messages
encrypted with WeComCrypto exactly as WeCom sends them; replies through message/send with a
cached access token; duplicates, every rejection, ignored events, passive replies.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web

from bot.app import build
from bot.store import SqliteStore
from bot.web.server import KefuServer
from connectors.crypto.wecom import WeComCrypto, xml_fields
from connectors.http import Outbound
from connectors.registry import ConnectorConfigError, build_connectors
from tests_support import until

# Official vectors (PROTOCOLS.md, Tencent's weworkapi_python callback/Sample.py).
TOKEN = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo"
AES_KEY = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"
CORP_ID = "ww1436e0e65a779aee"
AGENT_ID = 1000002
URL_SIG, URL_TS, URL_NONCE = "012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb", "1476416373", "47744683"
ECHOSTR = "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA=="
MSG_SIG, MSG_TS, MSG_NONCE = "0c3914025cb4b4d68103f6bfc8db550f79dcf48e", "1476422779", "1597212914"
MSG_ENCRYPT = "Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAybhhMl9pFeK8NslNPVdMwmBQTNoW4mY7AIjeLvEl3NyeTkAgGzBhzTtRLNshw2AEew+kkYcD+Fq72Kt00fT0WnN87hGrW8SqGc+NcT3mu87Ha3dz1pSDi6GaUA6A0sqfde0VJPQbZ9U+3JWcoD4Z5jaU0y9GSh010wsHF8KZD24YhmZH4ch4Ka7ilEbjbfvhKkNL65HHL0J6EYJIZUC2pFrdkJ7MhmEbU2qARR4iQHE7wy24qy0cRX3Mfp6iELcDNfSsPGjUQVDGxQDCWjayJOpcwocugux082f49HKYg84EpHSGXAyh+/oxwaWbvL6aSDPOYuPDGOCI8jmnKiypE+"

SECRET = "app-secret-for-tests"
CRYPTO = WeComCrypto(TOKEN, AES_KEY, CORP_ID)
SEND = "/cgi-bin/message/send"


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    json: Any


class FakeWeCom:
    """qyapi.weixin.qq.com as a real aiohttp server: gettoken and message/send, every call recorded."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.issued = 0
        self.errors: list[int] = []  # errcodes message/send answers first, one per call
        self.send_delay = 0.0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/cgi-bin/gettoken", self.gettoken)
        app.router.add_post(SEND, self.send)
        return app

    async def gettoken(self, request: web.Request) -> web.Response:
        self.calls.append(Call("GET", request.path, dict(request.query), None))
        if request.query.get("corpid") != CORP_ID or request.query.get("corpsecret") != SECRET:
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
        self.issued += 1
        return web.json_response({"errcode": 0, "errmsg": "ok", "access_token": f"TOKEN-{self.issued}",
                                  "expires_in": 7200})

    async def send(self, request: web.Request) -> web.Response:
        body = await request.json()
        await asyncio.sleep(self.send_delay)
        self.calls.append(Call("POST", request.path, dict(request.query), body))
        if self.errors:
            return web.json_response({"errcode": self.errors.pop(0), "errmsg": "access_token expired"})
        if request.query.get("access_token") != f"TOKEN-{self.issued}":
            return web.json_response({"errcode": 40014, "errmsg": "invalid access_token"})
        return web.json_response({"errcode": 0, "errmsg": "ok", "invaliduser": "", "msgid": f"m{len(self.calls)}"})

    def to(self, path: str) -> list[Call]:
        return [c for c in self.calls if c.path == path]


@pytest.fixture
async def platform(aiohttp_server) -> FakeWeCom:
    fake = FakeWeCom()
    server = await aiohttp_server(fake.app())
    fake.base = str(server.make_url("/"))
    return fake


@pytest.fixture
async def start(engine, tmp_path, platform, monkeypatch, aiohttp_client):
    """Start kefu with one `wecom` connector (settings from ${ENV}); returns (client, server)."""
    monkeypatch.setenv("WECOM_TOKEN", TOKEN)
    monkeypatch.setenv("WECOM_AES_KEY", AES_KEY)
    monkeypatch.setenv("WECOM_CORP_ID", CORP_ID)
    monkeypatch.setenv("WECOM_SECRET", SECRET)
    started: list[tuple[Any, SqliteStore]] = []

    async def _start(**overrides):
        store = SqliteStore(tmp_path / "kefu.sqlite")
        http = Outbound(timeout=2.0, retries=1, backoff=0.05)
        settings = {"type": "wecom", "token": "${WECOM_TOKEN}", "encoding_aes_key": "${WECOM_AES_KEY}",
                    "corp_id": "${WECOM_CORP_ID}", "agent_id": str(AGENT_ID), "secret": "${WECOM_SECRET}",
                    "api_base": platform.base, **overrides}
        server = build(engine.config, engine=engine, store=store, http=http, connectors={"wecom": settings}).server
        client = await aiohttp_client(server.app())
        started.append((client, store))
        return client, server

    yield _start
    for client, store in started:
        await client.close()  # drains the worker before the store closes
        store.close()


def message_xml(content: str = "包邮吗", msg_id: str = "7001", user: str = "zhangsan", *, msg_type: str = "text",
                agent: str = str(AGENT_ID), body: str | None = None) -> str:
    """A decrypted WeCom message, in the layout of the official vector."""
    if body is None:
        body = f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId>"
    return (f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName>"
            f"<CreateTime>1700000000</CreateTime><MsgType><![CDATA[{msg_type}]]></MsgType>{body}"
            f"<AgentID>{agent}</AgentID></xml>")


def envelope(encrypt: str) -> bytes:
    return (f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt>"
            f"<AgentID><![CDATA[{AGENT_ID}]]></AgentID></xml>").encode()


def encrypted(plaintext: str, *, crypto: WeComCrypto = CRYPTO, nonce: str = "424242",
              timestamp: str = "1700000000") -> tuple[str, bytes]:
    """(query string, body) of a callback POST, encrypted and signed as WeCom does."""
    parts = crypto.encrypt(plaintext, nonce, timestamp)
    return f"msg_signature={parts['MsgSignature']}&timestamp={timestamp}&nonce={nonce}", envelope(parts["Encrypt"])


async def post(client, query: str, body: bytes):
    return await client.post(f"/webhook/wecom?{query}", data=body, headers={"Content-Type": "text/xml"})




async def delivered(server: KefuServer, conversation: str) -> dict[str, Any]:
    """The conversation's one decision, once its delivery finished."""
    def done():
        decisions = server.store.decisions(f"wecom:{conversation}")
        return decisions[0] if decisions and decisions[0]["delivery"] in {"done", "failed"} else None
    decision = await until(done)
    assert decision["delivery"] == "done"
    return decision


def inbound(server: KefuServer, conversation: str):
    return [m for m in server.store.recent_messages(f"wecom:{conversation}", 50) if m.direction == "in"]


def assert_nothing_stored(server: KefuServer, platform: FakeWeCom) -> None:
    assert server.store.unprocessed_messages() == []
    assert server.store.decisions() == []
    assert platform.to(SEND) == []


# --- URL verification ---------------------------------------------------------------------------


@pytest.mark.parametrize("echostr", [quote(ECHOSTR, safe=""), ECHOSTR], ids=["percent-encoded", "raw-plus"])
async def test_url_verification_answers_the_official_vector(start, echostr):
    client, _ = await start()
    resp = await client.get(f"/webhook/wecom?msg_signature={URL_SIG}&timestamp={URL_TS}&nonce={URL_NONCE}"
                            f"&echostr={echostr}")
    assert resp.status == 200
    assert resp.content_type == "text/plain"
    assert await resp.read() == b"1288432023552776189"  # bare: no quotes, no newline


@pytest.mark.parametrize(
    "query, status, reason",
    [
        (f"msg_signature={'0' * 40}&timestamp={URL_TS}&nonce={URL_NONCE}&echostr={quote(ECHOSTR, safe='')}", 401,
         "does not match"),
        (f"timestamp={URL_TS}&nonce={URL_NONCE}&echostr={quote(ECHOSTR, safe='')}", 401, "missing msg_signature"),
        (f"msg_signature={URL_SIG}&timestamp={URL_TS}&nonce=1{URL_NONCE}&echostr={quote(ECHOSTR, safe='')}", 401,
         "does not match"),
        (f"msg_signature={URL_SIG}&timestamp={URL_TS}&nonce={URL_NONCE}", 400, "missing echostr"),
    ],
)
async def test_url_verification_rejections(start, query, status, reason):
    client, _ = await start()
    resp = await client.get(f"/webhook/wecom?{query}")
    assert resp.status == status
    error = await resp.json()
    assert error["ok"] is False and error["status"] == status and reason in error["error"]


# --- messages -----------------------------------------------------------------------------------


async def test_official_decryptmsg_vector_is_accepted_and_answered(start, platform):
    client, server = await start()
    resp = await post(client, f"msg_signature={MSG_SIG}&timestamp={MSG_TS}&nonce={MSG_NONCE}", envelope(MSG_ENCRYPT))
    assert resp.status == 200 and await resp.read() == b""
    [message] = inbound(server, f"{AGENT_ID}:ChenJiaShun")
    assert (message.platform, message.message_id, message.customer_id, message.text) == \
        ("wecom", "1456453720", "wecom:ChenJiaShun", "你好")
    decision = await delivered(server, f"{AGENT_ID}:ChenJiaShun")
    replies = [r["text"] for r in decision["payload"]["replies"]]
    assert replies
    assert [c.json for c in platform.to(SEND)] == [
        {"touser": "ChenJiaShun", "msgtype": "text", "agentid": AGENT_ID, "text": {"content": text}} for text in replies
    ]


async def test_reply_goes_through_message_send_with_a_cached_token(start, platform):
    client, server = await start()
    platform.send_delay = 0.3
    query, body = encrypted(message_xml("包邮吗", msg_id="7001"))
    resp = await post(client, query, body)
    assert resp.status == 200 and await resp.read() == b""
    assert platform.to(SEND) == []  # acknowledged before any reply went out
    decision = await delivered(server, f"{AGENT_ID}:zhangsan")
    replies = [r["text"] for r in decision["payload"]["replies"]]
    assert len(replies) >= 1
    sends = platform.to(SEND)
    assert [c.json for c in sends] == [
        {"touser": "zhangsan", "msgtype": "text", "agentid": AGENT_ID, "text": {"content": text}} for text in replies
    ]
    assert {c.query["access_token"] for c in sends} == {"TOKEN-1"}
    [token_call] = platform.to("/cgi-bin/gettoken")
    assert token_call.query == {"corpid": CORP_ID, "corpsecret": SECRET}

    query, body = encrypted(message_xml("发什么快递", msg_id="7002"), nonce="777")
    assert (await post(client, query, body)).status == 200
    await until(lambda: len(server.store.decisions(f"wecom:{AGENT_ID}:zhangsan")) == 2
                and server.store.decisions(f"wecom:{AGENT_ID}:zhangsan")[1]["delivery"] == "done")
    assert len(platform.to("/cgi-bin/gettoken")) == 1  # the token is reused, not fetched per reply


@pytest.mark.parametrize("errcode", [42001, 40014])
async def test_expired_token_is_replaced_once(start, platform, errcode):
    client, server = await start()
    platform.errors = [errcode]
    query, body = encrypted(message_xml("在吗", msg_id="7100"))
    assert (await post(client, query, body)).status == 200
    decision = await delivered(server, f"{AGENT_ID}:zhangsan")
    assert len(platform.to("/cgi-bin/gettoken")) == 2
    sends = platform.to(SEND)
    assert [c.query["access_token"] for c in sends][:2] == ["TOKEN-1", "TOKEN-2"]
    assert sends[0].json == sends[1].json  # the refused reply is sent again, not skipped
    assert [c.json["text"]["content"] for c in sends[1:]] == [r["text"] for r in decision["payload"]["replies"]]


async def test_duplicate_delivery_is_answered_once(start, platform):
    client, server = await start()
    query, body = encrypted(message_xml("包邮吗", msg_id="7200"))
    first, second = await post(client, query, body), await post(client, query, body)
    assert first.status == second.status == 200
    decision = await delivered(server, f"{AGENT_ID}:zhangsan")
    query, body = encrypted(message_xml("包邮吗", msg_id="7200"), nonce="99")  # WeCom's retry, new nonce
    assert (await post(client, query, body)).status == 200
    await asyncio.sleep(0.3)
    assert len(inbound(server, f"{AGENT_ID}:zhangsan")) == 1
    assert len(server.store.decisions(f"wecom:{AGENT_ID}:zhangsan")) == 1
    assert len(platform.to(SEND)) == len(decision["payload"]["replies"])
    metrics = await (await client.get("/metrics")).text()
    assert 'kefu_duplicates_total{connector="wecom"} 2.0' in metrics


async def test_image_message_becomes_an_attachment(start, platform):
    client, server = await start()
    image = message_xml(msg_type="image", body="<PicUrl><![CDATA[https://wework.qpic.cn/p.jpg]]></PicUrl>"
                                               "<MediaId><![CDATA[media-1]]></MediaId><MsgId>7300</MsgId>")
    query, body = encrypted(image)
    assert (await post(client, query, body)).status == 200
    [message] = inbound(server, f"{AGENT_ID}:zhangsan")
    assert message.text == "" and message.message_id == "7300"
    assert message.raw["attachments"] == ["https://wework.qpic.cn/p.jpg"]


@pytest.mark.parametrize(
    "plaintext",
    [
        message_xml(msg_type="event", body="<Event><![CDATA[enter_agent]]></Event><EventKey><![CDATA[]]></EventKey>"),
        message_xml(msg_type="event", body="<Event><![CDATA[subscribe]]></Event>"),
        message_xml(msg_type="voice", body="<MediaId><![CDATA[m]]></MediaId><Format><![CDATA[amr]]></Format>"
                                           "<MsgId>7400</MsgId>"),
        message_xml(msg_type="location", body="<Location_X>23.1</Location_X><Location_Y>113.3</Location_Y>"
                                              "<Scale>20</Scale><Label><![CDATA[广州]]></Label><MsgId>7401</MsgId>"),
    ],
    ids=["enter_agent", "subscribe", "voice", "location"],
)
async def test_events_and_other_types_are_acknowledged_and_ignored(start, platform, plaintext):
    client, server = await start()
    query, body = encrypted(plaintext)
    resp = await post(client, query, body)
    assert resp.status == 200 and await resp.read() == b""
    assert_nothing_stored(server, platform)


def _signed_raw(encrypt: str, nonce: str = "5", timestamp: str = "1700000000") -> tuple[str, bytes]:
    return f"msg_signature={CRYPTO.signature(timestamp, nonce, encrypt)}&timestamp={timestamp}&nonce={nonce}", \
        envelope(encrypt)


def _bad_signature(case: str) -> tuple[str, bytes]:
    query, body = encrypted(message_xml(msg_id="7500"))
    if case == "wrong":
        return query.replace(query.split("&")[0], "msg_signature=" + "0" * 40), body
    if case == "missing":
        return "&".join(query.split("&")[1:]), body
    if case == "tampered":  # another message's Encrypt under the first one's signature
        _, other = encrypted(message_xml("退款", msg_id="7501"))
        return query, other
    if case == "other-token":
        return encrypted(message_xml(msg_id="7500"), crypto=WeComCrypto("another-token", AES_KEY, CORP_ID))
    if case == "other-corp":  # signed with our token, but encrypted for another CorpID
        return encrypted(message_xml(msg_id="7500"), crypto=WeComCrypto(TOKEN, AES_KEY, "ww0000000000000000"))
    raise AssertionError(case)


@pytest.mark.parametrize(
    "case, reason",
    [("wrong", "does not match"), ("missing", "missing msg_signature"), ("tampered", "does not match"),
     ("other-token", "does not match"), ("other-corp", "receive_id")],
)
async def test_bad_signatures_are_401_and_reach_nothing(start, platform, case, reason):
    client, server = await start()
    query, body = _bad_signature(case)
    resp = await post(client, query, body)
    assert resp.status == 401
    error = await resp.json()
    assert error == {"ok": False, "status": 401, "error": error["error"]} and reason in error["error"]
    assert_nothing_stored(server, platform)


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda: ("msg_signature=a&timestamp=1&nonce=2", b"not xml at all"), "malformed XML"),
        (lambda: ("msg_signature=a&timestamp=1&nonce=2", b"<xml><ToUserName>x</ToUserName></xml>"), "no <Encrypt>"),
        (lambda: ("msg_signature=a&timestamp=1&nonce=2",
                  b'<!DOCTYPE x [<!ENTITY e "boom">]><xml><Encrypt>&e;</Encrypt></xml>'), "DOCTYPE"),
        (lambda: (encrypted(message_xml())[0].replace("&nonce=424242", ""), encrypted(message_xml())[1]),
         "missing nonce"),
        (lambda: _signed_raw("@@not-base64@@"), "not valid base64"),
        (lambda: encrypted("just text, not xml"), "decrypted payload"),
        (lambda: encrypted(message_xml(body="<Content><![CDATA[hi]]></Content>")), "MsgId"),
        (lambda: encrypted(message_xml(agent="1000099")), "AgentID 1000099"),
    ],
    ids=["not-xml", "no-encrypt", "doctype", "no-nonce", "bad-base64", "plaintext-not-xml", "no-msgid",
         "other-agent"],
)
async def test_malformed_callbacks_are_400_with_a_reason(start, platform, make, reason):
    client, server = await start()
    query, body = make()
    resp = await post(client, query, body)
    assert resp.status == 400
    error = await resp.json()
    assert error["ok"] is False and error["status"] == 400 and reason in error["error"]
    assert_nothing_stored(server, platform)


# --- passive replies ----------------------------------------------------------------------------


async def test_passive_reply_travels_encrypted_in_the_response(start, platform):
    client, server = await start(reply="passive")
    query, body = encrypted(message_xml("包邮吗", msg_id="7600"))
    answers = []
    for _ in range(2):  # the second is WeCom's retry: the same reply again, processed once
        resp = await post(client, query, body)
        assert resp.status == 200
        outer = xml_fields(await resp.text())
        assert set(outer) == {"Encrypt", "MsgSignature", "TimeStamp", "Nonce"}
        answers.append(xml_fields(CRYPTO.decrypt(outer["MsgSignature"], outer["TimeStamp"], outer["Nonce"],
                                                 outer["Encrypt"])))
    [decision] = server.store.decisions(f"wecom:{AGENT_ID}:zhangsan")
    expected = "\n".join(r["text"] for r in decision["payload"]["replies"])
    for answer in answers:
        assert answer["ToUserName"] == "zhangsan" and answer["FromUserName"] == CORP_ID
        assert answer["MsgType"] == "text" and answer["Content"] == expected
    assert len(inbound(server, f"{AGENT_ID}:zhangsan")) == 1
    assert platform.to(SEND) == [] and platform.to("/cgi-bin/gettoken") == []


# --- settings -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"encoding_aes_key": "too-short"}, "encoding_aes_key"),
        ({"reply": "sometimes"}, "reply"),
        ({"agentid": 1}, "agentid: unknown setting"),
        ({"secret": "${WECOM_SECRET_NOT_SET}"}, "WECOM_SECRET_NOT_SET"),
    ],
)
def test_bad_settings_fail_at_start_naming_the_key(overrides, message, monkeypatch):
    monkeypatch.delenv("WECOM_SECRET_NOT_SET", raising=False)
    settings = {"type": "wecom", "token": TOKEN, "encoding_aes_key": AES_KEY, "corp_id": CORP_ID,
                "agent_id": AGENT_ID, "secret": SECRET, **overrides}
    with pytest.raises(ConnectorConfigError, match=message):
        build_connectors({"wecom": settings})
