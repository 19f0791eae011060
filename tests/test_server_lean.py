"""What `kefu serve` does per request beyond the Assistant, kept lean (issue 12, server ÷ Assistant):

- a sync answer is built from the turn's own `Decision` instead of being read back — it must
  be exactly what the store holds (a duplicate delivery, read from the store, answers the same);
- the decision's delivery mark is what it was before: ``done`` when it had to go out (it went,
  in the response), nothing when there was nothing to send;
- a held line is taken per conversation; its stale lines expire, other conversations' wait for
  the sweep;
- ``server.access_log``: failed requests only by default, every request with ``all``;
- request ids stay unique without a uuid4 per request.

A real server on aiohttp's test server, the real pipeline, a real SQLite file.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime, timedelta

from bot.testkit import configured
from bot.web.server import needs_delivery
from connectors.crypto import generic as signing
from connectors.generic import decision_body

SECRET = "lean-secret-0123456789abcdef"
TEXTS = ["包邮吗", "亲，包邮吗？", "什么时候发货", "能便宜点吗", "可以开发票吗", "怎么退货", "在吗", "你好",
         "谢谢", "收到的东西坏了", "少发了一个配件", "我要投诉", "转人工", "买20个有批发价吗",
         "我的快递到哪了，订单号 2381234567890", "能改地址吗，改成北京市朝阳区", "送赠品吗", "尺寸是多大的"]


def signed(payload: dict) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return body, {"X-Kefu-Signature": signing.sign(SECRET, body), "Content-Type": "application/json"}


async def post(client, payload: dict, **headers: str):
    body, sig = signed(payload)
    return await client.post("/webhook/shop", data=body, headers={**sig, **headers})


def make(kefu_app, engine, **config_changes):
    config = configured(engine.config, flows={"quiet_hours": "00:00-00:00"}, **config_changes)
    return kefu_app(config, connectors={"shop": {"type": "generic", "secret": SECRET}}).server


async def test_every_inline_answer_is_the_stored_decision_and_a_duplicate_answers_the_same(
        kefu_app, kefu_client, engine):
    server = make(kefu_app, engine)
    client = await kefu_client(server)
    first: dict[str, dict] = {}
    for n, text in enumerate(TEXTS * 2):  # every text in 6 conversations: greetings, handoffs, follow-ups
        payload = {"conversation_id": f"c{n % 6}", "customer_id": f"u{n % 6}", "message_id": f"m{n}", "text": text}
        resp = await post(client, payload)
        assert resp.status == 200
        first[payload["message_id"]] = await resp.json()
    store = server.store
    kinds = set()
    for message_id, body in first.items():
        row = next(m for m in store.recent_messages(f"shop:c{int(message_id[1:]) % 6}", 100)
                   if m.message_id == message_id)
        stored = store.decision_for_message(row.id)
        kinds.add(stored["kind"])
        assert body == decision_body({**stored["payload"], "kind": stored["kind"]}, False), message_id
    assert {"auto_send", "handoff"} <= kinds, "the texts reach more than one kind of decision"
    # the same messages again: answered from the store (read back), identical but for the flag
    for n in (0, 11, 12, 30):
        payload = {"conversation_id": f"c{n % 6}", "customer_id": f"u{n % 6}", "message_id": f"m{n}",
                   "text": (TEXTS * 2)[n]}
        again = await (await post(client, payload)).json()
        assert again == {**first[f"m{n}"], "duplicate": True}


def test_the_payload_answered_inline_is_the_whole_stored_payload(kefu_app, engine):
    """Every key, not only those the generic body shows: other sync connectors read others."""
    from bot.identity import scoped
    from bot.models import Inbound

    server = make(kefu_app, engine)
    for n, text in enumerate(TEXTS):
        inbound = scoped(Inbound(connector="shop", conversation_id=f"c{n % 4}", customer_id=f"u{n % 4}",
                                 message_id=f"m{n}", text=text))
        row, new, answered = server._accept_and_answer(inbound)
        assert new
        stored = server.store.decision_for_message(row)
        assert answered == {**stored["payload"], "kind": stored["kind"]}, text
        row, new, again = server._accept_and_answer(inbound)
        assert not new and again == answered


async def test_delivery_marks_are_done_where_a_line_went_out_and_empty_where_nothing_had_to(
        kefu_app, kefu_client, engine):
    from bot.models import Decision

    server = make(kefu_app, engine)
    client = await kefu_client(server)
    for n, text in enumerate(TEXTS):
        payload = {"conversation_id": f"c{n % 3}", "customer_id": f"u{n % 3}", "message_id": f"m{n}", "text": text}
        assert (await post(client, payload)).status == 200
    marks = set()
    for d in server.store.decisions():
        decision = Decision.model_validate(d["payload"])
        expected = "done" if needs_delivery(decision) else None
        assert d["delivery"] == expected, (d["kind"], d["payload"].get("replies"))
        marks.add(d["delivery"])
    assert marks == {"done", None}, "both cases occurred"


def test_taking_held_lines_expires_the_stale_ones_of_that_conversation_only(kefu_app, engine):
    server = make(kefu_app, engine)
    store, outbox, now = server.store, server.outbox, datetime.now(UTC)

    def held(conversation: str, text: str, until: datetime) -> int:
        store.add_message(conversation, "in", "在吗", now, platform="shop", message_id=f"in-{text}")
        decision = store.add_decision(conversation, now, "timer", "auto_send",
                                      {"replies": [{"id": "x", "text": text}]}, delivery="pending")
        item = server.delivery.enqueue(decision, now)
        assert item.status == "held"
        store.sql("UPDATE outbox SET next_at = ? WHERE id = ?",
                  (until.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z", item.id))
        return decision

    stale = held("shop:c1", "old", now - timedelta(minutes=1))
    fresh = held("shop:c1", "new", now + timedelta(hours=1))
    elsewhere = held("shop:c2", "other", now - timedelta(minutes=1))
    with store.transaction():
        taken = outbox.take_held("shop:c1", now)
    assert [item.decision_id for item in taken] == [fresh]
    assert store.get_decision(fresh)["delivery"] == "done"
    assert store.get_decision(stale)["delivery"] == "failed", "expired, never marked delivered"
    assert outbox.for_decision(stale).status == "expired"
    assert outbox.for_decision(elsewhere).status == "held", "another conversation's: left to the sweep"
    assert outbox.expire_held(now) == 1 and outbox.for_decision(elsewhere).status == "expired"
    assert outbox.take_held("shop:c3", now) == []


async def test_the_access_log_has_failed_requests_by_default_and_every_request_with_all(
        kefu_app, kefu_client, engine, caplog):
    payload = {"conversation_id": "c1", "customer_id": "u1", "message_id": "m1", "text": "包邮吗"}
    caplog.set_level(logging.INFO, logger="aiohttp.access")

    lean = await kefu_client(make(kefu_app, engine))
    assert (await post(lean, payload)).status == 200
    bad = await lean.post("/webhook/shop", data=b"{}", headers={"X-Kefu-Signature": "sha256=" + "0" * 64})
    assert bad.status == 401
    assert (await lean.get("/no/such/route")).status == 404
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert len(lines) == 2, lines
    assert '"POST /webhook/shop HTTP/1.1" 401' in lines[0] and '"GET /no/such/route HTTP/1.1" 404' in lines[1]

    caplog.clear()
    every = await kefu_client(make(kefu_app, engine, server={"access_log": "all"}))
    assert (await post(every, {**payload, "message_id": "m2"})).status == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert len(lines) == 1 and '"POST /webhook/shop HTTP/1.1" 200' in lines[0]


async def test_request_ids_are_fresh_per_request_unless_the_caller_sent_a_sane_one(kefu_app, kefu_client, engine):
    client = await kefu_client(make(kefu_app, engine))
    ids = [(await client.get("/no/such/route")).headers["X-Request-Id"] for _ in range(5)]
    assert len(set(ids)) == 5 and all(re.fullmatch(r"[0-9a-f]{16}", i) for i in ids)
    assert (await client.get("/healthz", headers={"X-Request-Id": "shop-7.a"})).headers["X-Request-Id"] == "shop-7.a"
    odd = (await client.get("/healthz", headers={"X-Request-Id": "no spaces/here"})).headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{16}", odd)


async def test_a_lane_reads_its_head_decision_and_message_in_one_store_call(kefu_app, kefu_client, engine,
                                                                           aiohttp_server):
    """Callback mode: per delivery, one call on the outbox thread reads what the attempt needs
    (under one hold of the store's lock), and the next such call marks it delivered — not four
    calls, nor two."""
    from test_backpressure import fake_receiver

    from tests_support import until

    received: list[dict] = []
    platform = await fake_receiver(aiohttp_server, received)
    config = configured(engine.config, flows={"quiet_hours": "00:00-00:00"}, policy={"mode": "away"})
    server = kefu_app(config, connectors={"shop": {"type": "generic", "secret": SECRET, "mode": "callback",
                                                   "callback_url": str(platform.make_url("/callback"))}}).server
    calls: list[str] = []
    real = server.delivery._db

    async def counted(fn, *args):
        calls.append(getattr(fn, "__name__", repr(fn)))
        return await real(fn, *args)

    server.delivery._db = counted
    client = await kefu_client(server)
    for n, text in enumerate(["包邮吗", "发什么快递", "能便宜点吗", "可以开发票吗"]):
        payload = {"conversation_id": f"c{n}", "customer_id": f"u{n}", "message_id": f"m{n}", "text": text}
        assert (await post(client, payload)).status == 200
    await until(lambda: len(received) >= 4, timeout=30)
    await until(lambda: not server.store.pending_deliveries(), timeout=30)
    assert sorted(r["message_id"] for r in received) == ["m0", "m1", "m2", "m3"]
    assert calls.count("delivered") == 0  # each mark rides with the lane's next read
    assert "get_decision" not in calls and "reply_context" not in calls and "head" not in calls
    assert 4 <= calls.count("_next") <= 4 + 4  # + the look that marks a drain's last line and finds none


def test_reading_holds_the_store_lock_across_reads(kefu_app, engine):
    import threading

    store = make(kefu_app, engine).store
    entered, wrote = threading.Event(), threading.Event()

    def writer() -> None:
        entered.wait(5)
        store.sql("INSERT INTO health_probe (id, at) VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET at = 'x'")
        wrote.set()

    thread = threading.Thread(target=writer)
    thread.start()
    with store.reading():
        entered.set()
        assert not wrote.wait(0.3), "another thread's statement waits while the reads hold the lock"
    assert wrote.wait(5)
    thread.join(5)
