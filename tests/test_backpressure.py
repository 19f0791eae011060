"""Backpressure: a full worker refuses webhooks with 503 + Retry-After and loses nothing accepted;
callback mode POSTs every decision, suggest-only ones included.

A real server (aiohttp's test server on loopback) with `server.max_queue` of 1 or 2 and the
assistant's processing held on a gate, so the queue fills deterministically; the receiver of
callback mode is a fake platform on loopback.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import threading

import pytest
from aiohttp import web

from bot.app import build
from bot.testkit import engine_under
from bot.web.backpressure import RETRY_AFTER_MAX, Backlog
from connectors.crypto import generic as signing
from connectors.http import Outbound
from tests_support import until

SECRET = "backpressure-secret-0123456789abcdef"


class Gate:
    """Holds `Assistant.process` until opened (the slow worker), and says when it is entered."""

    def __init__(self, process):
        self.process = process
        self.open = threading.Event()
        self.entered = threading.Event()

    def __call__(self, row):
        self.entered.set()
        assert self.open.wait(30), "the test never opened the gate"
        return self.process(row)


def make_server(engine, tmp_path, connector: dict, max_queue: int, suggest_only: bool = False):
    config = engine.config.model_copy(deep=True)
    config.server.max_queue = max_queue
    if suggest_only:
        config.policy.mode = "suggest"  # the bot only suggests: decisions without any reply
    app = build(config, engine=engine_under(config, engine), store=str(tmp_path / "kefu.sqlite"),
                http=Outbound(retries=0), connectors={"shop": {"type": "generic", "secret": SECRET, **connector}})
    assistant = app.assistant
    gate = Gate(assistant.process)
    assistant.process = gate  # the slow processing stub
    return app.server, gate


def body(message_id: str, text: str = "包邮吗", conversation: str = "c1") -> tuple[bytes, dict]:
    raw = json.dumps({"conversation_id": conversation, "customer_id": "u1", "message_id": message_id,
                      "text": text}, ensure_ascii=False).encode()
    return raw, {"X-Kefu-Signature": signing.sign(SECRET, raw), "Content-Type": "application/json"}


async def post(client, message_id: str, text: str = "包邮吗", conversation: str = "c1"):
    raw, headers = body(message_id, text, conversation)
    return await client.post("/webhook/shop", data=raw, headers=headers)


def stored_ids(server) -> list[str]:
    return [m.message_id for m in server.store.recent_messages("shop:c1", 100) if m.direction == "in"]


async def fake_receiver(aiohttp_server, received: list):
    async def callback(request):
        received.append(await request.json())
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/callback", callback)
    return await aiohttp_server(app)


async def assert_refused(resp) -> int:
    assert resp.status == 503
    answer = await resp.json()
    assert answer["ok"] is False and answer["status"] == 503 and "server.max_queue" in answer["error"]
    retry_after = int(resp.headers["Retry-After"])
    assert 1 <= retry_after <= RETRY_AFTER_MAX
    return retry_after


async def test_a_full_callback_worker_refuses_and_loses_nothing(aiohttp_client, aiohttp_server, engine, tmp_path):
    received: list[dict] = []
    receiver = await fake_receiver(aiohttp_server, received)
    server, gate = make_server(engine, tmp_path, {"mode": "callback",
                                                  "callback_url": str(receiver.make_url("/callback"))},
                               max_queue=2, suggest_only=True)
    client = await aiohttp_client(server.app())

    assert (await post(client, "m1")).status == 200  # the worker takes it and is held
    await asyncio.to_thread(gate.entered.wait, 10)
    # the store's writes share the worker's thread: m2 waits to be stored, holding the second slot
    second = asyncio.create_task(post(client, "m2", "能便宜点吗"))
    await until(lambda: server.backlog.count == 2)
    # full: refused at once, without waiting for the worker, and before the body is read
    await assert_refused(await post(client, "m3", "什么时候发货"))
    raw, _ = body("m4")
    await assert_refused(await client.post("/webhook/shop", data=raw,
                                           headers={"X-Kefu-Signature": "sha256=" + "0" * 64}))
    assert not second.done()

    gate.open.set()
    assert (await second).status == 200
    assert stored_ids(server) == ["m1", "m2"]  # refused: not persisted, so the retry is no duplicate
    await until(lambda: len(received) == 2, timeout=20)
    await until(lambda: server.backlog.count == 0)
    assert (await post(client, "m3", "什么时候发货")).status == 200  # the platform's retry
    await until(lambda: len(received) == 3, timeout=20)

    # every accepted message: persisted, processed, and its decision POSTed exactly once
    assert sorted(stored_ids(server)) == ["m1", "m2", "m3"]
    assert server.store.unprocessed_messages() == []
    assert sorted(r["message_id"] for r in received) == ["m1", "m2", "m3"]
    assert {r["kind"] for r in received} == {"suggest"}
    assert all(r["replies"] == [] and r["suggestions"] for r in received)
    decisions = server.store.decisions("shop:c1")
    assert len(decisions) == 3 and all(d["delivery"] == "done" for d in decisions)
    metrics = await (await client.get("/metrics")).text()
    assert re.search(r'kefu_rejected_total\{connector="shop",status="503"\} 2\.0', metrics)
    assert server.backlog.count == 0


async def test_a_full_sync_worker_refuses_while_one_message_is_answered(aiohttp_client, engine, tmp_path):
    server, gate = make_server(engine, tmp_path, {"mode": "sync"}, max_queue=1)
    client = await aiohttp_client(server.app())
    first = asyncio.create_task(post(client, "m1"))
    await asyncio.to_thread(gate.entered.wait, 10)  # m1 is being answered inline: the worker is full
    await assert_refused(await post(client, "m2", "什么时候发货"))
    gate.open.set()  # (the store is busy in m1's transaction until then: read it after)
    answer = await first
    assert answer.status == 200 and (await answer.json())["duplicate"] is False
    assert stored_ids(server) == ["m1"]
    assert server.backlog.count == 0
    retried = await post(client, "m2", "什么时候发货")
    assert retried.status == 200 and (await retried.json())["kind"] != "none"
    # a duplicate delivery and a bad signature do not leak slots either
    assert (await (await post(client, "m2", "什么时候发货")).json())["duplicate"] is True
    raw, _ = body("m9")
    assert (await client.post("/webhook/shop", data=raw, headers={"X-Kefu-Signature": "sha256=" + "0" * 64})
            ).status == 401
    assert server.backlog.count == 0
    assert sorted(stored_ids(server)) == ["m1", "m2"]


async def test_sync_mode_with_a_callback_url_does_not_post_what_its_answer_carried(
        aiohttp_client, aiohttp_server, engine, tmp_path):
    received: list[dict] = []
    receiver = await fake_receiver(aiohttp_server, received)
    server, gate = make_server(engine, tmp_path, {"mode": "sync", "callback_url": str(receiver.make_url("/callback"))},
                               max_queue=10, suggest_only=True)
    gate.open.set()
    client = await aiohttp_client(server.app())
    answer = await (await post(client, "m1")).json()
    assert answer["kind"] == "suggest" and answer["suggestions"]
    await asyncio.sleep(0.3)  # a POST would be on its way by now
    assert received == []
    assert server.assistant.post_every_decision == frozenset()


def test_retry_after_follows_what_the_worker_holds():
    backlog = Backlog(limit=3)
    holds = [backlog.admit() for _ in range(3)]
    assert all(holds) and backlog.full and backlog.admit() is None and backlog.refused == 1
    assert backlog.retry_after() == 1  # nothing measured yet: the minimum
    backlog.processed_in(0.5)
    assert backlog.retry_after() == 2  # 3 held × 0.5 s
    holds[0].resize(40)  # one request brought 40 messages
    assert backlog.count == 42 and backlog.retry_after() == 21
    holds[0].hand_over()  # one of them went to the queue: the worker releases it
    holds[0].release()
    assert backlog.count == 3
    backlog.processed_in(2.5)  # a running mean: one slow message moves it by a twentieth
    assert backlog.retry_after() == math.ceil(3 * (0.95 * 0.5 + 0.05 * 2.5))
    slow = Backlog(limit=1)
    slow.admit()
    slow.processed_in(100.0)
    assert slow.retry_after() == RETRY_AFTER_MAX
    for hold in holds[1:]:
        hold.release()
    backlog.done()  # the worker finished the handed-over message
    assert backlog.count == 0 and not backlog.full


@pytest.mark.parametrize("value", [0, -1])
def test_max_queue_must_be_positive(value, engine):
    from pydantic import ValidationError

    raw = engine.config.model_dump()
    raw["server"]["max_queue"] = value
    with pytest.raises(ValidationError, match="max_queue"):
        type(engine.config).model_validate(raw)
