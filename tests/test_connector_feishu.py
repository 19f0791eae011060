"""Feishu / Lark events v2, end to end: the real server on a free port, Feishu's API faked by a real server.

Events are built as Feishu sends them (PROTOCOLS.md): the v2 event JSON, encrypted into
``{"encrypt": …}`` with `connectors.crypto.feishu.encrypt`, signed with X-Lark-Signature over the
raw body. url_verification comes unsigned, as Feishu sends it. The fake platform serves the
tenant_access_token and reply endpoints.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time

import pytest
from aiohttp.test_utils import make_mocked_request

from bot.testkit import FakePlatform
from connectors.base import Rejected
from connectors.crypto import feishu as crypto
from connectors.feishu import UNSIGNED, FeishuConnector
from connectors.http import Outbound
from tests_support import until

# Official vector (PROTOCOLS.md, from larksuite/oapi-sdk-python).
VECTOR_KEY, VECTOR_ENCRYPT, VECTOR_PLAIN = "test key", "P37w+VZImNgPEO1RBhJ6RtKl7n6zymIbEG1pReEzghk=", "hello world"

KEY = "kefu-test-encrypt-key-0123456789"
TOKEN = "kefu-test-verification-token"
APP_ID, APP_SECRET = "cli_a1b2c3d4e5f6a7b8", "kefu-test-app-secret"
NAME = "feishu-shop"
PATH = f"/webhook/{NAME}"
CHAT = "oc_5ad11d72b830411d72b836c20"


# --- the fake Feishu open platform ----------------------------------------------------------


TOKEN_PATH, REPLY_PATH = "/open-apis/auth/v3/tenant_access_token/internal", "/open-apis/im/v1/messages/{message_id}/reply"


def _bearer(call) -> str:
    return call.headers.get("Authorization", "").removeprefix("Bearer ")


class FakeFeishu(FakePlatform):
    """Feishu's token and reply APIs on `bot.testkit.FakePlatform`, answering as Feishu does."""

    def __init__(self):
        super().__init__()
        self.refused_tokens: set[str] = set()
        self.refusal = (200, 99991663)  # HTTP status and code answered to a refused token
        self.fail_code: int | None = None
        self.answer("POST", TOKEN_PATH, self._token)
        self.answer("POST", REPLY_PATH, self._reply)

    @property
    def token_calls(self) -> list[dict]:
        return [c.json for c in self.calls_to(TOKEN_PATH)]

    @property
    def replies(self) -> list[dict]:
        return [{"message_id": c.match["message_id"], "token": _bearer(c), "body": c.json}
                for c in self.calls_to(REPLY_PATH)]

    def _token(self, call):
        if call.json != {"app_id": APP_ID, "app_secret": APP_SECRET}:
            return 400, {"code": 10014, "msg": "app secret invalid"}
        return {"code": 0, "msg": "ok", "tenant_access_token": f"t-{len(self.token_calls)}", "expire": 7200}

    def _reply(self, call):
        if _bearer(call) in self.refused_tokens:
            status, code = self.refusal
            return status, {"code": code, "msg": "Invalid access token for authorization."}
        if self.fail_code is not None:
            return 400, {"code": self.fail_code, "msg": "The message was withdrawn."}
        return {"code": 0, "msg": "success", "data": {"message_id": "om_reply"}}


@pytest.fixture
async def feishu(aiohttp_server):
    return await FakeFeishu().start(aiohttp_server)


@pytest.fixture
def server(kefu_app, monkeypatch, feishu):
    monkeypatch.setenv("KEFU_FEISHU_ENCRYPT_KEY", KEY)
    monkeypatch.setenv("KEFU_FEISHU_TOKEN", TOKEN)
    monkeypatch.setenv("KEFU_FEISHU_APP_ID", APP_ID)
    monkeypatch.setenv("KEFU_FEISHU_APP_SECRET", APP_SECRET)
    return kefu_app(http=Outbound(backoff=0.01), connectors={NAME: {
        "type": "feishu", "encrypt_key": "${KEFU_FEISHU_ENCRYPT_KEY}", "verification_token": "${KEFU_FEISHU_TOKEN}",
        "app_id": "${KEFU_FEISHU_APP_ID}", "app_secret": "${KEFU_FEISHU_APP_SECRET}",
        "api_base": feishu.url(),
    }}).server


@pytest.fixture
async def client(aiohttp_client, server):
    return await aiohttp_client(server.app())


