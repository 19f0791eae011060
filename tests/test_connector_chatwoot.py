"""Chatwoot agent bot, end to end: the real server on a free port, Chatwoot faked by a real server.

Signed ``message_created`` bodies shaped like Chatwoot's (webhook-events.md) go in; replies,
private handoff notes and ``toggle_status`` calls come out at the fake Chatwoot API, with the
bot's ``api_access_token``. Rejections are 401/400 in the one JSON error shape and store nothing;
everything that is not a customer's words is acknowledged and ignored.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest

from bot.testkit import FakePlatform
from connectors.crypto import chatwoot as signing
from connectors.http import Outbound
from connectors.registry import ConnectorConfigError, build_connectors
from tests_support import until

SECRET = "cw-webhook-secret-0123456789"
TOKEN = "cw-bot-access-token-abc"
ACCOUNT, CONVERSATION, CONTACT = 7, 42, 14
CONV_KEY = f"{ACCOUNT}:{CONVERSATION}"
MESSAGES_PATH = f"/api/v1/accounts/{ACCOUNT}/conversations/{CONVERSATION}/messages"
TOGGLE_PATH = f"/api/v1/accounts/{ACCOUNT}/conversations/{CONVERSATION}/toggle_status"


def message_created(text="亲，包邮吗？", message_id=118, **overrides):
    """A ``message_created`` body as Chatwoot sends it to an agent bot (docs: webhook-events.md)."""
    body = {
        "id": message_id,
        "content": text,
        "created_at": "2021-07-23T18:02:48.000Z",
        "message_type": "incoming",
        "content_type": "text",
        "private": False,
        "content_attributes": {},
        "source_id": None,
        "sender": {"id": CONTACT, "name": "little-haze-776", "avatar": "", "type": "contact"},
        "inbox": {"id": 1, "name": "Acme Support"},
        "conversation": {
            "can_reply": True, "channel": "Channel::WebWidget", "id": CONVERSATION, "inbox_id": 1,
            "contact_inbox": {"id": 12, "contact_id": CONTACT, "inbox_id": 1,
                              "source_id": "405f1d30-1af3-4fa0-8ffd-11ea3f86101e", "hmac_verified": False},
            "messages": [], "meta": {"sender": {"id": CONTACT, "name": "little-haze-776", "type": "contact"}},
            "status": "pending", "unread_count": 1, "agent_last_seen_at": 0, "contact_last_seen_at": 0,
            "timestamp": 1627063369,
        },
        "account": {"id": ACCOUNT, "name": "Acme Inc"},
        "event": "message_created",
    }
    body.update(overrides)
    return body


def signed(payload, secret=SECRET, timestamp=None, delivery=None):
    body = payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode("utf-8")
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return body, {
        "Content-Type": "application/json",
        "X-Chatwoot-Delivery": delivery or str(uuid.uuid4()),
        "X-Chatwoot-Timestamp": ts,
        "X-Chatwoot-Signature": signing.sign(secret, ts, body),
    }


class FakeChatwoot(FakePlatform):
    """Chatwoot's agent-bot API on `bot.testkit.FakePlatform`: records each call, answers like Chatwoot."""

    def __init__(self):
        super().__init__()
        base = "/api/v1/accounts/{account}/conversations/{conversation}"
        self.answer("POST", f"{base}/messages", lambda call: {
            "id": len(self.calls), "content": call.json["content"], "private": call.json["private"]})
        self.answer("POST", f"{base}/toggle_status", lambda call: {
            "meta": {}, "payload": {"success": True, "current_status": call.json["status"]}})

    def messages(self, private=False):
        return [c.json["content"] for c in self.calls if c.path == MESSAGES_PATH and c.json["private"] is private]


@pytest.fixture
async def fake(aiohttp_server):
    return await FakeChatwoot().start(aiohttp_server)


@pytest.fixture
def make_client(kefu_app, kefu_client, monkeypatch, fake):
    monkeypatch.setenv("KEFU_CW_TOKEN", TOKEN)
    monkeypatch.setenv("KEFU_CW_SECRET", SECRET)

    async def make(**settings):
        config = {"type": "chatwoot", "api_base": fake.url(),
                  "api_access_token": "${KEFU_CW_TOKEN}", "webhook_secret": "${KEFU_CW_SECRET}", **settings}
        app = kefu_app(http=Outbound(retries=0, backoff=0.0),
                       connectors={"chatwoot": {k: v for k, v in config.items() if v is not None}})
        return await kefu_client(app)

    return make


