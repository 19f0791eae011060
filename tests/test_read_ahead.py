"""Queued messages read in one classifier batch are decided exactly as when processed one by one.

The server's worker takes every message waiting in its queue at once (`KefuServer._worker`);
it reads their texts in one matrix product (`Engine.read_ahead`, `FastScorer.score_many`) and
then runs their turns one by one, in accept order, each finding its reading ready. Whatever a
turn reads from its conversation (a short answer to the open question, a follow-up of the last
intent, the haggling ladder) still happens in the turn. So the decisions must be the very
ones of a worker that takes one message at a time: same conversations, same order, same
payloads. Both runs are real servers (aiohttp's test server, the real pipeline, a real SQLite
file) at the same fixed time.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.app import build
from bot.engine import load_shop_training_set
from bot.identity import scoped
from bot.models import Inbound
from bot.scheduler import ManualClock
from bot.testkit import engine_under
from connectors.http import Outbound
from tests_support import until

SECRET = "read-ahead-secret-0123456789abcdef"
#: Turns whose reading depends on the conversation, beside plain questions: short answers to the
#: bot's question, a follow-up, the same text twice in a conversation (the ladder climbs), a
#: question behind a greeting, several questions in one message, thanks and goodbye.
CONTEXTUAL = ["在吗", "能便宜点吗", "能便宜点吗", "是的", "好的，什么时候发货", "包邮吗？什么时候发货",
              "没有了，谢谢", "嗯", "我要退货", "订单号 230817654321", "那运费谁出", "谢谢，服务真好"]
CONVERSATIONS = 5


def messages(engine) -> list[tuple[str, str, str]]:
    """(conversation, message id, text): contextual turns and a spread of the default training
    lines, interleaved over a few conversations, under the worker's batch size (64)."""
    texts, _ = load_shop_training_set(engine.config).pairs()
    spread = texts[:: max(1, len(texts) // 48)][:48]
    return [(f"c{i % CONVERSATIONS}", f"m{i}", text) for i, text in enumerate([*CONTEXTUAL, *spread])]


def make_server(engine, tmp_path, name: str):
    config = engine.config.model_copy(deep=True)
    config.flows.quiet_hours = "00:00-00:00"
    config.policy.mode = "away"  # nobody online: the bot decides replies on its own
    clock = ManualClock(datetime(2026, 3, 10, 14, 0, tzinfo=ZoneInfo("Asia/Shanghai")))
    return build(config, engine=engine_under(config, engine), store=str(tmp_path / f"{name}.sqlite"), clock=clock,
                 http=Outbound(retries=0), connectors={"shop": {"type": "generic", "secret": SECRET}}).server


async def decided(aiohttp_client, server, sent: list[tuple[str, str, str]]) -> list[tuple]:
    """Accept every message before the server starts (a restart's recovery queues them all at
    once), run the server until all are processed, and list its message decisions in order."""
    for conversation, message_id, text in sent:
        _, new = server.assistant.accept(scoped(Inbound(connector="shop", conversation_id=conversation,
                                                        customer_id=f"u-{conversation}", message_id=message_id,
                                                        text=text)))
        assert new
    await aiohttp_client(server.app())
    await until(lambda: not server.store.unprocessed_messages(), timeout=60)
    await until(lambda: server.backlog.count == 0, timeout=30)
    ids = {m.id: m.message_id for c in range(CONVERSATIONS) for m in server.store.recent_messages(f"shop:c{c}", 500)}
    return [(d["conversation_id"], ids[d["message_row"]], d["kind"], d["payload"])
            for d in sorted(server.store.decisions(), key=lambda d: d["id"]) if d["trigger"] == "message"]


async def test_a_batch_of_queued_messages_is_decided_as_one_by_one(aiohttp_client, engine, tmp_path):
    sent = messages(engine)
    assert 40 < len(sent) <= 64

    batched = make_server(engine, tmp_path, "batched")
    together = await decided(aiohttp_client, batched, sent)
    ahead = batched.assistant.engine.ahead
    assert ahead.hits == len(sent), "every turn found its reading in the batch read ahead"
    assert len(ahead) == 0, "the batch is let go once its turns are done"
    read = batched.metrics.registry.get_sample_value("kefu_read_ahead_texts_total")
    assert read == len({text for _, _, text in sent}), "/metrics counts the distinct texts read ahead"

    alone = make_server(engine, tmp_path, "alone")
    alone._executor.max_batch = 1  # the worker takes one message at a time: no batch to read ahead
    one_by_one = await decided(aiohttp_client, alone, sent)
    assert alone.assistant.engine.ahead.hits == 0

    assert [d[1] for d in together] == [m for _, m, _ in sent], "decided in accept order"
    assert len(together) == len(one_by_one) == len(sent)
    for got, want in zip(together, one_by_one, strict=True):
        assert got == want
    kinds = {kind for _, _, kind, _ in together}
    assert len(kinds) > 1, f"the turns are varied enough to show something: {kinds}"
    for store in (batched.store, alone.store):
        store.close()


async def test_reading_ahead_that_fails_leaves_each_turn_to_read_its_own_message(
        aiohttp_client, engine, tmp_path, monkeypatch):
    sent = messages(engine)[:12]
    server = make_server(engine, tmp_path, "failing")

    def broken(texts):
        raise RuntimeError("classifier batch failed")

    monkeypatch.setattr(server.assistant.engine, "read_ahead", broken)
    decisions = await decided(aiohttp_client, server, sent)
    assert [d[1] for d in decisions] == [m for _, m, _ in sent]
    assert server.assistant.engine.ahead.hits == 0
    assert all(d[2] != "handoff" or "processing_failed" not in str(d[3]) for d in decisions)
    server.store.close()
