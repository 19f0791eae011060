"""The 微信客服 (WeCom KF) connector against the real server, WeCom faked by a real server.

The callback only says "pull": kefu pulls with kf/sync_msg (paging on has_more), answers each
customer text with kf/send_msg, hands off with kf/service_state/trans, and keeps its cursor in
a file so that a restart neither re-reads nor skips messages.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web

from bot.app import build
from bot.store import SqliteStore, StoredMessage
from bot.web.server import KefuServer
from connectors.crypto.wecom import WeComCrypto
from connectors.http import Outbound
from connectors.registry import ConnectorConfigError, build_connectors
from connectors.wecom_kf import KfState, reply_msgid
from tests_support import until

# Official crypto vectors (PROTOCOLS.md): the KF callback uses the same WXBizMsgCrypt.
TOKEN = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo"
AES_KEY = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"
CORP_ID = "ww1436e0e65a779aee"
URL_SIG, URL_TS, URL_NONCE = "012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb", "1476416373", "47744683"
ECHOSTR = "fsi1xnbH4yQh0%2BPJxcOdhhK6TDXkjMyhEPA7xB2TGz6b%2Bg7xyAbEkRxN%2F3cNXW9qdqjnoVzEtpbhnFyq6SVHyA%3D%3D"

SECRET = "kf-secret-for-tests"
KFID = "wkAJ2GCAAAZSfhHCt7IFSvLKtMPxyJTw"
CALLBACK_TOKEN = "ENCApHxnGDNAVNY4AaSJKj4Tb5mwsEMzxhFmHVGcra996NR"
CRYPTO = WeComCrypto(TOKEN, AES_KEY, CORP_ID)
SYNC, SEND, TRANS = "/cgi-bin/kf/sync_msg", "/cgi-bin/kf/send_msg", "/cgi-bin/kf/service_state/trans"


@dataclass
class Call:
    path: str
    query: dict[str, str]
    json: Any


class FakeKf:
    """qyapi.weixin.qq.com's KF API as a real aiohttp server; every call is recorded."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.issued = 0
        self.messages: dict[str, list[dict[str, Any]]] = {}  # open_kfid → msg_list, oldest first
        self.page_size = 1000  # sync_msg may answer fewer than `limit` items (doc 94670)
        self.sync_errors: list[int] = []
        self.send_errors: list[int | None] = []  # per send_msg call: an errcode, or None for success
        self.sync_delays: list[float] = []  # per sync_msg call, seconds before answering
        self.next_cursor: Any = None  # answer this next_cursor instead of the real one

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/cgi-bin/gettoken", self.gettoken)
        app.router.add_post(SYNC, self.sync_msg)
        app.router.add_post(SEND, self.send_msg)
        app.router.add_post(TRANS, self.trans)
        return app

    async def gettoken(self, request: web.Request) -> web.Response:
        self.calls.append(Call(request.path, dict(request.query), None))
        if request.query.get("corpid") != CORP_ID or request.query.get("corpsecret") != SECRET:
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
        self.issued += 1
        return web.json_response({"errcode": 0, "errmsg": "ok", "access_token": f"TOKEN-{self.issued}",
                                  "expires_in": 7200})

    async def _record(self, request: web.Request) -> tuple[dict[str, Any], web.Response | None]:
        body = await request.json()
        self.calls.append(Call(request.path, dict(request.query), body))
        if request.query.get("access_token") != f"TOKEN-{self.issued}":
            return body, web.json_response({"errcode": 40014, "errmsg": "invalid access_token"})
        return body, None

    async def sync_msg(self, request: web.Request) -> web.Response:
        body, refused = await self._record(request)
        if self.sync_delays:
            await asyncio.sleep(self.sync_delays.pop(0))
        if refused:
            return refused
        if self.sync_errors:
            return web.json_response({"errcode": self.sync_errors.pop(0), "errmsg": "system busy"})
        items = self.messages.get(body["open_kfid"], [])
        cursor = body.get("cursor", "")
        start = int(cursor.removeprefix("cur-")) if cursor else 0
        page = items[start:start + min(body.get("limit", 1000), self.page_size)]
        end = start + len(page)
        cursor = f"cur-{end}" if self.next_cursor is None else self.next_cursor
        return web.json_response({"errcode": 0, "errmsg": "ok", "next_cursor": cursor,
                                  "has_more": int(end < len(items)), "msg_list": page})

    async def send_msg(self, request: web.Request) -> web.Response:
        body, refused = await self._record(request)
        if refused:
            return refused
        errcode = self.send_errors.pop(0) if self.send_errors else None
        if errcode is not None:
            return web.json_response({"errcode": errcode, "errmsg": "system busy"})
        return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": body.get("msgid")})

    async def trans(self, request: web.Request) -> web.Response:
        _, refused = await self._record(request)
        return refused or web.json_response({"errcode": 0, "errmsg": "ok"})

    def to(self, path: str) -> list[Call]:
        return [c for c in self.calls if c.path == path]


