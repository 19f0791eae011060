"""The webhook server, started for real on a free port and hit over HTTP.

Generic webhook contract, duplicate delivery, every rejection (none reaches the engine, none
is a 5xx), order events driving payment chasing, health and metrics.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from redis_support import open_backend

from bot.testkit import configured
from connectors.crypto import generic as signing
from connectors.generic import GenericConnector

SECRET = "test-secret-0123456789abcdef"


@pytest.fixture(params=["file", "redis"])
def server_parts(request, kefu_app, tmp_path, monkeypatch):
    """The server on a SQLite file and on a real redis-server (its shared inbox and outbox)."""
    monkeypatch.setenv("KEFU_GENERIC_SECRET", SECRET)
    store = open_backend(request.param, tmp_path, request)
    yield kefu_app(connectors={"shop-system": {"type": "generic", "secret": "${KEFU_GENERIC_SECRET}"}},
                   store=store).server
    store.close()


@pytest.fixture
async def client(kefu_client, server_parts):
    return await kefu_client(server_parts)


def signed(payload, secret=SECRET):
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8") if not isinstance(payload, bytes) else payload
    return body, {"X-Kefu-Signature": signing.sign(secret, body), "Content-Type": "application/json"}


MESSAGE = {"conversation_id": "conv-1", "customer_id": "cust-1", "message_id": "m-1", "text": "亲，包邮吗？"}


async def post(client, payload, secret=SECRET, path="/webhook/shop-system", headers=None):
    body, sig = signed(payload, secret)
    return await client.post(path, data=body, headers={**sig, **(headers or {})})


async def test_generic_webhook_answers_with_the_decision(client, server_parts):
    resp = await post(client, MESSAGE)
    assert resp.status == 200
    body = await resp.json()
    assert set(body) == {"kind", "replies", "suggestions", "handoff", "duplicate"}
    assert body["duplicate"] is False
    assert body["kind"] in {"auto_send", "suggest", "hold"}
    assert body["suggestions"][0]["intent"] == "free_shipping"
    if body["kind"] == "auto_send":
        assert body["replies"][-1]["phrase_id"].startswith("shipping.")
        assert all(set(r) == {"text", "phrase_id"} for r in body["replies"])
    assert body["handoff"] is None
    stored = server_parts.store.decisions("shop-system:conv-1")
    assert len(stored) == 1 and stored[0]["delivery"] in {None, "done"}


async def test_duplicate_delivery_is_answered_once(client, server_parts):
    first = await (await post(client, MESSAGE)).json()
    again = await post(client, MESSAGE)
    assert again.status == 200
    second = await again.json()
    assert second["duplicate"] is True
    assert {**second, "duplicate": False} == first
    inbound = [m for m in server_parts.store.recent_messages("shop-system:conv-1", 50) if m.direction == "in"]
    assert len(inbound) == 1
    assert len(server_parts.store.decisions("shop-system:conv-1")) == 1


async def test_handoff_is_in_the_answer(client):
    body = await (await post(client, {**MESSAGE, "message_id": "m-2", "text": "转人工"})).json()
    assert body["kind"] == "handoff"
    assert body["handoff"]["reason"] == "human_request" and body["handoff"]["ticket_id"] is not None


@pytest.mark.parametrize(
    "mutate, status, reason",
    [
        (lambda b, h: (b, {k: v for k, v in h.items() if k != "X-Kefu-Signature"}), 401, "missing"),
        (lambda b, h: (b, {**h, "X-Kefu-Signature": "sha256=" + "0" * 64}), 401, "does not match"),
        (lambda b, h: (b, {**h, "X-Kefu-Signature": "md5=abc"}), 401, "sha256="),
        (lambda b, h: (b + b" ", h), 401, "does not match"),  # body changed after signing
    ],
)
async def test_bad_signatures_are_401(client, server_parts, mutate, status, reason):
    body, headers = signed(MESSAGE)
    body, headers = mutate(body, headers)
    resp = await client.post("/webhook/shop-system", data=body, headers=headers)
    assert resp.status == status
    error = await resp.json()
    assert error["ok"] is False and error["status"] == status and reason in error["error"]
    assert server_parts.store.unprocessed_messages() == []
    assert server_parts.store.decisions() == []


@pytest.mark.parametrize(
    "payload, reason",
    [
        (b"{not json", "body is not JSON"),
        (b"[1, 2]", "body must be a JSON object"),
        (b"\xff\xfe", "body is not UTF-8"),
        ({"conversation_id": "c", "customer_id": "u", "text": "hi"}, "message_id"),
        ({**MESSAGE, "conversation_id": ""}, "conversation_id"),
        ({**MESSAGE, "attachments": "x.jpg"}, "attachments must be a list"),
    ],
)
async def test_malformed_bodies_are_400_with_a_reason(client, server_parts, payload, reason):
    resp = await post(client, payload)
    assert resp.status == 400
    assert reason in (await resp.json())["error"]
    assert server_parts.store.decisions() == []


async def test_oversized_body_is_413(client, server_parts):
    limit = server_parts.config.server.max_body_bytes
    resp = await post(client, {**MESSAGE, "text": "长" * limit})
    assert resp.status == 413
    assert (await resp.json())["status"] == 413


async def test_unknown_connector_is_404(client):
    resp = await post(client, MESSAGE, path="/webhook/nope")
    assert resp.status == 404 and "nope" in (await resp.json())["error"]


async def test_get_on_a_connector_without_url_verification_is_405(client):
    resp = await client.get("/webhook/shop-system")
    assert resp.status == 405


async def test_order_events_drive_payment_chasing(client, server_parts):
    event = {"order_id": "o-1", "customer_id": "cust-1", "status": "created", "consulted_before_order": True}
    resp = await post(client, event, path="/events/order")
    assert resp.status == 200
    assert any("payment chase" in r for r in (await resp.json())["reasons"])
    job = server_parts.store.get_job("payment_chase:o-1")
    assert job is not None and job.status == "pending"
    paid = await post(client, {**event, "status": "paid"}, path="/events/order")
    assert paid.status == 200
    assert server_parts.store.get_job("payment_chase:o-1").status == "cancelled"


@pytest.mark.parametrize(
    "payload, secret, status",
    [
        ({"order_id": "o", "customer_id": "c", "status": "created"}, "wrong-secret-000000000000", 401),
        ({"order_id": "o", "customer_id": "c", "status": "exploded"}, SECRET, 400),
        ({"order_id": "o", "status": "created"}, SECRET, 400),
    ],
)
async def test_bad_order_events(client, server_parts, payload, secret, status):
    resp = await post(client, payload, secret=secret, path="/events/order")
    assert resp.status == status
    assert server_parts.store.get_job("payment_chase:o") is None


async def test_health_and_metrics(client):
    await post(client, MESSAGE)
    await post(client, MESSAGE)
    await post(client, MESSAGE, secret="wrong-secret-000000000000")
    health = await (await client.get("/healthz")).json()
    assert health["ok"] is True and health["connectors"] == ["shop-system"]
    text = await (await client.get("/metrics")).text()
    assert 'kefu_messages_total{connector="shop-system"} 1.0' in text
    assert 'kefu_duplicates_total{connector="shop-system"} 1.0' in text
    assert 'kefu_rejected_total{connector="shop-system",status="401"} 1.0' in text
    assert "kefu_process_seconds_bucket" in text and "kefu_decisions_total" in text


class RecordingConnector(GenericConnector):
    """A generic connector in callback mode that records what the server asks it to do."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls: list[tuple[str, str]] = []

    async def deliver(self, message, decision):
        self.calls.append(("deliver", decision["kind"]))

    async def hand_off(self, message, decision):
        self.calls.append(("hand_off", decision["payload"]["handoff"]["reason"]))


async def test_a_silent_handoff_still_reaches_the_platform(kefu_app, kefu_client, engine):
    """In suggest mode the bot may not even say "a person is coming", but the platform must
    still be told to hand the conversation over."""
    config = configured(engine.config, policy={"mode": "suggest"})
    settings = GenericConnector.Settings(secret=SECRET, mode="callback", callback_url="http://127.0.0.1:9/none")
    connector = RecordingConnector("shop-system", settings, None)
    app = kefu_app(config, connectors={"shop-system": connector})
    store = app.store
    client = await kefu_client(app)
    resp = await post(client, {**MESSAGE, "text": "转人工"})
    assert resp.status == 200
    for _ in range(50):
        if connector.calls:
            break
        await asyncio.sleep(0.1)
    assert connector.calls == [("deliver", "handoff"), ("hand_off", "human_request")]
    (decision,) = store.decisions("shop-system:conv-1")
    assert decision["payload"]["replies"] == [] and decision["delivery"] == "done"
