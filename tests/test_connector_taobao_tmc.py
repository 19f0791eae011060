"""The TMC poller (connectors/taobao_tmc.py) against a fake TOP gateway that checks every signature.

The real server runs in-process with a `taobao_tmc` connector; customer messages arrive through
the generic webhook, as an ISV bridge beside 千牛 would send them. A separate test kills a real
`kefu serve` with SIGKILL between consume and confirm.
"""

from __future__ import annotations

import asyncio
import json
import signal

import pytest
import yaml
from aiohttp import ClientSession
from fake_top import APP_KEY, APP_SECRET, FakeTop, tmc_message

from bot.app import build
from bot.store import SqliteStore
from connectors.crypto import generic as generic_signing
from connectors.http import Outbound
from connectors.registry import ConnectorConfigError, build_connectors
from connectors.taobao_tmc import TOPICS, to_order_event
from tests_support import until, write_config

GENERIC_SECRET = "generic-secret-0123456789"
TID = "3141592653589793"
BIG_ID = 7104300007405429232  # beyond 2**53: must stay exact (alibaba/top test fixture's id)


def settings(base, **over):
    return {"type": "taobao_tmc", "app_key": APP_KEY, "app_secret": "${TB_SECRET}", "api_base": base,
            "sign_method": "hmac-sha256", "group": "default", "poll_seconds": 0.05, **over}


@pytest.fixture
async def gateway(aiohttp_server):
    return await FakeTop().start(aiohttp_server)


@pytest.fixture
async def start(engine, tmp_path, gateway, aiohttp_client, monkeypatch):
    monkeypatch.setenv("TB_SECRET", APP_SECRET)
    started = []

    async def _start(**over):
        store = SqliteStore(tmp_path / "kefu.sqlite")
        http = Outbound(timeout=5.0, retries=0, backoff=0.01)
        server = build(engine.config, engine=engine, store=store, http=http, connectors={
            "taobao-orders": settings(gateway.base, **over),
            "qianniu-bridge": {"type": "generic", "secret": GENERIC_SECRET, "mode": "sync"},
        }).server
        client = await aiohttp_client(server.app())
        started.append((client, store))
        return client, server, store

    yield _start
    for client, store in started:
        await client.close()
        store.close()


async def ask(client, text, mid, customer="tb_xiaoyu", conversation="qn-77"):
    body = json.dumps({"conversation_id": conversation, "customer_id": customer, "message_id": mid,
                       "text": text}, ensure_ascii=False).encode()
    resp = await client.post("/webhook/qianniu-bridge", data=body,
                             headers={"X-Kefu-Signature": generic_signing.sign(GENERIC_SECRET, body)})
    assert resp.status == 200
    return await resp.json()


@pytest.mark.parametrize("method", ["md5", "hmac", "hmac-sha256"])
async def test_orders_arrive_confirmed_and_every_request_is_signed(start, gateway, method):
    gateway.messages = [
        tmc_message(BIG_ID, "taobao_trade_TradeCreate", "2026-11-23 10:00:00", tid=int(TID),
                    buyer_nick="tb_xiaoyu", buyer_open_uid="AAHk5d-open", payment="89.00"),
        tmc_message(BIG_ID + 1, "taobao_trade_TradeBuyerPay", "2026-11-23 10:03:00", tid=int(TID),
                    buyer_nick="tb_xiaoyu", buyer_open_uid="AAHk5d-open"),
        tmc_message(BIG_ID + 2, "taobao_item_ItemStockChanged", num_iid=15380658823, num=502),
    ]
    client, server, store = await start(sign_method=method)
    await until(lambda: len(gateway.confirmed) == 3)
    assert gateway.refused == []
    assert {c["sign_method"] for c in gateway.forms} == {method}
    assert gateway.confirmed == {str(BIG_ID), str(BIG_ID + 1), str(BIG_ID + 2)}  # exact 19-digit ids
    consume = next(c for c in gateway.forms if c["method"] == "taobao.tmc.messages.consume")
    assert consume["group_name"] == "default" and consume["format"] == "json"
    assert store.order_status(TID) == "paid"
    assert [m["outcome"] for m in store.source_messages("taobao-orders")] == ["order", "order", "ignored"]
    assert store.get_job(f"payment_chase:{TID}").status == "cancelled"
    assert set(store.order_buyers(TID)) == {"AAHk5d-open", "tb_xiaoyu"}