def customer_text(msgid: str, text: str, user: str = "wmUser1", *, origin: int = 3) -> dict[str, Any]:
    """A msg_list item as sync_msg returns it (origin 3 customer, 5 agent)."""
    item = {"msgid": msgid, "open_kfid": KFID, "external_userid": user, "send_time": 1700000000,
            "origin": origin, "msgtype": "text", "text": {"content": text}}
    if origin == 5:
        item["servicer_userid"] = "zhangsan"
    return item


ENTER_SESSION = {"msgid": "ev-1", "send_time": 1700000000, "origin": 4, "msgtype": "event",
                 "event": {"event_type": "enter_session", "open_kfid": KFID, "external_userid": "wmUser3",
                           "scene": "", "welcome_code": "aaaa"}}
IMAGE = {"msgid": "img-1", "open_kfid": KFID, "external_userid": "wmUser4", "send_time": 1700000000, "origin": 3,
         "msgtype": "image", "image": {"media_id": "media-1"}}


@pytest.fixture
async def platform(aiohttp_server) -> FakeKf:
    fake = FakeKf()
    server = await aiohttp_server(fake.app())
    fake.base = str(server.make_url("/"))
    return fake


class Running:
    def __init__(self, client, server: KefuServer, store: SqliteStore):
        self.client, self.server, self.store = client, server, store
        self.connector = server.connectors["kf"]

    async def stop(self) -> None:
        await self.client.close()  # drains the worker, as on SIGTERM
        self.connector.state.close()
        self.store.close()


@pytest.fixture
async def start(engine, tmp_path, platform, monkeypatch, aiohttp_client):
    """Start kefu with one `wecom_kf` connector named "kf"; start again to simulate a restart."""
    for var, value in {"KF_TOKEN": TOKEN, "KF_AES_KEY": AES_KEY, "KF_CORP_ID": CORP_ID, "KF_SECRET": SECRET}.items():
        monkeypatch.setenv(var, value)
    running: list[Running] = []

    async def _start(**overrides) -> Running:
        store = SqliteStore(tmp_path / "kefu.sqlite")
        http = Outbound(timeout=5.0, retries=1, backoff=0.05)
        settings = {"type": "wecom_kf", "token": "${KF_TOKEN}", "encoding_aes_key": "${KF_AES_KEY}",
                    "corp_id": "${KF_CORP_ID}", "secret": "${KF_SECRET}", "api_base": platform.base,
                    "cursor_path": str(tmp_path / "wecom-kf.sqlite"), **overrides}
        server = build(engine.config, engine=engine, store=store, http=http, connectors={"kf": settings}).server
        run = Running(await aiohttp_client(server.app()), server, store)
        running.append(run)
        return run

    yield _start
    for run in running:
        if not run.client._closed:
            await run.stop()


def callback(open_kfid: str = KFID, *, event: str = "kf_msg_or_event", crypto: WeComCrypto = CRYPTO,
             nonce: str = "1597212914", timestamp: str = "1700000000", plaintext: str | None = None) -> tuple[str, bytes]:
    """(query, body) of the KF callback, encrypted and signed as WeCom does (doc 94670)."""
    if plaintext is None:
        plaintext = (f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><CreateTime>{timestamp}</CreateTime>"
                     f"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event>"
                     f"<Token><![CDATA[{CALLBACK_TOKEN}]]></Token><OpenKfId><![CDATA[{open_kfid}]]></OpenKfId></xml>")
    parts = crypto.encrypt(plaintext, nonce, timestamp)
    body = f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><Encrypt><![CDATA[{parts['Encrypt']}]]></Encrypt></xml>"
    return f"msg_signature={parts['MsgSignature']}&timestamp={timestamp}&nonce={nonce}", body.encode()


