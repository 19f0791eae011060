"""Telegram bot, end to end: the real server on a free port, the Bot API faked by a real server.

Updates shaped like Telegram's, with the ``X-Telegram-Bot-Api-Secret-Token`` header, go in;
the reply comes back in the webhook response as a ``sendMessage`` call. The Bot API is used
only for what cannot ride in a response (a restart's recovery, over-long replies).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime

import pytest

from bot.models import Inbound
from bot.store import StoredMessage
from connectors.base import Answered, Parsed
from connectors.http import Outbound, OutboundError
from connectors.registry import ConnectorConfigError, build_connectors
from connectors.telegram import MAX_TEXT, message_texts
from tests_support import until

TOKEN = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11"
SECRET = "kefu_tg-secret_0123456789"
USER = 1111111
GROUP = -1001234567890
SEND_PATH = f"/bot{TOKEN}/sendMessage"


def update(text="亲，包邮吗？", update_id=100000001, chat=None, sender=None, **message):
    """A message Update as Telegram POSTs it to a webhook."""
    sender = sender or {"id": USER, "is_bot": False, "first_name": "小鹿", "username": "xiaolu",
                        "language_code": "zh-hans"}
    chat = chat or {"id": USER, "first_name": "小鹿", "username": "xiaolu", "type": "private"}
    body = {"message_id": 1365, "from": sender, "chat": chat, "date": 1441645532, "text": text, **message}
    if body["text"] is None:
        del body["text"]
    return {"update_id": update_id, "message": body}


def as_body(payload):
    return payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode("utf-8")


@pytest.fixture
def fake(fake_platform):
    """The Bot API's sendMessage (`bot.testkit.FakePlatform`): records each call and answers like Telegram."""

    def send_message(call):
        return {"ok": True, "result": {"message_id": len(fake_platform.calls), "text": call.json["text"],
                                       "chat": {"id": call.json["chat_id"]}, "date": 1}}

    return fake_platform.answer("POST", "/bot{token}/sendMessage", send_message)


@pytest.fixture
def settings(fake, monkeypatch):
    monkeypatch.setenv("KEFU_TG_TOKEN", TOKEN)
    monkeypatch.setenv("KEFU_TG_SECRET", SECRET)
    return {"type": "telegram", "bot_token": "${KEFU_TG_TOKEN}", "secret_token": "${KEFU_TG_SECRET}",
            "api_base": fake.url()}


@pytest.fixture
def make_client(kefu_app, kefu_client, tmp_path, settings):
    async def make(store_file="kefu.sqlite", broken=False):
        app = kefu_app(store=tmp_path / store_file, http=Outbound(retries=0, backoff=0.0), connectors={"tg": settings})
        if broken:  # the turn cannot be written (the store fails) between accepting and answering:
            # the message waits for Telegram's retry (a turn that raises instead goes to a
            # person, tests/test_failed_turns.py)
            def crash(row):
                raise sqlite3.OperationalError("disk I/O error")
            app.assistant.process = crash
        return await kefu_client(app)

    return make


@pytest.fixture
async def client(make_client):
    return await make_client()


async def post(client, payload, secret=SECRET):
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    return await client.post("/webhook/tg", data=as_body(payload), headers=headers)


def inbound(client, chat=USER):
    return [m for m in client.kefu.store.recent_messages(f"tg:{chat}", 50) if m.direction == "in"]


def replies_of(client, chat=USER):
    return [[r["text"] for r in d["payload"]["replies"]] for d in client.kefu.store.decisions(f"tg:{chat}")]




@pytest.mark.parametrize(
    "chat, sender_id",
    [
        ({"id": USER, "first_name": "小鹿", "type": "private"}, USER),
        ({"id": GROUP, "title": "小鹿家居售后群", "type": "supergroup"}, 2222222),
        ({"id": -4000001, "title": "老客户群", "type": "group"}, 3333333),
    ],
)
async def test_the_reply_is_the_webhook_response(client, fake, chat, sender_id):
    sender = {"id": sender_id, "is_bot": False, "first_name": "顾客"}
    resp = await post(client, update(chat=chat, sender=sender))
    assert resp.status == 200 and resp.content_type == "application/json"
    body = await resp.json()
    [replies] = replies_of(client, chat["id"])
    assert len(replies) == 2  # away greeting + the answer: both reach the customer, as one message
    assert body == {"method": "sendMessage", "chat_id": chat["id"], "text": "\n\n".join(replies)}
    assert fake.calls == []  # nothing else goes out
    [row] = inbound(client, chat["id"])
    assert (row.conversation_id, row.customer_id, row.message_id) == (f"tg:{chat['id']}", f"tg:{sender_id}", "100000001")
    assert row.raw["context"]["chat_id"] == chat["id"]
    assert client.kefu.store.decisions(f"tg:{chat['id']}")[0]["delivery"] == "done"


