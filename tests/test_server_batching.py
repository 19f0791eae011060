"""The server's worker in batches: waiting messages are processed together, in order, each
committed once, and a webhook's accept shares a commit with the accepts waiting beside it.

A real server (aiohttp's test server on loopback, the real pipeline, a real SQLite file) and a
fake platform receiving callback mode's POSTs. The rounds are made deterministic either by the
recovery path (messages accepted before the server starts are queued together at start) or by
holding the store's writer on a first job while webhooks queue behind it.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading

from test_backpressure import fake_receiver
from test_store_commits import PROCESSED, Commits, accepts, processings, statements

from bot.app import build
from bot.identity import scoped
from bot.models import Inbound
from bot.testkit import engine_under
from connectors.crypto import generic as signing
from connectors.http import Outbound
from tests_support import until

SECRET = "batching-secret-0123456789abcdef"
TEXTS = ["包邮吗", "发什么快递", "在吗", "能便宜点吗", "什么时候发货", "可以开发票吗"]


def make_server(engine, tmp_path, connector: dict):
    config = engine.config.model_copy(deep=True)
    config.flows.quiet_hours = "00:00-00:00"
    config.policy.mode = "away"  # nobody online: the bot replies, and callback mode posts it
    return build(config, engine=engine_under(config, engine), store=str(tmp_path / "kefu.sqlite"),
                 http=Outbound(retries=0), connectors={"shop": {"type": "generic", "secret": SECRET, **connector}}
                 ).server


def message(n: int) -> tuple[str, str, str]:
    """(conversation, message id, text) of message n: four conversations, interleaved."""
    return f"c{n % 4}", f"m{n}", TEXTS[n % len(TEXTS)]


def in_order(server) -> dict[str, list[int]]:
    """Per conversation: the message rows its message decisions answer, in the order decided."""
    order: dict[str, list[int]] = {}
    for d in sorted(server.store.decisions(), key=lambda d: d["id"]):
        if d["trigger"] == "message":
            order.setdefault(d["conversation_id"], []).append(d["message_row"])
    return order


async def test_waiting_messages_are_processed_in_one_commit_in_accept_order_each_posted_once(
        aiohttp_client, aiohttp_server, engine, tmp_path):
    received: list[dict] = []
    platform = await fake_receiver(aiohttp_server, received)
    server = make_server(engine, tmp_path, {"mode": "callback", "callback_url": str(platform.make_url("/callback"))})
    n = 12
    rows = []
    for i in range(n):  # accepted before the server starts (a restart after a crash): queued together
        conversation, message_id, text = message(i)
        row, new = server.assistant.accept(scoped(Inbound(connector="shop", conversation_id=conversation,
                                                          customer_id=f"u-{conversation}", message_id=message_id,
                                                          text=text)))
        assert new
        rows.append(row)
    counter = Commits(server.store)
    await aiohttp_client(server.app())
    await until(lambda: len(received) >= n, timeout=30)
    await until(lambda: not server.store.pending_deliveries(), timeout=30)
    await asyncio.sleep(0.3)  # a second POST of any decision would come now
    commits = counter.stop()

    assert server.store.unprocessed_messages() == []
    assert server._executor.stats.largest >= n, "the worker handed the waiting messages over as one round"
    turns = processings(commits)
    assert len(turns) == 1 and turns[0].durable and statements(turns, PROCESSED) == n
    # per conversation, the decisions answer the messages in the order they were accepted
    order = in_order(server)
    assert sum(len(v) for v in order.values()) == n
    for conversation, answered in order.items():
        assert answered == sorted(answered), (conversation, answered)
    assert sorted(r["message_id"] for r in received) == sorted(f"m{i}" for i in range(n)), "each posted once"
    assert server.backlog.count == 0, "one backlog.done() per processed row"


async def test_concurrent_webhooks_share_the_accept_commit_and_keep_each_conversations_order(
        aiohttp_client, engine, tmp_path):
    server = make_server(engine, tmp_path, {})  # sync mode: the answer carries the decision
    client = await aiohttp_client(server.app())
    await until(lambda: server.worker_task is not None)
    server.timer_task.cancel()  # only the webhooks' jobs reach the writer from now on
    await asyncio.gather(server.timer_task, return_exceptions=True)
    writer = server._executor
    started, go = threading.Event(), threading.Event()

    def busy() -> bool:
        started.set()
        return go.wait(30)

    held = writer.submit(busy)  # the store's writer is busy: what comes now waits for it
    assert started.wait(10)
    counter = Commits(server.store)

    async def post(i: int):
        conversation, message_id, text = message(i)
        raw = json.dumps({"conversation_id": conversation, "customer_id": f"u-{conversation}",
                          "message_id": message_id, "text": text}, ensure_ascii=False).encode()
        headers = {"X-Kefu-Signature": signing.sign(SECRET, raw), "Content-Type": "application/json"}
        response = await client.post("/webhook/shop", data=raw, headers=headers)
        return response.status, await response.json()

    def accepts_queued() -> int:  # other jobs come too (the agent feed polls the store)
        return sum(job.fn == server._accept_and_answer for job in list(writer._jobs))

    n = 12
    posts = []
    for i in range(n):  # one after another reaches the writer's queue: that order is the accept order
        posts.append(asyncio.create_task(post(i)))
        await until(lambda: accepts_queued() == len(posts))
    go.set()
    assert held.result(10) is True
    answers = await asyncio.gather(*posts)
    commits = counter.stop()

    assert all(status == 200 for status, _ in answers), answers
    assert all(body.get("duplicate") is False and "kind" in body for _, body in answers), answers[0]
    # the twelve accepts (and their turns: sync mode answers in the same job) were one durable
    # commit; no message was written by two
    assert len(accepts(commits)) == 1 and accepts(commits)[0].durable
    assert statements(commits, PROCESSED) == n and all(c.durable for c in commits)
    assert len(commits) < 2 * n
    rows = {m.message_id: m.id for c in range(4) for m in server.store.recent_messages(f"shop:c{c}", 100)
            if m.direction == "in"}
    assert [rows[f"m{i}"] for i in range(n)] == sorted(rows.values()), "accepted in the order they came"
    for conversation, answered in in_order(server).items():
        assert answered == sorted(answered), (conversation, answered)
    assert server.store.unprocessed_messages() == []


async def test_a_store_error_on_one_message_of_a_batch_leaves_only_that_one_unprocessed(
        aiohttp_client, aiohttp_server, engine, tmp_path):
    received: list[dict] = []
    platform = await fake_receiver(aiohttp_server, received)
    server = make_server(engine, tmp_path, {"mode": "callback", "callback_url": str(platform.make_url("/callback"))})
    rows = [server.assistant.accept(scoped(Inbound(connector="shop", conversation_id=f"c{i}", customer_id=f"u{i}",
                                                   message_id=f"m{i}", text=TEXTS[i])))[0] for i in range(5)]
    bad = rows[2]
    real = server._process_and_queue

    def process_and_queue(row: int):
        item = real(row)  # its writes are made, then the store fails: they must be undone
        if row == bad:
            raise sqlite3.OperationalError("disk I/O error")
        return item

    server._process_and_queue = process_and_queue
    await aiohttp_client(server.app())
    await until(lambda: len(received) >= 4, timeout=30)
    await until(lambda: server.backlog.count == 0, timeout=30)
    assert [m.id for m in server.store.unprocessed_messages()] == [bad]
    assert server.store.decision_for_message(bad) is None, "the failed message's turn was rolled back"
    assert sorted(r["message_id"] for r in received) == ["m0", "m1", "m3", "m4"]
    assert server._executor.stats.largest >= 5
    assert server.assistant.pending() == [bad], "a restart processes it again"