async def post(run: Running, query: str, body: bytes):
    return await run.client.post(f"/webhook/kf?{query}", data=body, headers={"Content-Type": "text/xml"})




async def delivered(run: Running, conversation: str, count: int = 1) -> list[dict[str, Any]]:
    def done():
        decisions = run.store.decisions(f"kf:{conversation}")
        finished = [d for d in decisions if d["delivery"] in {"done", "failed"}]
        return decisions if len(decisions) >= count and len(finished) == len(decisions) else None
    decisions = await until(done)
    assert [d["delivery"] for d in decisions] == ["done"] * len(decisions)
    return decisions


def inbound(run: Running, conversation: str):
    return [m for m in run.store.recent_messages(f"kf:{conversation}", 50) if m.direction == "in"]


def sent_texts(platform: FakeKf, user: str) -> list[str]:
    return [c.json["text"]["content"] for c in platform.to(SEND) if c.json["touser"] == user]


def saved_cursor(tmp_path) -> str:
    state = KfState(tmp_path / "wecom-kf.sqlite")
    try:
        return state.cursor(KFID)
    finally:
        state.close()


# --- URL verification ---------------------------------------------------------------------------


async def test_url_verification_answers_the_official_vector(start):
    run = await start()
    resp = await run.client.get(f"/webhook/kf?msg_signature={URL_SIG}&timestamp={URL_TS}&nonce={URL_NONCE}"
                                f"&echostr={ECHOSTR}")
    assert resp.status == 200 and await resp.read() == b"1288432023552776189"


# --- pulling ------------------------------------------------------------------------------------


async def test_callback_pulls_every_page_and_answers_each_customer_text(start, platform, tmp_path):
    platform.page_size = 2
    platform.messages[KFID] = [
        customer_text("msg-a", "包邮吗", "wmUser1"),
        customer_text("msg-agent", "我是客服小张", "wmUser1", origin=5),  # an agent's own message
        ENTER_SESSION,  # a system event
        IMAGE,  # a customer image: not text
        customer_text("msg-b", "发什么快递", "wmUser2"),
    ]
    run = await start()
    resp = await post(run, *callback())
    assert resp.status == 200 and await resp.read() == b""

    syncs = platform.to(SYNC)
    assert [c.json for c in syncs] == [
        {"limit": 1000, "open_kfid": KFID, "token": CALLBACK_TOKEN},
        {"limit": 1000, "open_kfid": KFID, "token": CALLBACK_TOKEN, "cursor": "cur-2"},
        {"limit": 1000, "open_kfid": KFID, "token": CALLBACK_TOKEN, "cursor": "cur-4"},
    ]
    assert {c.query["access_token"] for c in syncs} == {"TOKEN-1"}
    assert saved_cursor(tmp_path) == "cur-5"

    [a] = inbound(run, f"{KFID}:wmUser1")  # the agent's message is not a customer message
    assert (a.platform, a.message_id, a.customer_id, a.text) == ("kf", "msg-a", "kf:wmUser1", "包邮吗")
    assert [m.text for m in inbound(run, f"{KFID}:wmUser2")] == ["发什么快递"]
    assert inbound(run, f"{KFID}:wmUser3") == [] and inbound(run, f"{KFID}:wmUser4") == []

    for user in ("wmUser1", "wmUser2"):
        [decision] = await delivered(run, f"{KFID}:{user}")
        replies = [r["text"] for r in decision["payload"]["replies"]]
        assert replies and sent_texts(platform, user) == replies
    sends = platform.to(SEND)
    for call in sends:
        assert set(call.json) == {"touser", "open_kfid", "msgid", "msgtype", "text"}
        assert call.json["open_kfid"] == KFID and call.json["msgtype"] == "text"
        assert re.fullmatch(r"[0-9a-zA-Z_-]{1,32}", call.json["msgid"])
    assert len({c.json["msgid"] for c in sends}) == len(sends)