@pytest.fixture
async def client(make_client):
    return await make_client()


async def post(client, payload, **kwargs):
    body, headers = signed(payload, **kwargs)
    return await client.post("/webhook/chatwoot", data=body, headers=headers)




def inbound(client, conversation=CONV_KEY):
    return [m for m in client.kefu.store.recent_messages(f"chatwoot:{conversation}", 50) if m.direction == "in"]


def replies_of(client, conversation=CONV_KEY):
    return [[r["text"] for r in d["payload"]["replies"]] for d in client.kefu.store.decisions(f"chatwoot:{conversation}")]


@pytest.mark.parametrize("message_type", ["incoming", 0])
async def test_customer_message_is_answered_through_the_chatwoot_api(client, fake, message_type):
    resp = await post(client, message_created(message_type=message_type))
    assert resp.status == 200
    assert await resp.json() == {"ok": True}
    # the first message of the day: away greeting, then the answer — both posted, in order
    await until(lambda: len(fake.calls) >= 2)
    [expected] = replies_of(client)
    assert len(expected) == 2
    assert fake.messages() == expected
    assert all(c.headers.get("api_access_token") == TOKEN for c in fake.calls)
    assert [c.json for c in fake.calls] == [
        {"content": text, "message_type": "outgoing", "private": False} for text in expected
    ]
    [row] = inbound(client)
    assert (row.text, row.customer_id, row.message_id) == ("亲，包邮吗？", f"chatwoot:{CONTACT}", "118")
    assert row.raw["context"]["account_id"] == str(ACCOUNT)
    assert row.raw["context"]["conversation_id"] == str(CONVERSATION)
    await until(lambda: client.kefu.store.decisions(f"chatwoot:{CONV_KEY}")[0]["delivery"] == "done")


async def test_a_retried_delivery_is_answered_once(client, fake):
    first = message_created()
    assert (await post(client, first)).status == 200
    await until(lambda: len(fake.calls) == 2)
    # Chatwoot retries with a fresh timestamp, signature and delivery header: same message id
    again = await post(client, first)
    assert again.status == 200
    # a later message is queued behind anything the duplicate might have queued
    assert (await post(client, message_created("什么时候发货", message_id=119))).status == 200
    await until(lambda: len(fake.calls) == 3)
    await asyncio.sleep(0.1)
    assert len(fake.calls) == 3
    assert [m.message_id for m in inbound(client)] == ["118", "119"]
    assert len(client.kefu.store.decisions(f"chatwoot:{CONV_KEY}")) == 2


async def test_handoff_posts_the_reply_then_a_private_summary_then_opens_the_conversation(client, fake):
    assert (await post(client, message_created("转人工"))).status == 200
    await until(lambda: any(c.path == TOGGLE_PATH for c in fake.calls))
    [decision] = client.kefu.store.decisions(f"chatwoot:{CONV_KEY}")
    assert decision["kind"] == "handoff"
    handoff = decision["payload"]["handoff"]
    paths = [c.path for c in fake.calls]
    assert paths == [MESSAGES_PATH] * (len(paths) - 1) + [TOGGLE_PATH]
    assert fake.messages() == [r["text"] for r in decision["payload"]["replies"]]
    [note] = fake.messages(private=True)
    assert fake.calls[-2].json == {"content": note, "message_type": "outgoing", "private": True}
    assert handoff["summary"] in note and handoff["reason"] in note and f"#{handoff['ticket_id']}" in note
    assert fake.calls[-1].json == {"status": "open"}
    assert all(c.headers.get("api_access_token") == TOKEN for c in fake.calls)


async def test_a_failed_call_is_retried_without_resending_what_went_out(client, fake):
    fake.fail_at = {2: (503, {"error": "refused"})}  # the answer after the away greeting fails once (a 4xx would go to dead-letter)
    assert (await post(client, message_created())).status == 200
    await until(lambda: len(fake.calls) == 3)
    [expected] = replies_of(client)
    greeting, answer = expected
    # the greeting went out once; the refused answer was posted again by the retry
    assert [c.json["content"] for c in fake.calls] == [greeting, answer, answer]
    await until(lambda: client.kefu.store.decisions(f"chatwoot:{CONV_KEY}")[0]["delivery"] == "done")


