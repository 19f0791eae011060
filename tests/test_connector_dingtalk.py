"""DingTalk robot (HTTP mode), end to end: the real server on a free port, DingTalk faked by a real server.

Requests are built as DingTalk sends them (PROTOCOLS.md, [M]): JSON body, ``timestamp`` (ms) and
``sign`` headers. The fake platform is the ``sessionWebhook`` URL the message carries.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from bot.store import StoredMessage
from bot.web.server import KefuServer
from connectors.crypto import dingtalk as signing
from connectors.dingtalk import DingTalkConnector, SessionWebhookExpired
from connectors.http import Outbound
from tests_support import until

# The self-computed vector of PROTOCOLS.md (NOT an official DingTalk vector; there is none).
VECTOR_SECRET, VECTOR_TS, VECTOR_SIGN = "this is secret", "1577262236757", "hmPWwU+7lVdm3ZZz0r9tSfx0L4Q26jWOZr9+Gs6EZQM="
SECRET = VECTOR_SECRET
NAME = "dingtalk-shop"
PATH = f"/webhook/{NAME}"
CONV = "cidPBc5nLL0Ve6Y0lEGTt8Rqw=="


def now_ms() -> int:
    return int(time.time() * 1000)


# --- the fake DingTalk session webhook -------------------------------------------------------


def errcodes(fake, *codes: int) -> None:
    """The next calls of the session webhook answer these errcodes in turn (then 0 again)."""
    for code in codes:
        fake.answer("POST", "/robot/sendBySession", {"errcode": code, "errmsg": "ok" if code == 0 else "send failed"},
                    times=1)


@pytest.fixture
def dingtalk(fake_platform):
    """The session webhook (`bot.testkit.FakePlatform`): errcode 0 unless `errcodes` says otherwise."""
    return fake_platform.answer("POST", "/robot/sendBySession", {"errcode": 0, "errmsg": "ok"})


@pytest.fixture
def make_server(kefu_app, monkeypatch):
    monkeypatch.setenv("KEFU_DINGTALK_SECRET", SECRET)

    def make(**settings) -> KefuServer:
        return kefu_app(http=Outbound(backoff=0.01),
                        connectors={NAME: {"type": "dingtalk", "app_secret": "${KEFU_DINGTALK_SECRET}", **settings}}).server

    return make


@pytest.fixture
def server(make_server):
    return make_server()


@pytest.fixture
async def client(aiohttp_client, server):
    return await aiohttp_client(server.app())


def message(dingtalk, **overrides) -> dict:
    """A text message as DingTalk posts it (the field set of the receive-message protocol)."""
    body = {
        "conversationId": CONV,
        "atUsers": [{"dingtalkId": "$:LWCP_v1:$bot"}],
        "chatbotCorpId": "dinge8a565xxxx",
        "chatbotUserId": "$:LWCP_v1:$Cxxxxx",
        "msgId": "msgQK0kR5pZ0Kk1QoaLHq6Q==",
        "senderNick": "杨小姐",
        "isAdmin": False,
        "senderStaffId": "user123",
        "sessionWebhookExpiredTime": now_ms() + 90 * 60 * 1000,
        "createAt": now_ms(),
        "senderCorpId": "dinge8a565xxxx",
        "conversationType": "2",
        "senderId": "$:LWCP_v1:$Ff09GIxxxxx",
        "conversationTitle": "小鹿家居售后群",
        "isInAtList": True,
        "sessionWebhook": dingtalk.url("/robot/sendBySession?session=s-42"),
        "text": {"content": " 转人工"},
        "msgtype": "text",
    }
    body.update(overrides)
    return body


def signed(payload, secret=SECRET, timestamp=None) -> tuple[bytes, dict[str, str]]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode("utf-8")
    ts = str(now_ms() if timestamp is None else timestamp)
    return body, {"timestamp": ts, "sign": signing.sign(secret, ts), "Content-Type": "application/json; charset=utf-8"}


async def post(client, payload, **kwargs):
    body, headers = signed(payload, **kwargs)
    return await client.post(PATH, data=body, headers=headers)




def inbound(server, conversation=CONV):
    return [m for m in server.store.recent_messages(f"{NAME}:{conversation}", 50) if m.direction == "in"]


def delivered(server, conversation=CONV):
    decisions = server.store.decisions(f"{NAME}:{conversation}")
    return bool(decisions) and all(d["delivery"] in {"done", "failed"} for d in decisions)


# --- signature: the self-computed vector, then our own signed requests ----------------------


async def test_self_computed_vector_not_official_is_accepted(client, server, dingtalk, monkeypatch):
    assert signing.sign(VECTOR_SECRET, VECTOR_TS) == VECTOR_SIGN  # labelled: not an official vector
    monkeypatch.setattr(server.connectors[NAME], "now_ms", lambda: int(VECTOR_TS) + 1000)
    body = json.dumps(message(dingtalk), ensure_ascii=False).encode()
    resp = await client.post(PATH, data=body, headers={"timestamp": VECTOR_TS, "sign": VECTOR_SIGN,
                                                        "Content-Type": "application/json"})
    assert resp.status == 200
    assert [m.message_id for m in inbound(server)] == ["msgQK0kR5pZ0Kk1QoaLHq6Q=="]


# --- a reply reaches the session webhook ----------------------------------------------------


@pytest.mark.parametrize(
    "overrides, customer",
    [
        ({"conversationType": "2"}, "user123"),  # group @-message: senderStaffId is the customer
        ({"conversationType": "1", "isInAtList": False, "conversationTitle": None}, "user123"),  # single chat
        ({"senderStaffId": None}, "$:LWCP_v1:$Ff09GIxxxxx"),  # no staff id (outside the org): senderId
    ],
)
async def test_reply_is_delivered_to_the_session_webhook(client, server, dingtalk, overrides, customer):
    resp = await post(client, message(dingtalk, **overrides))
    assert resp.status == 200 and await resp.json() == {}
    assert await until(lambda: delivered(server))
    [msg] = inbound(server)
    assert (msg.conversation_id, msg.customer_id, msg.message_id, msg.text) == (f"{NAME}:{CONV}", f"{NAME}:{customer}", "msgQK0kR5pZ0Kk1QoaLHq6Q==", "转人工")
    context = msg.raw["context"]
    assert context["session_webhook"].endswith("/robot/sendBySession?session=s-42")
    assert context["session_webhook_expires_ms"] > now_ms()
    [decision] = server.store.decisions(f"{NAME}:{CONV}")
    assert decision["kind"] == "handoff" and decision["delivery"] == "done"
    replies = [r["text"] for r in decision["payload"]["replies"]]
    assert replies, "a handoff tells the customer a person takes over"
    assert [(c.query.get("session"), c.json) for c in dingtalk.calls] == [
        ("s-42", {"msgtype": "text", "text": {"content": t}}) for t in replies]


async def test_duplicate_delivery_is_answered_once(client, server, dingtalk):
    first = await post(client, message(dingtalk))
    again = await post(client, message(dingtalk))  # DingTalk retries with the same msgId
    assert first.status == again.status == 200
    assert await until(lambda: delivered(server))
    await asyncio.sleep(0.2)  # a second delivery, if any were queued, would land now
    assert len(inbound(server)) == 1
    [decision] = server.store.decisions(f"{NAME}:{CONV}")
    assert len(dingtalk.calls) == len(decision["payload"]["replies"]) >= 1


# --- rejections: 401 and 400, nothing reaches the store -------------------------------------


def stale(ms):
    return lambda body, h: (body, {**h, "timestamp": str(ms()), "sign": signing.sign(SECRET, str(ms()))})


@pytest.mark.parametrize(
    "mutate, reason",
    [
        (lambda b, h: (b, {k: v for k, v in h.items() if k != "sign"}), "missing sign header"),
        (lambda b, h: (b, {**h, "sign": "hmPWwU+7lVdm3ZZz0r9tSfx0L4Q26jWOZr9+Gs6EZQM="}), "does not match"),
        (lambda b, h: (b, {**h, "sign": signing.sign("another app's secret", h["timestamp"])}), "does not match"),
        (lambda b, h: (b, {**h, "timestamp": str(int(h["timestamp"]) + 1)}), "does not match"),  # sign of another ts
        (lambda b, h: (b, {k: v for k, v in h.items() if k != "timestamp"}), "missing timestamp"),
        (lambda b, h: (b, {**h, "timestamp": "yesterday"}), "not a non-negative integer"),
        (stale(lambda: now_ms() - 3_601_000), "ms old"),
        (stale(lambda: now_ms() + 3_601_000), "ms in the future"),
    ],
)
async def test_bad_signature_or_stale_timestamp_is_401(client, server, dingtalk, mutate, reason):
    body, headers = mutate(*signed(message(dingtalk)))
    resp = await client.post(PATH, data=body, headers=headers)
    assert resp.status == 401
    error = await resp.json()
    assert error["ok"] is False and error["status"] == 401 and reason in error["error"]
    if "old" in reason or "future" in reason:
        assert error["error"].startswith("stale or missing timestamp")
    assert inbound(server) == [] and server.store.decisions() == []
    assert dingtalk.calls == []


@pytest.mark.parametrize("age_seconds, status", [(30, 200), (120, 401)])
async def test_max_skew_seconds_is_the_window(aiohttp_client, make_server, dingtalk, age_seconds, status):
    server = make_server(max_skew_seconds=60)
    client = await aiohttp_client(server.app())
    resp = await post(client, message(dingtalk), timestamp=now_ms() - age_seconds * 1000)
    assert resp.status == status
    assert len(inbound(server)) == (1 if status == 200 else 0)


@pytest.mark.parametrize(
    "payload, reason",
    [
        (b"{not json", "body is not JSON"),
        (b"[1, 2]", "body must be a JSON object"),
        ({"text": {"content": "你好"}}, "msgtype must be a non-empty string"),
        ({"msgtype": "text", "text": "你好"}, "text.content must be a string"),
        ("no-msgId", "msgId"),
        ("no-conversationId", "conversationId"),
        ("no-sessionWebhook", "sessionWebhook"),
        ("no-sender", "senderStaffId or senderId"),
        ("expiry-as-text", "sessionWebhookExpiredTime must be an integer"),
    ],
)
async def test_malformed_body_is_400_with_a_reason(client, server, dingtalk, payload, reason):
    if isinstance(payload, str):
        full = message(dingtalk)
        if payload == "no-sender":
            full.pop("senderStaffId"), full.pop("senderId")
        elif payload == "expiry-as-text":
            full["sessionWebhookExpiredTime"] = "tomorrow"
        else:
            full.pop(payload.removeprefix("no-"))
        payload = full
    resp = await post(client, payload)
    assert resp.status == 400
    error = await resp.json()
    assert error == {"ok": False, "error": error["error"], "status": 400} and reason in error["error"]
    assert inbound(server) == [] and server.store.decisions() == []


@pytest.mark.parametrize(
    "overrides",
    [
        {"msgtype": "picture", "content": {"downloadCode": "x", "pictureDownloadCode": "y"}, "text": None},
        {"msgtype": "richText", "content": {"richText": [{"text": "转人工"}]}, "text": None},
        {"msgtype": "audio", "content": {"duration": 4000, "recognition": "转人工"}, "text": None},
        {"text": {"content": "   "}},  # only the @ of the robot: nothing to answer
    ],
)
async def test_other_message_types_are_acknowledged_and_ignored(client, server, dingtalk, overrides):
    resp = await post(client, message(dingtalk, **overrides))
    assert resp.status == 200 and await resp.json() == {}
    await asyncio.sleep(0.1)
    assert inbound(server) == [] and server.store.decisions() == []
    assert dingtalk.calls == []


# --- delivery failures ------------------------------------------------------------------------


async def test_expired_session_webhook_fails_the_delivery_without_a_call(client, server, dingtalk, caplog):
    resp = await post(client, message(dingtalk, sessionWebhookExpiredTime=now_ms() - 1000))
    assert resp.status == 200  # accepted: the message is kept, only the reply cannot go out
    assert await until(lambda: delivered(server))
    [decision] = server.store.decisions(f"{NAME}:{CONV}")
    assert decision["delivery"] == "failed"
    assert dingtalk.calls == []
    assert "session webhook of message msgQK0kR5pZ0Kk1QoaLHq6Q== expired" in caplog.text


async def test_webhook_errcode_fails_the_delivery(client, server, dingtalk):
    errcodes(dingtalk, *[310000] * 10)
    await post(client, message(dingtalk))
    assert await until(lambda: delivered(server))
    assert server.store.decisions(f"{NAME}:{CONV}")[0]["delivery"] == "failed"
    assert len(dingtalk.calls) == 3  # one call per delivery attempt of the server


async def test_a_retried_delivery_does_not_resend_replies_already_sent(dingtalk):
    http = Outbound(backoff=0.01)
    connector = DingTalkConnector("dt", DingTalkConnector.Settings(app_secret=SECRET), http)
    context = {"session_webhook": message(dingtalk)["sessionWebhook"], "session_webhook_expires_ms": now_ms() + 60_000}
    stored = StoredMessage(1, CONV, "in", "在吗", None, "dt", "m-1", True, "user123", {"context": context})
    decision = {"id": 7, "payload": {"replies": [{"id": "a", "text": "第一句"}, {"id": "b", "text": "第二句"}]}}
    errcodes(dingtalk, 0, 310000)  # the second reply fails once
    with pytest.raises(RuntimeError, match="errcode 310000"):
        await connector.deliver(stored, decision)
    await connector.deliver(stored, decision)  # the server's retry
    await http.close()
    assert [c.json["text"]["content"] for c in dingtalk.calls] == ["第一句", "第二句", "第二句"]


async def test_deliver_refuses_an_expired_webhook_directly(dingtalk):
    connector = DingTalkConnector("dt", DingTalkConnector.Settings(app_secret=SECRET), Outbound())
    context = {"session_webhook": message(dingtalk)["sessionWebhook"], "session_webhook_expires_ms": now_ms() - 1}
    stored = StoredMessage(1, CONV, "in", "在吗", None, "dt", "m-1", True, "user123", {"context": context})
    with pytest.raises(SessionWebhookExpired, match="sessionWebhookExpiredTime"):
        await connector.deliver(stored, {"id": 1, "payload": {"replies": [{"id": "a", "text": "x"}]}})
    assert dingtalk.calls == []