async def test_the_cursor_survives_a_restart(start, platform, tmp_path):
    platform.messages[KFID] = [customer_text("msg-1", "包邮吗")]
    first = await start()
    assert (await post(first, *callback())).status == 200
    await delivered(first, f"{KFID}:wmUser1")
    answered = len(platform.to(SEND))
    await first.stop()
    assert saved_cursor(tmp_path) == "cur-1"

    platform.messages[KFID].append(customer_text("msg-2", "发什么快递"))
    second = await start()  # a new process: nothing in memory, the same files
    assert (await post(second, *callback(nonce="2"))).status == 200
    assert platform.to(SYNC)[-1].json["cursor"] == "cur-1"  # pulled from the saved cursor
    assert [m.message_id for m in inbound(second, f"{KFID}:wmUser1")] == ["msg-1", "msg-2"]
    decisions = await delivered(second, f"{KFID}:wmUser1", count=2)
    assert [d["message_row"] for d in decisions] == [m.id for m in inbound(second, f"{KFID}:wmUser1")]
    assert len(platform.to(SEND)) == answered + len(decisions[1]["payload"]["replies"])  # msg-1 not again
    assert saved_cursor(tmp_path) == "cur-2"


async def test_a_message_pulled_twice_is_answered_once(start, platform, tmp_path):
    platform.messages[KFID] = [customer_text("msg-1", "包邮吗")]
    run = await start()
    # WeCom's retry racing the first callback: both pull, the msgid dedupe keeps one
    first, second = await asyncio.gather(post(run, *callback()), post(run, *callback(nonce="2")))
    assert first.status == second.status == 200
    [decision] = await delivered(run, f"{KFID}:wmUser1")
    # a crash after the messages were stored but before the cursor was committed: read again
    run.connector.state.set_cursor(KFID, "")
    assert (await post(run, *callback(nonce="3"))).status == 200
    assert "cursor" not in platform.to(SYNC)[-1].json
    await asyncio.sleep(0.3)
    assert len(inbound(run, f"{KFID}:wmUser1")) == 1
    assert len(run.store.decisions(f"kf:{KFID}:wmUser1")) == 1
    assert sent_texts(platform, "wmUser1") == [r["text"] for r in decision["payload"]["replies"]]
    assert saved_cursor(tmp_path) == "cur-1"


@pytest.mark.parametrize(
    "errors, status",
    [([-1], 503), ([42001], 200)],  # system busy: answer 503, keep the cursor · expired token: refresh, go on
)
async def test_sync_msg_failures(start, platform, tmp_path, errors, status):
    platform.messages[KFID] = [customer_text("msg-1", "在吗")]
    run = await start()
    platform.sync_errors = list(errors)
    resp = await post(run, *callback())
    assert resp.status == status
    if status == 503:
        error = await resp.json()
        assert error["ok"] is False and error["status"] == 503 and "kf/sync_msg failed" in error["error"]
        assert saved_cursor(tmp_path) == "" and inbound(run, f"{KFID}:wmUser1") == []
        assert (await post(run, *callback(nonce="2"))).status == 200  # the next callback catches up
    else:
        assert len(platform.to("/cgi-bin/gettoken")) == 2
    assert [m.message_id for m in inbound(run, f"{KFID}:wmUser1")] == ["msg-1"]
    assert saved_cursor(tmp_path) == "cur-1"


async def test_a_slow_platform_never_holds_the_callback_past_the_budget(start, platform, tmp_path):
    platform.page_size = 1
    platform.messages[KFID] = [customer_text("msg-1", "包邮吗"), customer_text("msg-2", "发什么快递")]
    platform.sync_delays = [0.0, 3.0]  # the second page hangs
    run = await start(pull_seconds=0.6)
    started = time.monotonic()
    resp = await post(run, *callback())
    assert resp.status == 200 and time.monotonic() - started < 2.0
    assert [m.message_id for m in inbound(run, f"{KFID}:wmUser1")] == ["msg-1"]
    assert saved_cursor(tmp_path) == "cur-1"  # only past what was stored
    assert (await post(run, *callback(nonce="2"))).status == 200
    assert platform.to(SYNC)[-1].json["cursor"] == "cur-1"
    assert [m.message_id for m in inbound(run, f"{KFID}:wmUser1")] == ["msg-1", "msg-2"]
    assert saved_cursor(tmp_path) == "cur-2"