def event(text="@_user_1 转人工", *, event_id="5e3702a84e847582be8db7fb73283c02", message_id="om_5ce6d572455d361153b7cb51da133945",
          chat_id=CHAT, chat_type="group", sender_type="user", message_type="text", event_type="im.message.receive_v1",
          content=None, token=TOKEN) -> dict:
    """An im.message.receive_v1 event as Feishu sends it (before encryption)."""
    now = str(int(time.time() * 1000))
    return {
        "schema": "2.0",
        "header": {"event_id": event_id, "token": token, "create_time": now, "event_type": event_type,
                   "tenant_key": "2ca1d211f64f6438", "app_id": APP_ID},
        "event": {
            "sender": {"sender_id": {"union_id": "on_8ed6aa67826108097d9ee143816345", "user_id": "e33ggbyz",
                                     "open_id": "ou_84aad35d084aa403a838cf73ee18467"},
                       "sender_type": sender_type, "tenant_key": "2ca1d211f64f6438"},
            "message": {"message_id": message_id, "root_id": "", "parent_id": "", "create_time": now,
                        "update_time": now, "chat_id": chat_id, "chat_type": chat_type, "message_type": message_type,
                        "content": json.dumps({"text": text}, ensure_ascii=False) if content is None else content,
                        "mentions": [{"key": "@_user_1", "id": {"union_id": "on_bot", "user_id": "", "open_id": "ou_bot"},
                                      "name": "小鹿客服", "tenant_key": "2ca1d211f64f6438"}],
                        "user_agent": "Mozilla/5.0 Lark/7.1.0"},
        },
    }


def encrypted(payload, key=KEY) -> bytes:
    plain = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return json.dumps({"encrypt": crypto.encrypt(key, plain)}).encode()


def sign(body: bytes, key=KEY) -> dict[str, str]:
    ts, nonce = str(int(time.time())), secrets.token_hex(8)
    return {crypto.TIMESTAMP_HEADER: ts, crypto.NONCE_HEADER: nonce,
            crypto.SIGNATURE_HEADER: crypto.signature(ts, nonce, key, body), "Content-Type": "application/json"}


async def post(client, payload, *, raw: bytes | None = None):
    body = raw if raw is not None else encrypted(payload)
    return await client.post(PATH, data=body, headers=sign(body))




def inbound(server, conversation=CHAT):
    return [m for m in server.store.recent_messages(f"{NAME}:{conversation}", 50) if m.direction == "in"]


def settled(server, conversation=CHAT):
    decisions = server.store.decisions(f"{NAME}:{conversation}")
    return bool(decisions) and all(d["delivery"] in {"done", "failed"} for d in decisions)


# --- unit level: the official vector through the connector ------------------------------------


def vector_connector():
    return FeishuConnector("fs", FeishuConnector.Settings(encrypt_key=VECTOR_KEY, verification_token=TOKEN,
                                                          app_id=APP_ID, app_secret=APP_SECRET))


async def test_official_vector_decrypts_inside_the_connector():
    assert crypto.decrypt(VECTOR_KEY, VECTOR_ENCRYPT) == VECTOR_PLAIN
    body = json.dumps({"encrypt": VECTOR_ENCRYPT}).encode()
    request = make_mocked_request("POST", "/webhook/fs", headers=sign(body, VECTOR_KEY))
    with pytest.raises(Rejected) as caught:
        await vector_connector().parse(request, body)
    # decrypted for real to "hello world", which is not an event
    assert (caught.value.status, caught.value.reason) == (400, "encrypt field: decrypted text is not JSON: Expecting value at line 1 column 1")


async def test_official_vector_unsigned_is_401_without_saying_why():
    body = json.dumps({"encrypt": VECTOR_ENCRYPT}).encode()
    with pytest.raises(Rejected) as caught:
        await vector_connector().parse(make_mocked_request("POST", "/webhook/fs"), body)
    assert (caught.value.status, caught.value.reason) == (401, UNSIGNED)


# --- url_verification -------------------------------------------------------------------------


@pytest.mark.parametrize("signed", [False, True])  # Feishu sends it unsigned; a signed one is checked too
async def test_url_verification_answers_the_challenge_fast(client, server, signed):
    body = encrypted({"challenge": "ajls384kdjx98XX", "token": TOKEN, "type": "url_verification"})
    started = time.perf_counter()
    resp = await client.post(PATH, data=body, headers=sign(body) if signed else {"Content-Type": "application/json"})
    assert time.perf_counter() - started < 1.0  # Feishu allows 1 s for this answer
    assert resp.status == 200
    assert await resp.json() == {"challenge": "ajls384kdjx98XX"}
    assert server.store.decisions() == []