async def test_the_buyer_asks_through_the_bridge_and_hears_the_real_state(start, gateway):
    gateway.messages = [tmc_message(1, "taobao_trade_TradeBuyerPay", tid=int(TID), buyer_nick="tb_xiaoyu")]
    client, server, store = await start()
    await until(lambda: store.order_status(TID) == "paid")
    answer = await ask(client, "发货了吗", "m1")
    assert answer["kind"] == "auto_send"
    assert answer["replies"][-1]["phrase_id"] == "order_state.track_waiting"
    assert TID in answer["replies"][-1]["text"]
    gateway.messages.append(tmc_message(2, "taobao_trade_TradeSellerShip", "2026-11-23 15:00:00",
                                        tid=int(TID), buyer_nick="tb_xiaoyu"))
    await until(lambda: store.order_status(TID) == "shipped")
    answer = await ask(client, "能改地址吗", "m2")
    assert answer["replies"][-1]["phrase_id"] == "order_state.address_too_late"
    # the order was kept under the buyer's id and joined the bridge's conversation when she wrote
    assert TID in store.load_state("qianniu-bridge:qn-77")["orders"]


async def test_errors_back_off_and_recover_without_losing_a_message(start, gateway):
    gateway.fail_next, gateway.http_fail_next = 2, 1
    gateway.messages = [tmc_message(5, "taobao_trade_TradeCreate", tid=9, buyer_nick="b")]
    client, server, store = await start()
    await until(lambda: "5" in gateway.confirmed)
    assert store.order_status("9") == "created"
    assert server.metrics.connector_errors.labels("taobao-orders")._value.get() == 3


async def test_a_wrong_secret_is_refused_by_the_gateway_and_nothing_is_recorded(start, gateway, monkeypatch):
    gateway.messages = [tmc_message(5, "taobao_trade_TradeCreate", tid=9, buyer_nick="b")]
    client, server, store = await start(app_secret="not-the-secret")
    await until(lambda: gateway.refused)
    await asyncio.sleep(0.2)
    assert gateway.confirmed == set() and store.order_status("9") is None


async def test_a_redelivered_message_is_not_recorded_twice(start, gateway):
    gateway.messages = [tmc_message(5, "taobao_trade_TradeCreate", tid=9, buyer_nick="b")]
    client, server, store = await start()
    await until(lambda: "5" in gateway.confirmed)
    gateway.confirmed.clear()  # TMC sends it again (the confirm was lost)
    await until(lambda: "5" in gateway.confirmed)
    assert len(store.order_events("9")) == 1 and len(store.source_messages()) == 1


async def test_a_message_that_cannot_be_handled_is_kept_and_does_not_block_the_rest(start, gateway, monkeypatch):
    import connectors.taobao_tmc as tmc

    real = tmc.to_order_event

    def fussy(message, store, now):
        if str(message["id"]) == "66":
            raise ValueError("content kefu cannot read")
        return real(message, store, now)

    monkeypatch.setattr(tmc, "to_order_event", fussy)
    gateway.messages = [tmc_message(66, "taobao_trade_TradeCreate", tid=1, buyer_nick="b"),
                        tmc_message(67, "taobao_trade_TradeCreate", tid=2, buyer_nick="b")]
    client, server, store = await start()
    await until(lambda: gateway.confirmed == {"66", "67"})
    kept = {m["message_id"]: m for m in store.source_messages()}
    assert kept["66"]["outcome"] == "ignored" and "cannot read" in kept["66"]["payload"]["kefu_error"]
    assert store.order_status("2") == "created" and store.order_status("1") is None


def test_topics_map_to_order_events(tmp_path):
    from datetime import UTC, datetime

    store = SqliteStore(tmp_path / "s.sqlite")
    now = datetime(2026, 11, 23, 2, tzinfo=UTC)
    expect = {"taobao_trade_TradeCreate": "created", "taobao_trade_TradeBuyerPay": "paid",
              "taobao_trade_TradeSellerShip": "shipped", "taobao_trade_TradeSuccess": "delivered",
              "taobao_trade_TradeClose": "closed", "taobao_refund_RefundCreated": "refunding"}
    for topic, status in expect.items():
        event = to_order_event(tmc_message(1, topic, tid=7, buyer_nick="n", buyer_open_uid="u"), store, now)
        assert event.status == status and event.order_id == "7"
        assert event.customer_id == "u" and event.buyer_ids == ["n"]  # open uid first, nick kept too
        assert event.at.isoformat() == "2026-11-23T10:00:00+08:00"
    # no status of its own: unknown order → nothing guessed; known order → its status stays
    changed = tmc_message(2, "taobao_trade_TradeLogisticsAddressChanged", tid=7, buyer_nick="n")
    assert to_order_event(changed, store, now) is None
    store.add_order_event("7", "n", "paid", now, {})
    assert to_order_event(changed, store, now).status == "paid"
    store.add_order_event("7", "n", "refunding", now, {})
    ended = tmc_message(3, "taobao_refund_RefundClosed", tid=7, buyer_nick="n")
    assert to_order_event(ended, store, now).status == "paid"  # back to before the refund
    assert to_order_event(tmc_message(4, "taobao_item_ItemAdd", num_iid=1), store, now) is None
    assert to_order_event({"id": 5, "topic": "taobao_trade_TradeCreate", "content": "{not json"}, store, now) is None
    assert set(expect) < set(TOPICS)
    store.close()