async def test_one_reply_is_sent_as_is_and_no_reply_answers_empty(client, fake):
    await post(client, update())  # the day's away greeting goes with the first message
    one = await (await post(client, update("什么时候发货", update_id=100000002))).json()
    [_, [reply]] = replies_of(client)
    assert one == {"method": "sendMessage", "chat_id": USER, "text": reply}
    nothing = await post(client, update("asdfgh", update_id=100000003))
    assert nothing.status == 200 and await nothing.json() == {}
    assert replies_of(client)[-1] == []
    assert fake.calls == []


async def test_a_duplicate_update_is_answered_with_the_same_reply_and_not_processed_again(client, fake):
    first = await (await post(client, update())).json()
    again = await post(client, update())
    assert again.status == 200
    # Telegram resends only when our first answer did not reach it, so the reply in that answer
    # was never sent: the stored decision is answered again, not decided again.
    assert await again.json() == first
    assert len(inbound(client)) == 1 and len(client.kefu.store.decisions(f"tg:{USER}")) == 1
    assert fake.calls == []


async def test_an_update_that_failed_midway_is_answered_on_telegrams_retry(make_client, fake):
    broken = await make_client(broken=True)
    failed = await post(broken, update())
    assert failed.status == 503  # Telegram will retry
    await broken.close()
    client = await make_client()  # restarted on the same store: recovery delivers through the API
    await until(lambda: len(fake.calls) == 1)
    [replies] = replies_of(client)
    assert [(c.path, c.json) for c in fake.calls] == [(SEND_PATH, {"chat_id": USER, "text": "\n\n".join(replies)})]
    retry = await post(client, update())  # Telegram's retry of the update that got the 500
    assert retry.status == 200 and await retry.json() == {}  # already sent: not again
    await asyncio.sleep(0.1)
    assert len(fake.calls) == 1 and len(inbound(client)) == 1
    assert client.kefu.store.decisions(f"tg:{USER}")[0]["delivery"] == "done"


async def test_a_retry_of_an_update_never_answered_gets_the_reply(make_client, fake):
    client = await make_client()
    original = client.kefu.assistant.process
    calls = []

    def crash_once(row):
        calls.append(row)
        if len(calls) == 1:
            raise sqlite3.OperationalError("disk I/O error")  # the store failed: nothing was written
        return original(row)

    client.kefu.assistant.process = crash_once
    assert (await post(client, update())).status == 503
    retry = await post(client, update())
    assert retry.status == 200
    [replies] = replies_of(client)
    assert await retry.json() == {"method": "sendMessage", "chat_id": USER, "text": "\n\n".join(replies)}
    assert len(inbound(client)) == 1 and fake.calls == []


@pytest.mark.parametrize(
    "secret, reason",
    [
        (None, "missing X-Telegram-Bot-Api-Secret-Token"),
        ("", "missing X-Telegram-Bot-Api-Secret-Token"),
        ("wrong-secret", "does not match"),
        (SECRET[:-1], "does not match"),
        (SECRET + "x", "does not match"),
        (SECRET.upper(), "does not match"),
    ],
)
async def test_a_missing_or_wrong_secret_token_is_401_and_stores_nothing(client, fake, secret, reason):
    resp = await post(client, update(), secret=secret)
    assert resp.status == 401
    error = await resp.json()
    assert error["ok"] is False and error["status"] == 401 and reason in error["error"], error
    assert SECRET not in error["error"]
    assert inbound(client) == [] and client.kefu.store.decisions() == [] and fake.calls == []


@pytest.mark.parametrize(
    "payload, reason",
    [
        (b"{not json", "body is not JSON"),
        (b"[1, 2]", "body must be a JSON object"),
        (b"\xff\xfe", "body is not UTF-8"),
        ({"message": update()["message"]}, "update_id must be an integer"),
        ({**update(), "update_id": "100000001"}, "update_id must be an integer"),
        ({**update(), "update_id": True}, "update_id must be an integer"),
        ({"update_id": 1, "message": "亲，包邮吗？"}, "message must be an object"),
        (update(chat="private"), "message.chat must be an object"),
        (update(chat={"id": str(USER), "type": "private"}), "message.chat.id must be an integer"),
        (update(sender=None) | {"message": {**update()["message"], "from": "小鹿"}}, "message.from must be"),
    ],
)
async def test_malformed_updates_are_400_with_a_reason(client, fake, payload, reason):
    resp = await post(client, payload)
    assert resp.status == 400
    error = await resp.json()
    assert error == {"ok": False, "error": error["error"], "status": 400} and reason in error["error"], error
    assert inbound(client) == [] and client.kefu.store.decisions() == []


def _without_from():
    payload = update()
    del payload["message"]["from"]
    return payload