@pytest.mark.parametrize(
    "build, status, reason",
    [
        (lambda: encrypted({"challenge": "c", "token": "wrong-token", "type": "url_verification"}), 401,
         "url_verification: verification token does not match"),
        (lambda: encrypted({"challenge": "c", "type": "url_verification"}), 401, "url_verification: missing verification token"),
        (lambda: encrypted({"challenge": "c", "token": TOKEN, "type": "url_verification"}, key="another app's key"), 401, UNSIGNED),
        (lambda: encrypted({"token": TOKEN, "type": "url_verification"}), 400, "challenge must be a non-empty string"),
        (lambda: json.dumps({"challenge": "c", "token": TOKEN, "type": "url_verification"}).encode(), 400,
         "body has no encrypt field"),  # an app without Encrypt Key: kefu requires one
    ],
)
async def test_bad_url_verification(client, build, status, reason):
    resp = await client.post(PATH, data=build(), headers={"Content-Type": "application/json"})
    assert resp.status == status
    error = await resp.json()
    assert error["ok"] is False and error["status"] == status and reason in error["error"]
    assert "challenge" not in error


# --- a reply reaches the reply API -----------------------------------------------------------


@pytest.mark.parametrize("chat_type, text", [("group", "@_user_1 转人工"), ("p2p", "转人工")])
async def test_reply_is_delivered_through_the_reply_api(client, server, feishu, chat_type, text):
    resp = await post(client, event(text, chat_type=chat_type))
    assert resp.status == 200 and await resp.json() == {"msg": "success"}
    assert await until(lambda: settled(server))
    [msg] = inbound(server)
    assert (msg.conversation_id, msg.customer_id, msg.message_id, msg.text) == (
        f"{NAME}:{CHAT}", f"{NAME}:ou_84aad35d084aa403a838cf73ee18467", "5e3702a84e847582be8db7fb73283c02", "转人工")
    assert msg.raw["context"]["message_id"] == "om_5ce6d572455d361153b7cb51da133945"
    [decision] = server.store.decisions(f"{NAME}:{CHAT}")
    assert decision["kind"] == "handoff" and decision["delivery"] == "done"
    texts = [r["text"] for r in decision["payload"]["replies"]]
    assert texts
    assert feishu.token_calls == [{"app_id": APP_ID, "app_secret": APP_SECRET}]
    assert [r["message_id"] for r in feishu.replies] == ["om_5ce6d572455d361153b7cb51da133945"] * len(texts)
    assert all(r["token"] == "t-1" for r in feishu.replies)
    bodies = [r["body"] for r in feishu.replies]
    assert [{k: v for k, v in b.items() if k != "uuid"} for b in bodies] == [
        {"msg_type": "text", "content": json.dumps({"text": t}, ensure_ascii=False)} for t in texts]
    assert all(0 < len(b["uuid"]) <= 50 for b in bodies)
    assert json.loads(bodies[0]["content"]) == {"text": texts[0]}


async def test_the_token_is_fetched_once_and_reused(client, server, feishu):
    for n in range(2):
        resp = await post(client, event(event_id=f"ev-{n}", message_id=f"om_{n}", chat_id=f"oc_{n}"))
        assert resp.status == 200
    assert await until(lambda: settled(server, "oc_0") and settled(server, "oc_1"))
    assert len(feishu.token_calls) == 1
    assert {r["message_id"] for r in feishu.replies} == {"om_0", "om_1"}
    assert {r["token"] for r in feishu.replies} == {"t-1"}


@pytest.mark.parametrize("status, code", [(200, 99991663), (400, 99991663), (400, 99991661)])
async def test_refused_token_is_fetched_again_once(client, server, feishu, status, code):
    feishu.refused_tokens, feishu.refusal = {"t-1"}, (status, code)
    await post(client, event())
    assert await until(lambda: settled(server))
    assert server.store.decisions(f"{NAME}:{CHAT}")[0]["delivery"] == "done"
    assert len(feishu.token_calls) == 2
    assert [r["token"] for r in feishu.replies][:2] == ["t-1", "t-2"]
    assert feishu.replies[0]["body"]["uuid"] == feishu.replies[1]["body"]["uuid"]  # the same reply, retried


async def test_a_token_refused_again_fails_the_delivery_without_looping(client, server, feishu):
    feishu.refused_tokens = {f"t-{n}" for n in range(1, 20)}
    await post(client, event())
    assert await until(lambda: settled(server))
    assert server.store.decisions(f"{NAME}:{CHAT}")[0]["delivery"] == "failed"
    assert len(feishu.replies) == 2 * 3  # one retry with a fresh token per delivery attempt (3)


async def test_reply_error_code_fails_the_delivery(client, server, feishu, caplog):
    feishu.fail_code = 230011
    await post(client, event())
    assert await until(lambda: settled(server))
    assert server.store.decisions(f"{NAME}:{CHAT}")[0]["delivery"] == "failed"
    assert len(feishu.token_calls) == 1