# --- replies and handoff ------------------------------------------------------------------------


async def test_human_request_is_answered_then_handed_to_the_queue(start, platform):
    platform.messages[KFID] = [customer_text("msg-h", "转人工", "wmUser9")]
    run = await start()
    assert (await post(run, *callback())).status == 200
    [decision] = await delivered(run, f"{KFID}:wmUser9")
    assert decision["kind"] == "handoff"
    assert sent_texts(platform, "wmUser9") == [r["text"] for r in decision["payload"]["replies"]]
    [trans] = platform.to(TRANS)
    assert trans.json == {"open_kfid": KFID, "external_userid": "wmUser9", "service_state": 2}
    assert trans.query["access_token"] == "TOKEN-1"
    assert platform.calls.index(trans) > platform.calls.index(platform.to(SEND)[-1])  # send first: state 2 forbids it


async def test_msgid_is_an_idempotency_key_across_retries_and_restarts(start, platform):
    platform.messages[KFID] = [customer_text("msg-1", "包邮吗")]
    run = await start()
    platform.send_errors = [None, -1]  # the second reply fails once; the server retries the delivery
    assert (await post(run, *callback())).status == 200
    [decision] = await delivered(run, f"{KFID}:wmUser1")
    replies = decision["payload"]["replies"]
    assert len(replies) == 2
    expected = [reply_msgid(decision, 0), reply_msgid(decision, 1)]
    assert [c.json["msgid"] for c in platform.to(SEND)] == [expected[0], expected[1], expected[1]]
    assert all(len(m.encode()) <= 32 for m in expected) and expected[0] != expected[1]

    # after a restart, a redelivery of the same decision sends nothing twice
    [message] = inbound(run, f"{KFID}:wmUser1")
    await run.stop()
    again = await start()
    await again.connector.deliver(message, decision)
    assert len(platform.to(SEND)) == 3


@pytest.mark.parametrize(
    "text",
    ["a" * 3000, "中" * 1000, "😀" * 600, "x" + "中" * 700, "a" * 2048, "退款" * 10],
    ids=["ascii", "cjk", "emoji", "cjk-offset", "exactly-2048", "short"],
)
async def test_text_is_cut_to_2048_bytes_on_a_character_boundary(tmp_path, platform, text):
    http = Outbound(timeout=5.0, retries=0)
    connector = build_connectors({"kf": {
        "type": "wecom_kf", "token": TOKEN, "encoding_aes_key": AES_KEY, "corp_id": CORP_ID, "secret": SECRET,
        "api_base": platform.base, "cursor_path": str(tmp_path / "kf.sqlite")}}, http)["kf"]
    message = StoredMessage(id=1, conversation_id=f"{KFID}:wmUser1", direction="in", text="x",
                            at=datetime.now(UTC), platform="kf", message_id="msg-1", customer_id="wmUser1",
                            raw={"context": {"open_kfid": KFID, "external_userid": "wmUser1"}})
    decision = {"id": 7, "at": datetime(2024, 5, 1, tzinfo=UTC), "kind": "auto_send",
                "payload": {"replies": [{"id": "p", "text": text}]}}
    try:
        await connector.deliver(message, decision)
    finally:
        await http.close()
        connector.state.close()
    [call] = platform.to(SEND)
    content = call.json["text"]["content"]
    size = len(content.encode("utf-8"))
    assert size <= 2048 and text.startswith(content)
    if len(text.encode("utf-8")) <= 2048:
        assert content == text
    else:
        assert size > 2048 - 4  # only the character that did not fit is dropped