def _drop(headers, name):
    return {k: v for k, v in headers.items() if k != name}


@pytest.mark.parametrize(
    "mutate, reason",
    [
        (lambda b, h: (b, _drop(h, "X-Chatwoot-Signature")), "missing X-Chatwoot-Signature"),
        (lambda b, h: (b, {**h, "X-Chatwoot-Signature": "sha256=" + "0" * 64}), "does not match"),
        (lambda b, h: (b, {**h, "X-Chatwoot-Signature": h["X-Chatwoot-Signature"][7:]}), "sha256="),
        (lambda b, h: (b.replace("包邮".encode(), "退款".encode()), h), "does not match"),  # body changed
        (lambda b, h: (b, _drop(h, "X-Chatwoot-Timestamp")), "missing X-Chatwoot-Timestamp"),
        (lambda b, h: (b, {**h, "X-Chatwoot-Timestamp": "yesterday"}), "not a non-negative integer"),
        # the signature covers the timestamp: moving it breaks the signature even inside the window
        (lambda b, h: (b, {**h, "X-Chatwoot-Timestamp": str(int(h["X-Chatwoot-Timestamp"]) - 1)}),
         "does not match"),
    ],
)
async def test_bad_signatures_are_401_and_store_nothing(client, fake, mutate, reason):
    body, headers = signed(message_created())
    body, headers = mutate(body, headers)
    resp = await client.post("/webhook/chatwoot", data=body, headers=headers)
    assert resp.status == 401
    error = await resp.json()
    assert error["ok"] is False and error["status"] == 401 and reason in error["error"], error
    assert inbound(client) == [] and client.kefu.store.decisions() == []
    assert fake.calls == []


@pytest.mark.parametrize("skew, word", [(-400, "old"), (400, "in the future")])
async def test_a_stale_timestamp_is_401_even_when_correctly_signed(client, fake, skew, word):
    resp = await post(client, message_created(), timestamp=int(time.time()) + skew)
    assert resp.status == 401
    error = await resp.json()
    assert error["status"] == 401 and word in error["error"] and "X-Chatwoot-Timestamp" in error["error"]
    assert inbound(client) == [] and fake.calls == []


async def test_the_freshness_window_is_a_setting(make_client, fake):
    client = await make_client(max_age=1000)
    resp = await post(client, message_created(), timestamp=int(time.time()) - 900)
    assert resp.status == 200
    await until(lambda: len(fake.calls) == 2)


@pytest.mark.parametrize(
    "payload, reason",
    [
        (b"{not json", "body is not JSON"),
        (b"[1, 2]", "body must be a JSON object"),
        (b"\xff\xfe", "body is not UTF-8"),
        ({"id": 1}, "event must be a non-empty string"),
        (message_created(conversation=None), "conversation must be an object"),
        (message_created(account="7"), "account must be an object"),
        (message_created(id="m-118"), "id must be an integer id"),
        (message_created(id=None), "id must be an integer id"),
        (message_created(message_type=None), "message_type must be"),
        (message_created(private="no"), "private must be true or false"),
        (message_created(content=["hi"]), "content must be a string"),
        (message_created(sender="contact"), "sender must be an object"),
        (message_created(sender={"id": "abc", "type": "contact"}), "sender.id must be an integer id"),
    ],
)
async def test_malformed_bodies_are_400_with_a_reason(client, fake, payload, reason):
    resp = await post(client, payload)
    assert resp.status == 400
    error = await resp.json()
    assert error == {"ok": False, "error": error["error"], "status": 400} and reason in error["error"], error
    assert inbound(client) == [] and client.kefu.store.decisions() == []


def _bot_reply():
    return message_created("您好，本店满99元包邮", message_id=120, message_type="outgoing",
                           sender={"id": 3, "name": "kefu", "type": "agent_bot"})