@pytest.mark.parametrize(
    "payload",
    [
        {"update_id": 100000001, "edited_message": update()["message"]},
        {"update_id": 100000001, "channel_post": {**update()["message"], "chat": {"id": -100777, "type": "channel"}}},
        {"update_id": 100000001, "callback_query": {"id": "4382", "from": update()["message"]["from"], "data": "x"}},
        {"update_id": 100000001, "my_chat_member": {"chat": {"id": USER, "type": "private"}}},
        {"update_id": 100000001},
        update(text=None, photo=[{"file_id": "AgAD", "file_unique_id": "u", "width": 90, "height": 90}],
               caption="看看这个"),
        update(text=None, sticker={"file_id": "CAAD", "emoji": "😀"}),
        update(text="   "),
        update(sender={"id": 999, "is_bot": True, "first_name": "OtherBot"}),
        _without_from(),
        update(chat={"id": -100777, "title": "频道", "type": "channel"}),
    ],
)
async def test_updates_that_are_not_customer_text_answer_empty_and_are_ignored(client, fake, payload):
    resp = await post(client, payload)
    assert resp.status == 200 and await resp.json() == {}
    assert inbound(client) == [] and client.kefu.store.decisions() == [] and fake.calls == []


@pytest.mark.parametrize(
    "replies, expected",
    [
        ([], []),
        (["亲，在的～"], ["亲，在的～"]),
        (["您好", "包邮"], ["您好\n\n包邮"]),
        (["甲" * 3000, "乙" * 3000], ["甲" * 3000, "乙" * 3000]),
        (["甲" * 2000, "乙" * 2000], ["甲" * 2000 + "\n\n" + "乙" * 2000]),
        (["丙" * 5000], ["丙" * MAX_TEXT, "丙" * (5000 - MAX_TEXT)]),
        (["😀" * 2049], ["😀" * 2048, "😀"]),  # an emoji is two UTF-16 units, and is never cut
        (["短", "丁" * 4095], ["短", "丁" * 4095]),
    ],
)
def test_replies_are_packed_into_telegram_sized_messages(replies, expected):
    assert message_texts(replies) == expected


async def test_replies_too_long_for_one_message_go_out_in_order_through_the_api(settings, fake):
    [connector] = build_connectors({"tg": settings}, Outbound(retries=0, backoff=0.0)).values()
    inbound_ = Inbound(platform="tg", conversation_id=str(USER), customer_id=str(USER), message_id="7",
                       text="说明书", raw={"chat_id": USER, "update_id": 7})
    decision = {"kind": "auto_send", "replies": [{"id": "a", "text": "甲" * 3000}, {"id": "b", "text": "乙" * 3000}]}
    resp = connector.acknowledge(Parsed(messages=[inbound_]), [Answered(inbound_, decision, duplicate=False)])
    assert json.loads(resp.body) == {}
    await until(lambda: len(fake.calls) == 2)
    assert [c.json for c in fake.calls] == [{"chat_id": USER, "text": "甲" * 3000}, {"chat_id": USER, "text": "乙" * 3000}]
    again = connector.acknowledge(Parsed(messages=[inbound_]), [Answered(inbound_, decision, duplicate=True)])
    assert json.loads(again.body) == {}
    await asyncio.sleep(0.1)
    assert len(fake.calls) == 2
    await connector.http.close()


@pytest.mark.parametrize(
    "status, answer, reason",
    [
        (400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}, "HTTP 400"),
        (403, {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}, "HTTP 403"),
        (200, {"ok": False, "description": "strange"}, "sendMessage refused: strange"),
    ],
)
async def test_a_refused_send_raises_without_showing_the_token(settings, fake, status, answer, reason):
    fake.fail_at = {1: (status, answer)}
    [connector] = build_connectors({"tg": settings}, Outbound(retries=0, backoff=0.0)).values()
    message = StoredMessage(id=1, conversation_id=str(USER), direction="in", text="hi", at=datetime.now(UTC),
                            platform="tg", message_id="5", raw={"context": {"chat_id": USER, "update_id": 5}})
    with pytest.raises(OutboundError) as raised:
        await connector.deliver(message, {"id": 1, "message_row": 1, "payload": {"replies": [{"id": "x", "text": "hi"}]}})
    assert reason in str(raised.value) and TOKEN not in str(raised.value)
    assert fake.calls[0].path == SEND_PATH
    await connector.http.close()


@pytest.mark.parametrize(
    "override, problem",
    [
        ({"secret_token": "has spaces in it"}, "secret_token"),
        ({"secret_token": "x" * 257}, "secret_token"),
        ({"bot_token": ""}, "bot_token"),
        ({"api_base": "api.telegram.org"}, "must be an http:// or https:// URL"),
        ({"webhook_secret": "x"}, "webhook_secret: unknown setting"),
    ],
)
def test_unusable_settings_fail_at_start(override, problem):
    config = {"type": "telegram", "bot_token": TOKEN, "secret_token": SECRET, **override}
    with pytest.raises(ConnectorConfigError) as raised:
        build_connectors({"tg": config})
    assert str(raised.value).startswith("connectors.tg: ") and problem in str(raised.value)


def test_api_base_defaults_to_telegram():
    [connector] = build_connectors({"tg": {"type": "telegram", "bot_token": TOKEN, "secret_token": SECRET}}).values()
    assert connector.settings.api_base == "https://api.telegram.org"