# --- rejections and ignored callbacks ------------------------------------------------------------


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda: ("msg_signature=" + "0" * 40 + "&" + callback()[0].split("&", 1)[1], callback()[1]),
         "does not match"),
        (lambda: (callback()[0].split("&", 1)[1], callback()[1]), "missing msg_signature"),
        (lambda: callback(crypto=WeComCrypto("another-token", AES_KEY, CORP_ID)), "does not match"),
        (lambda: callback(crypto=WeComCrypto(TOKEN, AES_KEY, "ww0000000000000000")), "receive_id"),
    ],
    ids=["wrong", "missing", "other-token", "other-corp"],
)
async def test_bad_signatures_are_401_and_pull_nothing(start, platform, make, reason):
    platform.messages[KFID] = [customer_text("msg-1", "包邮吗")]
    run = await start()
    resp = await post(run, *make())
    assert resp.status == 401
    error = await resp.json()
    assert error["ok"] is False and error["status"] == 401 and reason in error["error"]
    assert platform.to(SYNC) == [] and run.store.unprocessed_messages() == [] and run.store.decisions() == []


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda: ("msg_signature=a&timestamp=1&nonce=2", b"<xml><Encrypt>"), "malformed XML"),
        (lambda: ("msg_signature=a&timestamp=1&nonce=2", b"<xml><ToUserName>x</ToUserName></xml>"), "no <Encrypt>"),
        (lambda: callback(open_kfid=""), "without <OpenKfId>"),
        (lambda: callback(plaintext="{\"event\": \"kf_msg_or_event\"}"), "decrypted payload"),
    ],
    ids=["not-xml", "no-encrypt", "no-open-kfid", "plaintext-not-xml"],
)
async def test_malformed_callbacks_are_400_with_a_reason(start, platform, make, reason):
    run = await start()
    resp = await post(run, *make())
    assert resp.status == 400
    error = await resp.json()
    assert error["ok"] is False and error["status"] == 400 and reason in error["error"]
    assert platform.to(SYNC) == []


@pytest.mark.parametrize(
    "make",
    [
        lambda: callback(event="kf_account_auth_change"),
        lambda: callback(plaintext=f"<xml><ToUserName>{CORP_ID}</ToUserName><FromUserName>u</FromUserName>"
                                   "<CreateTime>1</CreateTime><MsgType>text</MsgType><Content>hi</Content>"
                                   "<MsgId>1</MsgId><AgentID>1</AgentID></xml>"),
    ],
    ids=["other-event", "app-message"],
)
async def test_other_callbacks_are_acknowledged_without_a_pull(start, platform, make):
    platform.messages[KFID] = [customer_text("msg-1", "包邮吗")]
    run = await start()
    resp = await post(run, *make())
    assert resp.status == 200 and await resp.read() == b""
    assert platform.to(SYNC) == [] and run.store.unprocessed_messages() == []


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"cursor_path": None}, "cursor_path"),
        ({"limit": 5000}, "limit"),
        ({"pull_seconds": 10}, "pull_seconds"),
        ({"open_kfid": KFID}, "open_kfid: unknown setting"),
    ],
)
def test_bad_settings_fail_at_start_naming_the_key(tmp_path, overrides, message):
    settings = {"type": "wecom_kf", "token": TOKEN, "encoding_aes_key": AES_KEY, "corp_id": CORP_ID,
                "secret": SECRET, "cursor_path": str(tmp_path / "kf.sqlite"), **overrides}
    settings = {k: v for k, v in settings.items() if v is not None}
    with pytest.raises(ConnectorConfigError, match=message):
        build_connectors({"kf": settings})
    assert not (tmp_path / "kf.sqlite").exists()


# --- the desk: servicers' messages and session changes ------------------------------------------


def session_change(msgid: str, change_type: int, user: str, **event) -> dict[str, Any]:
    """An origin-4 session_status_change item (接入 1, 转接 2, 结束 3, 重新接入 4)."""
    body = {"event_type": "session_status_change", "open_kfid": KFID, "external_userid": user,
            "change_type": change_type, **event}
    return {"msgid": msgid, "send_time": 1700000100, "origin": 4, "msgtype": "event", "event": body}


