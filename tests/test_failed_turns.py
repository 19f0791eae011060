"""A message whose processing fails goes to a person with a ticket and is marked processed:
never left unprocessed to fail again at every restart (bot/handoff/failed.py).

The failure used is a real one: a saved conversation state this code cannot read (as after a
downgrade), so answering the message raises inside the assistant's own transaction.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
from datetime import UTC, datetime

import pytest
import yaml
from aiohttp import ClientSession, web
from test_server_crash import free_port, start_server

from bot.handoff.failed import REASON, answer_or_hand_over, is_turn_failure, lost_detail
from bot.identity import scope
from bot.store import SqliteStore
from connectors.crypto import generic as signing
from tests_support import write_config

SECRET = "crash-test-secret-0123456789"  # the one tests/test_server_crash.py's start_server sets
UNREADABLE = {"conversation_id": "x", "customer_id": "x", "owner": "a martian", "stage": 42}


def break_state(store: SqliteStore, conversation_id: str) -> None:
    store.save_state(conversation_id, conversation_id, UNREADABLE, datetime(2026, 3, 2, tzinfo=UTC))


def message(conversation: str, message_id: str, text: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"conversation_id": conversation, "customer_id": conversation, "message_id": message_id,
                       "text": text}, ensure_ascii=False).encode()
    return body, {"X-Kefu-Signature": signing.sign(SECRET, body), "Content-Type": "application/json"}


@pytest.mark.usefixtures("engine")  # the session model exists: the subprocess starts fast
async def test_kefu_serve_hands_a_failing_turn_to_a_person_once_and_a_restart_does_not_retry_it(
        aiohttp_server, session_dir, tmp_path):
    received: list[dict] = []

    async def callback(request: web.Request) -> web.Response:
        body = await request.read()
        signing.verify(SECRET, request.headers.get("X-Kefu-Signature"), body)
        received.append(json.loads(body))
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/callback", callback)
    fake = await aiohttp_server(app)
    path = tmp_path / "kefu.sqlite"
    config = write_config(tmp_path, intents={"model_path": str(session_dir / "intent-model.joblib")},
                          store={"path": str(path)})
    raw = yaml.safe_load(config.read_text(encoding="utf-8"))
    raw["connectors"] = {"shop-system": {"type": "generic", "secret": "${KEFU_GENERIC_SECRET}",
                                         "mode": "callback", "callback_url": str(fake.make_url("/callback"))}}
    config.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    store = SqliteStore(path)
    break_state(store, scope("shop-system", "bad"))
    store.close()

    port = free_port()
    proc = await start_server(config, port)
    try:
        async with ClientSession() as http:
            for conversation, mid, text in [("bad", "m1", "我的快递丢了，单号 1234"), ("good", "m2", "包邮吗")]:
                body, headers = message(conversation, mid, text)
                async with http.post(f"http://127.0.0.1:{port}/webhook/shop-system", data=body,
                                     headers=headers) as resp:
                    assert resp.status == 200 and (await resp.json())["accepted"] is True
            for _ in range(300):
                if len(received) >= 2:
                    break
                await asyncio.sleep(0.1)
            async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
                metrics = await resp.text()
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), timeout=30)
    by_message = {r["message_id"]: r for r in received}
    assert set(by_message) == {"m1", "m2"}, received  # the bad turn did not stop the next one
    handed = by_message["m1"]
    assert handed["kind"] == "handoff" and handed["handoff"]["reason"] == REASON
    assert handed["handoff"]["priority"] == "high"
    assert by_message["m2"]["kind"] != "handoff" or by_message["m2"]["handoff"]["reason"] != REASON
    assert "kefu_failed_turns_total 1.0" in metrics

    def recorded():
        store = SqliteStore(path)
        try:
            bad = scope("shop-system", "bad")
            ticket = store.open_ticket_for(bad)
            decisions = [d for d in store.decisions(bad) if d["trigger"] == "message"]
            return ticket, decisions, [m.id for m in store.unprocessed_messages()]
        finally:
            store.close()

    ticket, decisions, unprocessed = recorded()
    assert ticket["reason"] == REASON and ticket["priority"] == "high"
    assert ticket["summary"]["lost"] == {"text": "我的快递丢了，单号 1234", "message_id": "m1",
                                         "error": "ValidationError"}
    assert "the bot did not answer" in ticket["summary"]["detail"]
    assert len(decisions) == 1 and decisions[0]["kind"] == "handoff"
    assert unprocessed == []

    proc = await start_server(config, port)  # a restart: nothing is left to fail again
    try:
        await asyncio.sleep(1.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), timeout=30)
    again_ticket, again_decisions, again_unprocessed = recorded()
    assert again_ticket["id"] == ticket["id"]
    assert len(again_decisions) == 1 and again_unprocessed == []
    assert len(received) == 2


@pytest.fixture
def server(engine, tmp_path, monkeypatch):
    from agent_helpers import make_server

    monkeypatch.setenv("KEFU_GENERIC_SECRET", SECRET)
    server = make_server(engine, tmp_path / "kefu.sqlite", connectors={
        "shop": {"type": "generic", "secret": "${KEFU_GENERIC_SECRET}"}})
    yield server
    server.store.close()


async def test_a_sync_webhook_whose_turn_fails_answers_the_handoff_not_a_500(aiohttp_client, server):
    break_state(server.store, scope("shop", "bad"))
    client = await aiohttp_client(server.app())
    body, headers = message("bad", "m1", "在吗")
    resp = await client.post("/webhook/shop", data=body, headers=headers)
    payload = await resp.json()
    assert resp.status == 200, payload
    assert payload["kind"] == "handoff" and payload["handoff"]["reason"] == REASON
    assert server.store.unprocessed_messages() == []
    assert server.store.open_ticket_for(scope("shop", "bad"))["priority"] == "high"
    again = await client.post("/webhook/shop", data=body, headers=headers)  # the platform retries
    assert (await again.json())["duplicate"] is True
    assert len([d for d in server.store.decisions(scope("shop", "bad")) if d["trigger"] == "message"]) == 1


def test_a_store_that_cannot_write_is_not_the_turns_fault_and_the_message_waits(server, monkeypatch):
    from bot.models import Inbound

    row, _ = server.assistant.accept(Inbound(platform="shop", conversation_id="shop:c", customer_id="shop:c",
                                             message_id="m1", text="包邮吗"))

    def full(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(server.assistant, "process", full)
    with pytest.raises(sqlite3.OperationalError):
        answer_or_hand_over(server.assistant, row)
    assert [m.id for m in server.store.unprocessed_messages()] == [row]
    assert server.store.open_ticket_for("shop:c") is None
    assert not is_turn_failure(sqlite3.OperationalError("locked")) and is_turn_failure(KeyError("x"))


def test_replay_goes_on_after_a_failing_turn(engine, tmp_path):
    from bot.replay import Replay, load_script

    script = tmp_path / "chat.yaml"
    script.write_text(yaml.safe_dump({"clock": "2026-03-02T10:00:00+08:00", "events": [
        {"customer": "bad", "text": "在吗"}, {"customer": "good", "text": "包邮吗"}]}, allow_unicode=True),
        encoding="utf-8")
    start, agents_online, events = load_script(script, engine.config)
    store = SqliteStore(":memory:")
    break_state(store, "bad")
    lines = Replay(engine, start, agents_online, store).run(events)
    assert [(line.customer, line.kind) for line in lines][0] == ("bad", "handoff")
    assert lines[0].handoff and REASON in str(lines[0].handoff)
    assert [line.customer for line in lines][-1] == "good"
    assert store.unprocessed_messages() == []


def test_the_detail_cuts_long_words_and_names_the_error():
    detail = lost_detail("很" * 200, ValueError("x"))
    assert detail.startswith("processing failed (ValueError): the bot did not answer this message")
    assert "很" * 80 + "…" in detail and "很" * 81 not in detail