@pytest.mark.parametrize(
    "payload, reason",
    [
        (_bot_reply(), "message_type outgoing"),                                   # the bot hears itself
        (message_created(message_type="template", sender=None), "message_type template"),
        (message_created(message_type=2), "message_type activity"),
        (message_created(message_type="incoming", private=True), "private note"),
        (message_created(message_type="outgoing", private=True, sender={"id": 1, "type": "user"}),
         "message_type outgoing"),                                               # an agent's private note
        (message_created(sender={"id": 1, "name": "Agent", "type": "user"}), "sender is user"),
        (message_created(conversation={**message_created()["conversation"], "status": "open"}),
         "conversation is open"),                                                # a person has it
        (message_created(content=None), "no text and no image"),
        (message_created(event="message_updated"), "event message_updated"),
        ({"event": "conversation_created", "id": CONVERSATION, "status": "pending"}, "event conversation_created"),
        ({"event": "conversation_status_changed", "id": CONVERSATION, "status": "snoozed",
          "account": {"id": ACCOUNT}}, "conversation_status_changed to snoozed: nothing for the desk"),
        ({"event": "webwidget_triggered", "id": 12}, "event webwidget_triggered"),
    ],
)
async def test_what_is_not_customer_text_is_acknowledged_and_ignored(client, fake, payload, reason):
    resp = await post(client, payload)
    assert resp.status == 200
    body = await resp.json()
    assert body["ok"] is True and reason in body["ignored"], body
    await asyncio.sleep(0.05)
    assert inbound(client) == [] and client.kefu.store.decisions() == []
    assert fake.calls == []


async def test_an_image_without_text_is_accepted_with_its_url(client, fake):
    image = {"id": 9, "message_id": 118, "file_type": "image", "data_url": "https://cw.example/rails/photo.jpg"}
    audio = {"id": 10, "message_id": 118, "file_type": "audio", "data_url": "https://cw.example/rails/voice.ogg"}
    resp = await post(client, message_created(content=None, attachments=[image, audio]))
    assert resp.status == 200 and await resp.json() == {"ok": True}
    await until(lambda: len(inbound(client)) == 1)
    [row] = inbound(client)
    assert row.text == "" and row.raw["attachments"] == ["https://cw.example/rails/photo.jpg"]


async def test_without_a_webhook_secret_requests_are_not_verified(make_client, fake):
    client = await make_client(webhook_secret=None)
    body = json.dumps(message_created(), ensure_ascii=False).encode()
    resp = await client.post("/webhook/chatwoot", data=body, headers={"Content-Type": "application/json"})
    assert resp.status == 200
    await until(lambda: len(fake.calls) == 2)
    assert fake.messages() == replies_of(client)[0]


@pytest.mark.parametrize(
    "settings, problem",
    [
        ({"api_base": "chatwoot.example.com"}, "api_base: Value error, must be an http:// or https:// URL"),
        ({"api_access_token": ""}, "api_access_token"),
        ({"webhook_secret": ""}, "webhook_secret"),        # an empty env var must not switch checks off
        ({"max_age": 0}, "max_age"),
        ({"secret": "x"}, "secret: unknown setting"),
    ],
)
def test_unusable_settings_fail_at_start(settings, problem):
    config = {"type": "chatwoot", "api_base": "https://chatwoot.example.com", "api_access_token": TOKEN,
              "webhook_secret": SECRET, **settings}
    with pytest.raises(ConnectorConfigError) as raised:
        build_connectors({"cw": config})
    assert str(raised.value).startswith("connectors.cw: ") and problem in str(raised.value)


def test_api_base_keeps_no_trailing_slash():
    [connector] = build_connectors({"cw": {"type": "chatwoot", "api_base": "https://cw.example.com/",
                                           "api_access_token": TOKEN}}).values()
    assert connector.settings.api_base == "https://cw.example.com"


# --- the desk: agents' messages and status changes ----------------------------------------------


SCOPED = f"chatwoot:{CONV_KEY}"  # how kefu stores the conversation (bot.identity)


def status_changed(status, **overrides):
    """``conversation_status_changed`` as Chatwoot sends it: the conversation's data plus the event."""
    body = {"event": "conversation_status_changed", "id": CONVERSATION, "status": status, "inbox_id": 1,
            "meta": {"sender": {"id": CONTACT, "type": "contact"}, "assignee": None},
            "account": {"id": ACCOUNT, "name": "Acme Inc"}}
    return {**body, **overrides}


def agent_message(text="您好，我是客服小美，马上帮您查", message_id=130, **overrides):
    return message_created(text, message_id=message_id, message_type="outgoing",
                           sender={"id": 5, "name": "小美", "type": "user"},
                           conversation={**message_created()["conversation"], "status": "open"}, **overrides)