def test_config_is_checked_at_start(monkeypatch):
    monkeypatch.setenv("TB_SECRET", APP_SECRET)
    with pytest.raises(ConnectorConfigError, match="sign_method"):
        build_connectors({"t": settings("http://x/router/rest", sign_method="sha1")})
    with pytest.raises(ConnectorConfigError, match="unknown setting"):
        build_connectors({"t": settings("http://x/router/rest", cursor="x")})
    monkeypatch.delenv("TB_SECRET")
    with pytest.raises(ConnectorConfigError, match="TB_SECRET"):
        build_connectors({"t": settings("http://x/router/rest")})


async def test_it_has_no_webhook(start):
    client, server, store = await start()
    resp = await client.post("/webhook/taobao-orders", data=b"{}")
    assert resp.status == 404 and (await resp.json())["ok"] is False


# --- kill -9 between consume and confirm ------------------------------------------------------

@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
@pytest.mark.usefixtures("engine")
async def test_kill_9_between_consume_and_confirm_loses_nothing_and_chases_once(gateway, session_dir, tmp_path):
    from test_server_crash import free_port, start_server

    gateway.messages = [
        tmc_message(11, "taobao_trade_TradeCreate", tid=42, buyer_nick="tb_a"),
        tmc_message(12, "taobao_trade_TradeCreate", tid=43, buyer_nick="tb_b"),
    ]
    gateway.hang_confirm = True
    # no quiet hours: the chase fires (and finds no conversation) whatever the time of day the test runs
    config = write_config(tmp_path, intents={"model_path": str(session_dir / "intent-model.joblib")},
                          store={"path": str(tmp_path / "kefu.sqlite")}, flows={"quiet_hours": "00:00-00:00"})
    raw = yaml.safe_load(config.read_text(encoding="utf-8"))
    raw["connectors"]["taobao-orders"] = {**settings(gateway.base), "app_secret": APP_SECRET}
    config.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    port = free_port()
    proc = await start_server(config, port)
    await asyncio.wait_for(gateway.confirm_entered.wait(), timeout=30)  # persisted, confirm under way
    proc.send_signal(signal.SIGKILL)
    assert await proc.wait() == -signal.SIGKILL
    assert gateway.confirmed == set()

    gateway.hang_confirm = False
    gateway.release.set()
    proc = await start_server(config, port)
    try:
        for _ in range(200):
            if gateway.confirmed == {"11", "12"}:
                break
            await asyncio.sleep(0.05)
        assert gateway.confirmed == {"11", "12"}
        async with ClientSession() as http:  # the server is healthy after the redelivery
            async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                assert resp.status == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), timeout=30)
    store = SqliteStore(tmp_path / "kefu.sqlite")
    assert [e["status"] for e in store.order_events("42")] == ["created"]
    assert [e["status"] for e in store.order_events("43")] == ["created"]
    assert len(store.source_messages("taobao-orders")) == 2
    # created a week before "now": each chase was due at once and fired exactly once, across the
    # kill and the redelivery of both messages; the buyers never wrote, so nothing was sent
    for order, buyer in (("42", "tb_a"), ("43", "tb_b")):
        assert store.get_job(f"payment_chase:{order}").status == "done"
        chased = [d for d in store.decisions(buyer) if d["trigger"] == "timer"]
        assert [(d["kind"], d["payload"]["reasons"]) for d in chased] == [
            ("none", ["payment_chase: the buyer never wrote, no conversation to chase in"])]
    assert gateway.refused == []
    store.close()


def test_the_platform_guides_config_blocks_work(monkeypatch):
    """The YAML blocks of docs/platforms/*.md are what a shop copies: they must load as written."""
    import re

    from bot.config import Config
    from tests_support import REPO

    monkeypatch.setenv("TAOBAO_APP_SECRET", APP_SECRET)
    blocks = {}
    for page in ("taobao.md", "jd.md"):
        text = (REPO / "docs" / "platforms" / page).read_text(encoding="utf-8")
        blocks[page] = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", text, re.S)]
    connectors = build_connectors(blocks["taobao.md"][0]["connectors"])
    assert connectors["taobao-orders"].settings.sign_method == "hmac-sha256"
    for block in (blocks["taobao.md"][1], blocks["jd.md"][0]):
        assert Config(**block).orders.source in {"taobao", "http"}