async def test_a_servicer_takes_answers_and_ends_the_session_and_the_bot_answers_again(start, platform):
    user, conversation = "wmUser7", f"{KFID}:wmUser7"
    scoped = f"kf:{conversation}"
    platform.messages[KFID] = [customer_text("msg-1", "转人工", user)]
    run = await start()
    assert (await post(run, *callback())).status == 200
    [handoff] = await delivered(run, conversation)
    desk = run.server.assistant.desk
    ticket = desk.open_ticket(scoped)
    assert handoff["kind"] == "handoff" and ticket.status == "queued"

    platform.messages[KFID] += [session_change("ev-take", 1, user, new_servicer_userid="zhangsan", msg_code="c1")]
    assert (await post(run, *callback())).status == 200
    taken = desk.ticket(ticket.id)
    assert (taken.status, taken.assignee, taken.answered_at) == ("assigned", "platform", None)

    platform.messages[KFID] += [customer_text("msg-agent", "您好，我是小张，这就帮您看", user, origin=5)]
    assert (await post(run, *callback())).status == 200
    assert desk.ticket(ticket.id).answered_at is not None
    assert [m.text for m in run.store.recent_messages(scoped, 50) if m.raw.get("author") == "agent"] == \
        ["您好，我是小张，这就帮您看"]

    platform.messages[KFID] += [session_change("ev-end", 3, user, old_servicer_userid="zhangsan", msg_code="c2"),
                                customer_text("msg-2", "发什么快递", user)]
    assert (await post(run, *callback())).status == 200
    assert desk.ticket(ticket.id).status == "resolved"
    answer = await until(lambda: next((d for d in run.store.decisions(scoped)
                                       if d["trigger"] == "message" and d["delivery"] == "done"
                                       and d["message_row"] != handoff["message_row"]), None))
    assert answer["kind"] == "auto_send", "the session ended: the bot answers again"
    assert sent_texts(platform, user)[-1] == answer["payload"]["replies"][-1]["text"]


async def test_a_servicer_message_pulled_twice_is_recorded_once(start, platform, tmp_path):
    user, conversation = "wmUser8", f"{KFID}:wmUser8"
    scoped = f"kf:{conversation}"
    platform.messages[KFID] = [customer_text("msg-1", "转人工", user)]
    run = await start()
    await post(run, *callback())
    await delivered(run, conversation)
    platform.messages[KFID] += [customer_text("msg-agent", "我来处理", user, origin=5)]
    await post(run, *callback())
    await run.stop()
    # a crash before the cursor was committed: the same page comes again
    KfState(tmp_path / "wecom-kf.sqlite").set_cursor(KFID, "cur-1")
    again = await start()
    assert (await post(again, *callback())).status == 200
    agent_rows = [m for m in again.store.recent_messages(scoped, 50) if m.raw.get("author") == "agent"]
    assert [m.text for m in agent_rows] == ["我来处理"]


# --- items kefu cannot read (issue 11) ---------------------------------------------------------


async def test_an_item_kefu_cannot_read_is_skipped_and_the_items_behind_it_arrive(start, platform, tmp_path):
    huge_time = {**customer_text("msg-huge", "在吗", "wmUser1"), "send_time": 10**20}  # OverflowError before
    surrogate = customer_text("msg-sur", "包邮\ud800吗", "wmUser2")  # would fail in SQLite
    platform.messages[KFID] = [huge_time, {"msgid": "odd", "origin": 3, "msgtype": "text", "text": "no"},
                               surrogate, customer_text("msg-ok", "发什么快递", "wmUser3")]
    run = await start()
    resp = await post(run, *callback())
    assert resp.status == 200
    [first] = inbound(run, f"{KFID}:wmUser1")
    assert first.message_id == "msg-huge"
    assert [m.text for m in inbound(run, f"{KFID}:wmUser2")] == ["包邮\ufffd吗"]
    assert [m.text for m in inbound(run, f"{KFID}:wmUser3")] == ["发什么快递"]
    assert saved_cursor(tmp_path) == "cur-4"  # the account is not blocked


async def test_a_cursor_that_is_not_text_keeps_the_old_cursor(start, platform, tmp_path):
    platform.messages[KFID] = [customer_text("msg-a", "包邮吗")]
    platform.next_cursor = {"oops": 1}
    run = await start()
    resp = await post(run, *callback())
    assert resp.status == 200 and await resp.read() == b""
    assert [m.message_id for m in inbound(run, f"{KFID}:wmUser1")] == ["msg-a"]
    assert saved_cursor(tmp_path) == ""  # the next callback reads the page again; dedupe absorbs it