async def handed_off(client, fake):
    assert (await post(client, message_created("转人工"))).status == 200
    await until(lambda: any(c.path == TOGGLE_PATH for c in fake.calls))
    return client.kefu.assistant.desk.open_ticket(SCOPED)


async def test_an_agents_chatwoot_message_meets_the_sla_of_the_ticket(client, fake):
    ticket = await handed_off(client, fake)
    assert ticket.answered_at is None
    calls = len(fake.calls)
    resp = await post(client, agent_message())
    assert resp.status == 200
    body = await resp.json()
    assert body["ok"] is True and body["desk"][0]["action"] == "agent_message" and body["desk"][0]["applied"]
    after = client.kefu.assistant.desk.ticket(ticket.id)
    assert after.answered_at is not None and after.assignee == "platform"
    last = client.kefu.store.recent_messages(SCOPED, 1)[0]
    assert (last.direction, last.text, last.raw["author"]) == ("out", "您好，我是客服小美，马上帮您查", "agent")
    again = await post(client, agent_message())  # Chatwoot retries the same message
    assert (await again.json())["desk"][0]["applied"]
    assert [m.text for m in client.kefu.store.recent_messages(SCOPED, 50)].count("您好，我是客服小美，马上帮您查") == 1
    await asyncio.sleep(0.05)
    assert len(fake.calls) == calls, "nothing is sent back for an agent's message"


async def test_an_agents_private_note_is_not_a_reply(client, fake):
    ticket = await handed_off(client, fake)
    body = await (await post(client, agent_message(private=True))).json()
    assert "ignored" in body
    assert client.kefu.assistant.desk.ticket(ticket.id).answered_at is None


@pytest.mark.parametrize(("status", "final"), [("resolved", "resolved"), ("pending", "released")])
async def test_resolved_or_pending_hands_the_conversation_back_and_the_bot_answers_again(client, fake, status, final):
    ticket = await handed_off(client, fake)
    resp = await post(client, status_changed(status))
    assert resp.status == 200 and (await resp.json())["desk"][0]["applied"] is True
    assert client.kefu.assistant.desk.ticket(ticket.id).status == final
    assert client.kefu.store.load_state(SCOPED)["owner"] == "bot"
    decided = len(client.kefu.store.decisions(SCOPED))
    assert (await post(client, message_created("发什么快递", message_id=140))).status == 200
    # wait for THIS message's decision, then for its reply: the handoff's own message may still
    # be on its way to Chatwoot, so "one more call" alone could be that one
    await until(lambda: len(client.kefu.store.decisions(SCOPED)) > decided)
    decision = client.kefu.store.decisions(SCOPED)[-1]
    assert decision["kind"] == "auto_send"
    reply = decision["payload"]["replies"][-1]["text"]
    await until(lambda: reply in fake.messages())


async def test_a_conversation_opened_by_an_agent_gets_a_ticket_and_the_bot_steps_back(client, fake):
    assert (await post(client, message_created())).status == 200
    await until(lambda: client.kefu.store.load_state(SCOPED) is not None)
    body = await (await post(client, status_changed("open"))).json()
    assert body["desk"][0]["applied"] is True
    ticket = client.kefu.assistant.desk.open_ticket(SCOPED)
    assert (ticket.status, ticket.reason) == ("queued", "opened_on_platform")
    # our own toggle to open after a handoff comes back too: the ticket stays as it is
    await post(client, status_changed("open"))
    assert client.kefu.assistant.desk.open_ticket(SCOPED) == ticket


async def test_a_refused_desk_event_is_still_a_200_naming_why(client, fake):
    resp = await post(client, status_changed("resolved", id=999))
    assert resp.status == 200
    [outcome] = (await resp.json())["desk"]
    assert outcome["applied"] is False and "no conversation" in outcome["detail"]
    await post(client, message_created())
    await until(lambda: client.kefu.store.load_state(SCOPED) is not None)
    [outcome] = (await (await post(client, status_changed("resolved"))).json())["desk"]
    assert outcome["applied"] is False and "no open ticket" in outcome["detail"]


@pytest.mark.parametrize(("payload", "reason"), [
    (status_changed("resolved", id="x"), "id must be an integer id"),
    (status_changed("resolved", account=None), "account.id must be an integer id"),
])
async def test_malformed_status_changes_are_400(client, fake, payload, reason):
    resp = await post(client, payload)
    assert resp.status == 400 and reason in (await resp.json())["error"]
