"""The delivery path: scoped ids, the outbox, held lines for sync-only connectors, agents' messages.

A real server (aiohttp test server on loopback) with real generic connectors; platforms are
fake aiohttp apps on loopback.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from redis_support import open_backend

from bot.app import build
from bot.store import SqliteStore
from bot.testkit import configured, engine_under
from bot.web.server import KefuServer
from connectors.crypto import generic as signing
from connectors.http import Outbound
from connectors.registry import build_connectors
from tests_support import until

SECRET = "delivery-secret-0123456789abcdef"


@pytest.fixture(params=["file", "redis"])
def backend(request, tmp_path):
    """Each server test on a SQLite file and on a real redis-server."""
    store = open_backend(request.param, tmp_path, request)
    yield store
    store.close()


def make_server(engine, store, connectors: dict, **config_changes) -> KefuServer:
    # no quiet hours: the chase may fire whenever the test runs
    flows = {"quiet_hours": "00:00-00:00", **config_changes.pop("flows", {})}
    config = configured(engine.config, flows=flows, **config_changes)
    return build(config, engine=engine_under(config, engine), store=store, http=Outbound(retries=0),
                 connectors={name: {"secret": SECRET, **c} for name, c in connectors.items()}).server


async def post(client, name, payload, path=None):
    body = json.dumps(payload, ensure_ascii=False).encode()
    headers = {"X-Kefu-Signature": signing.sign(SECRET, body), "Content-Type": "application/json"}
    return await client.post(path or f"/webhook/{name}", data=body, headers=headers)


def message(conversation, message_id, text, customer="buyer-1"):
    return {"conversation_id": conversation, "customer_id": customer, "message_id": message_id, "text": text}


async def callback_server(aiohttp_server, callback, engine, store) -> KefuServer:
    """A server whose generic connector ``shop`` (mode callback) POSTs to ``callback``, a fake platform."""
    app = web.Application()
    app.router.add_post("/callback", callback)
    platform = await aiohttp_server(app)
    return make_server(engine, store, {"shop": {"type": "generic", "mode": "callback",
                                                "callback_url": str(platform.make_url("/callback"))}})


# --- scoped identity ---------------------------------------------------------------------------


async def test_two_connectors_and_two_conversations_reusing_ids_never_mix(backend, aiohttp_client, engine, tmp_path):
    server = make_server(engine, backend, {"erp": {"type": "generic"}, "app": {"type": "generic"}})
    client = await aiohttp_client(server.app())
    angry = await (await post(client, "erp", message("123", "m1", "转人工，你们这什么破东西"))).json()
    assert angry["kind"] == "handoff" and angry["handoff"]["summary"]
    # same conversation id and message id, another connector: a new customer, a new decision
    other = await (await post(client, "app", message("123", "m1", "包邮吗"))).json()
    # same connector and message id, another conversation
    reused = await (await post(client, "erp", message("456", "m1", "包邮吗", customer="buyer-2"))).json()
    # same connector, conversation and message id, another text
    retold = await (await post(client, "erp", message("123", "m1", "发什么快递"))).json()
    for body in (other, reused):
        assert body["duplicate"] is False and body["handoff"] is None and body["kind"] != "handoff"
        assert body["suggestions"][0]["intent"] == "free_shipping"
    assert retold["duplicate"] is False
    # a true retry is still a duplicate, answered with its own decision
    again = await (await post(client, "app", message("123", "m1", "包邮吗"))).json()
    assert again == {**other, "duplicate": True}
    store = server.store
    assert store.load_state("erp:123")["owner"] == "human"
    assert store.load_state("app:123")["owner"] == "bot" and store.load_state("erp:456")["owner"] == "bot"
    assert store.load_state("app:123")["customer_id"] == "app:buyer-1"
    assert [d["kind"] for d in store.decisions("app:123")] == [other["kind"]]
    assert store.open_ticket_for("app:123") is None and store.open_ticket_for("erp:456") is None
    assert store.open_ticket_for("erp:123") is not None


def test_the_migration_scopes_existing_rows(tmp_path, monkeypatch):
    import bot.store.sqlite as sqlite

    names = [name for name, _ in sqlite.MIGRATIONS]
    before = sqlite.MIGRATIONS[: names.index("0006_scoped_ids")]
    monkeypatch.setattr(sqlite, "MIGRATIONS", before)
    t0 = datetime(2026, 6, 1, 12, tzinfo=UTC)
    old = SqliteStore(tmp_path / "old.sqlite")
    old.sql("INSERT INTO messages (conversation_id, direction, text, at, platform, message_id, customer_id)"
            " VALUES ('123', 'in', '包邮吗', ?, 'erp', 'm1', 'buyer-1')", (sqlite.to_db_time(t0),))
    old.add_message("123", "out", "亲，包邮的", t0)
    old.save_state("123", "buyer-1", {"conversation_id": "123", "customer_id": "buyer-1", "owner": "human"}, t0)
    old.add_decision("123", t0, "message", "handoff", {"kind": "handoff"}, delivery="pending")
    old.schedule("payment_chase:o1", "payment_chase", t0, "123", {"order_id": "o1", "customer_id": "buyer-1"})
    old.add_ticket("123", "buyer-1", reason="lost_parcel", priority="high", group="aftersale", created_at=t0,
                   sla_due=t0, summary={})
    old.save_state("buyer-9", "buyer-9", {"conversation_id": "buyer-9", "customer_id": "buyer-9"}, t0)  # orders only
    old.close()
    monkeypatch.undo()

    store = SqliteStore(tmp_path / "old.sqlite")
    assert [m.conversation_id for m in store.recent_messages("erp:123")] == ["erp:123", "erp:123"]
    assert store.recent_messages("123") == []
    assert store.get_message(1).customer_id == "erp:buyer-1"
    assert store.load_state("erp:123") == {"conversation_id": "erp:123", "customer_id": "erp:buyer-1",
                                           "owner": "human"}
    assert store.conversation_for_customer("erp:buyer-1") == "erp:123"
    assert [d["conversation_id"] for d in store.decisions()] == ["erp:123"]
    job = store.get_job("payment_chase:o1")
    assert job.conversation_id == "erp:123" and job.payload["customer_id"] == "erp:buyer-1"
    ticket = store.open_ticket_for("erp:123")
    assert ticket is not None and ticket["customer_id"] == "erp:buyer-1"
    assert store.load_state("buyer-9") is not None  # never came through a connector: unchanged
    # the new dedupe key works on the moved rows
    assert store.add_message("erp:123", "in", "包邮吗", t0, platform="erp", message_id="m1")[1] is False
    store.close()


# --- held lines: a connector that cannot push --------------------------------------------------


async def test_sync_mode_chase_is_held_for_the_next_response_never_marked_delivered(backend, aiohttp_client, engine, tmp_path):
    server = make_server(engine, backend, {"shop": {"type": "generic", "mode": "sync"}})
    client = await aiohttp_client(server.app())
    assert (await post(client, "shop", message("c1", "m1", "在吗"))).status == 200
    created = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    resp = await post(client, None, {"order_id": "o-1", "customer_id": "buyer-1", "status": "created", "at": created},
                      path="/events/order")
    assert resp.status == 200
    store = server.store
    chase = await until(lambda: [d for d in store.decisions("shop:c1") if d["trigger"] == "timer"])
    assert chase[0]["payload"]["replies"], chase[0]["payload"]["reasons"]
    item = await until(lambda: server.outbox.for_decision(chase[0]["id"]))
    assert item.status == "held" and store.get_decision(chase[0]["id"])["delivery"] == "pending"
    # the next message of that conversation carries the chase line first
    body = await (await post(client, "shop", message("c1", "m2", "好的"))).json()
    chase_line = chase[0]["payload"]["replies"][0]
    assert body["replies"][0] == {"text": chase_line["text"], "phrase_id": chase_line["id"]}
    assert store.get_decision(chase[0]["id"])["delivery"] == "done"
    assert server.outbox.get(item.id).status == "done"


def test_held_lines_expire_unsent(backend, engine, tmp_path):
    server = make_server(engine, backend, {"shop": {"type": "generic"}})
    store, now = server.store, datetime.now(UTC)
    store.add_message("shop:c1", "in", "在吗", now, platform="shop", message_id="m1")
    decision = store.add_decision("shop:c1", now, "timer", "auto_send", {"replies": [{"id": "x", "text": "t"}]},
                                  delivery="pending")
    item = server.delivery.enqueue(decision, now)
    assert item.status == "held" and item.next_at == now + server.config.outbox.hold_for
    assert server.outbox.expire_held(now + server.config.outbox.hold_for) == 1
    assert server.outbox.get(item.id).status == "expired"
    assert store.get_decision(decision)["delivery"] == "failed"
    assert server.outbox.take_held("shop:c1", now) == []


def test_callback_mode_without_a_url_is_refused_at_start():
    from connectors.registry import ConnectorConfigError

    with pytest.raises(ConnectorConfigError, match="mode callback needs callback_url"):
        build_connectors({"shop": {"type": "generic", "secret": SECRET, "mode": "callback"}})


# --- the one path out: agents' messages --------------------------------------------------------


async def test_an_agent_message_goes_out_through_the_outbox(backend, aiohttp_client, fake_platform, engine, tmp_path):
    url = fake_platform.answer("POST", "/callback", {"ok": True}).url("/callback")
    server = make_server(engine, backend, {"shop": {"type": "generic", "mode": "callback", "callback_url": url}})
    client = await aiohttp_client(server.app())
    assert (await post(client, "shop", message("c1", "m1", "在吗"))).status == 200
    await until(lambda: fake_platform.calls)
    item = await server.send_agent_message("shop:c1", "您好，我是客服小王", "wang")
    assert item.status == "pending" and item.lane == "shop/shop:c1"  # one lane per conversation
    await until(lambda: len(fake_platform.calls) == 2)
    received = [c.json for c in fake_platform.calls]
    assert received[1]["conversation_id"] == "c1"  # the platform gets its own id back
    assert received[1]["replies"] == [{"text": "您好，我是客服小王", "phrase_id": "agent:wang"}]
    await until(lambda: server.outbox.get(item.id).status == "done")
    assert server.store.get_decision(item.decision_id)["delivery"] == "done"
    assert [m.text for m in server.store.recent_messages("shop:c1") if m.direction == "out"][-1] == "您好，我是客服小王"
    with pytest.raises(KeyError):
        await server.send_agent_message("shop:nobody", "hi", "wang")


async def test_a_failing_platform_ends_in_dead_letter_and_can_be_retried(backend, aiohttp_client, aiohttp_server, engine,
                                                                         tmp_path):
    received: list[dict] = []
    state = {"fail": True}

    async def callback(request):
        if state["fail"]:
            return web.json_response({"error": "down"}, status=503)
        received.append(await request.json())
        return web.json_response({})

    server = await callback_server(aiohttp_server, callback, engine, backend)
    client = await aiohttp_client(server.app())
    assert (await post(client, "shop", message("c1", "m1", "包邮吗"))).status == 200
    [dead] = await until(lambda: server.outbox.items("dead"))
    assert dead.attempts == server.config.outbox.attempts and "503" in dead.last_error
    assert server.store.get_decision(dead.decision_id)["delivery"] == "failed"
    health = await client.get("/healthz")
    assert health.status == 503 and "dead-letter" in (await health.json())["error"]
    assert 'kefu_outbox_dead_letters_total{connector="shop"} 1.0' in await (await client.get("/metrics")).text()
    state["fail"] = False
    assert server.outbox.retry([dead.id], datetime.now(UTC)) == 1  # what `kefu outbox retry` does
    await until(lambda: received)  # the running server picks it up
    await until(lambda: server.outbox.get(dead.id).status == "done")
    assert (await client.get("/healthz")).status == 200


# --- one hop to the outbox thread per line ------------------------------------------------------


async def test_a_line_is_marked_delivered_before_the_next_goes_and_in_the_same_hop_as_its_read(
        backend, aiohttp_client, aiohttp_server, engine, tmp_path):
    """Every hop between the event loop and the outbox thread waits for the GIL while the writer
    runs turns, so the lane marks a sent line and reads the next in one call — and the mark is
    still written before the next line is sent (at most one line sent and not marked)."""
    server_box: dict = {}
    release = asyncio.Event()
    seen: list[tuple[str, list[str]]] = []

    async def callback(request):
        body = await request.json()
        await release.wait()  # the first line waits until all five are queued behind it
        seen.append((body["message_id"], [i.id for i in server_box["server"].outbox.items("done")]))
        return web.json_response({})

    server = await callback_server(aiohttp_server, callback, engine, backend)
    server_box["server"] = server
    delivery = server.delivery
    hops: list[str] = []
    real = delivery._db

    async def counted(fn, *args):
        if fn in (delivery._next, delivery.outbox.delivered):
            hops.append(fn.__name__)
        return await real(fn, *args)

    delivery._db = counted
    client = await aiohttp_client(server.app())
    for n, text in enumerate(["包邮吗", "发什么快递", "能便宜点吗", "可以开发票吗", "几天能到"]):  # one lane
        assert (await post(client, "shop", message("c1", f"m{n}", text))).status == 200
    await until(lambda: sum(server.outbox.counts().values()) == 5)
    release.set()
    await until(lambda: server.outbox.counts().get("done") == 5)
    assert len(seen) == 5
    for k, (_, done_before) in enumerate(seen):
        assert len(done_before) == k, f"line {k} went out with {len(done_before)} earlier lines marked"
    assert hops.count("delivered") == 0  # every mark rode with the lane's next read
    assert hops.count("_next") <= 5 + 2  # one read per line, the first, and the one that found the lane empty


async def test_a_slow_callback_delays_only_its_own_conversation(backend, aiohttp_client, aiohttp_server, engine,
                                                                tmp_path):
    """The generic webhook has one lane per conversation: a callback the shop's system is slow to
    answer holds back that conversation's next lines, never another conversation's."""
    stuck = asyncio.Event()
    arrived: list[str] = []

    async def callback(request):
        body = await request.json()
        arrived.append(body["conversation_id"])
        if body["conversation_id"] == "slow":
            await stuck.wait()
        return web.json_response({})

    server = await callback_server(aiohttp_server, callback, engine, backend)
    client = await aiohttp_client(server.app())
    assert (await post(client, "shop", message("slow", "m1", "包邮吗", customer="b1"))).status == 200
    await until(lambda: arrived == ["slow"])
    assert (await post(client, "shop", message("slow", "m2", "发什么快递", customer="b1"))).status == 200
    assert (await post(client, "shop", message("quick", "m1", "包邮吗", customer="b2"))).status == 200
    await until(lambda: "quick" in arrived)  # while the slow conversation's first line is still unanswered
    assert arrived == ["slow", "quick"]  # the slow conversation's second line waits behind its first
    stuck.set()
    await until(lambda: server.outbox.counts().get("done") == 3)
    assert arrived == ["slow", "quick", "slow"]