async def test_duplicate_event_is_answered_once(client, server, feishu):
    body = encrypted(event())
    first = await client.post(PATH, data=body, headers=sign(body))
    again = await client.post(PATH, data=body, headers=sign(body))  # Feishu pushes again: same event_id
    assert first.status == again.status == 200
    assert await until(lambda: settled(server))
    await asyncio.sleep(0.2)  # a second delivery, if any were queued, would land now
    assert len(inbound(server)) == 1
    [decision] = server.store.decisions(f"{NAME}:{CHAT}")
    assert len(feishu.replies) == len(decision["payload"]["replies"]) >= 1


# --- rejections -------------------------------------------------------------------------------


def _signed(body: bytes) -> tuple[bytes, dict[str, str]]:
    return body, sign(body)


def _without(header):
    return lambda body, h: (body, {k: v for k, v in h.items() if k != header})


@pytest.mark.parametrize(
    "mutate, reason",
    [
        (_without(crypto.SIGNATURE_HEADER), UNSIGNED),  # an event never comes unsigned
        (_without(crypto.TIMESTAMP_HEADER), "missing X-Lark-Request-Timestamp header"),
        (_without(crypto.NONCE_HEADER), "missing X-Lark-Request-Nonce header"),
        (lambda b, h: (b, {**h, crypto.SIGNATURE_HEADER: "0" * 64}), "does not match"),
        (lambda b, h: (b, sign(b, key="another app's key")), "does not match"),
        (lambda b, h: (b.replace(b'"}', b'" }'), h), "does not match"),  # body changed after signing
        (lambda b, h: _signed(encrypted(event(token="wrong-token"))), "header.token: verification token does not match"),
    ],
)
async def test_bad_signature_is_401(client, server, feishu, mutate, reason):
    body, headers = mutate(*_signed(encrypted(event())))
    resp = await client.post(PATH, data=body, headers=headers)
    assert resp.status == 401
    error = await resp.json()
    assert error["ok"] is False and error["status"] == 401 and reason in error["error"]
    await asyncio.sleep(0.05)
    assert inbound(server) == [] and server.store.decisions() == []
    assert feishu.replies == [] and feishu.token_calls == []


@pytest.mark.parametrize(
    "raw, reason",
    [
        (b"{not json", "body is not JSON"),
        (b"[]", "body must be a JSON object"),
        (json.dumps(event()).encode(), "body has no encrypt field"),  # a plain event
        (b'{"encrypt": "not base64!"}', "encrypt is not valid base64"),
        (lambda: encrypted("hello"), "decrypted text is not JSON"),
        (lambda: encrypted("[1]"), "decrypted event must be a JSON object"),
        (lambda: encrypted({**event(), "header": "h"}), "header must be an object"),
        (lambda: encrypted({**event(), "event": {"message": {}}}), "event.sender and event.message must be objects"),
        (lambda: encrypted(event(event_id="")), "header.event_id"),
        (lambda: encrypted(event(chat_id="")), "event.message.chat_id"),
        (lambda: encrypted(event(content="{text")), "event.message.content is not JSON"),
        (lambda: encrypted(event(content='{"image_key": "img_1"}')), 'content must be a JSON object {"text"'),
    ],
)
async def test_malformed_body_is_400_with_a_reason(client, server, feishu, raw, reason):
    resp = await post(client, None, raw=raw() if callable(raw) else raw)
    assert resp.status == 400
    error = await resp.json()
    assert error == {"ok": False, "error": error["error"], "status": 400} and reason in error["error"]
    assert inbound(server) == [] and server.store.decisions() == []


@pytest.mark.parametrize(
    "payload",
    [
        event(sender_type="app"),  # the bot's own (or another bot's) message
        event(message_type="image", content='{"image_key": "img_v2_041b28e3"}'),
        event(event_type="im.chat.member.bot.added_v1"),
        event(event_type="im.message.message_read_v1"),
        event("@_user_1"),  # only the mention: nothing to answer
        {"uuid": "41b5f371157e3c0ab0d8a8a9d3a3b0b1", "token": TOKEN, "ts": "1700000000.0",
         "type": "event_callback", "event": {"type": "message"}},  # a v1 event
    ],
)
async def test_other_events_are_acknowledged_and_ignored(client, server, feishu, payload):
    resp = await post(client, payload)
    assert resp.status == 200 and await resp.json() == {"msg": "success"}
    await asyncio.sleep(0.1)
    assert inbound(server) == [] and server.store.decisions() == []
    assert feishu.replies == [] and feishu.token_calls == []


@pytest.mark.parametrize(
    "text, expected",
    [
        ("@_user_1 转人工", "转人工"),
        ("转人工 @_user_1", "转人工"),
        ("@_user_10 @_user_1  能便宜点吗", "能便宜点吗"),
        ("@_all 包邮吗？", "包邮吗？"),
    ],
)
async def test_mentions_are_stripped(client, server, text, expected):
    resp = await post(client, event(text))
    assert resp.status == 200
    assert [m.text for m in inbound(server)] == [expected]
