"""The two remote order sources against real HTTP servers on loopback: the signed ERP look-up
(bot/orders/http_source.py) and the Taobao API (bot/orders/taobao_source.py, fake TOP gateway)."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fake_top import APP_KEY, APP_SECRET, SESSION, FakeTop

from bot.config import Config, ConfigError
from bot.orders.base import SourceUnavailable
from bot.orders.build import order_source
from bot.orders.http_source import HttpOrderSource
from bot.orders.lookup import OrderLookup
from bot.orders.store_source import StoreOrderSource
from bot.orders.taobao_source import TaobaoOrderSource, trade_to_order
from bot.store import SqliteStore
from connectors.crypto import generic as signing

SECRET = "erp-lookup-secret-0123456789"


class Erp(BaseHTTPRequestHandler):
    """An ERP's look-up endpoint: checks our signature, signs its answer."""

    orders = {"3141": {"order_id": "3141", "status": "shipped", "courier": "韵达快递", "tracking_no": "YD88",
                       "address_changeable": False, "buyer_ids": ["tb_nick"]}}
    seen: list[dict] = []
    mode = "ok"

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        signing.verify(SECRET, self.headers.get("X-Kefu-Signature"), body)  # raises → 500 → test fails
        request = json.loads(body)
        Erp.seen.append(request)
        if Erp.mode == "slow":
            threading.Event().wait(3)
        if request["op"] == "get":
            found = [Erp.orders[request["order_id"]]] if request["order_id"] in Erp.orders else []
        else:
            found = [o for o in Erp.orders.values() if set(o["buyer_ids"]) & set(request["buyer_ids"])]
        answer = json.dumps({"orders": found}, ensure_ascii=False).encode()
        if Erp.mode == "bad-status":
            answer = json.dumps({"orders": [{**found[0], "status": "lost_in_space"}]}).encode()
        sig = signing.sign(SECRET if Erp.mode != "forged" else "another-secret-0123456", answer)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Kefu-Signature", sig)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


@pytest.fixture
def erp():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Erp)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Erp.seen, Erp.mode = [], "ok"
    yield f"http://127.0.0.1:{server.server_address[1]}/orders/lookup"
    server.shutdown()
    server.server_close()


def test_erp_get_and_recent_are_signed_both_ways(erp):
    source = HttpOrderSource(erp, SECRET, timeout=2)
    info = source.get("3141")
    assert (info.status, info.courier, info.tracking_no, info.can_change_address) == ("shipped", "韵达快递", "YD88", False)
    assert source.get("nope") is None
    assert [o.order_id for o in source.recent(["tb_nick"])] == ["3141"]
    assert Erp.seen == [{"op": "get", "order_id": "3141"}, {"op": "get", "order_id": "nope"},
                        {"op": "recent", "buyer_ids": ["tb_nick"], "limit": 3}]


@pytest.mark.parametrize("mode, reason", [("forged", "refused"), ("bad-status", "does not fit")])
def test_erp_answers_that_cannot_be_trusted_make_it_unavailable(erp, mode, reason):
    Erp.mode = mode
    with pytest.raises(SourceUnavailable, match=reason):
        HttpOrderSource(erp, SECRET).get("3141")


def test_erp_that_is_slow_or_gone(erp):
    Erp.mode = "slow"
    with pytest.raises(SourceUnavailable, match="did not answer within 0.3 s"):
        OrderLookup(HttpOrderSource(erp, SECRET, timeout=5), timeout=0.3).get("3141")
    with pytest.raises(SourceUnavailable, match="failed"):
        HttpOrderSource("http://127.0.0.1:9/none", SECRET, timeout=1).get("3141")


def test_erp_settings_are_checked():
    with pytest.raises(ValueError, match="16 characters"):
        HttpOrderSource("http://x", "short")
    with pytest.raises(ValueError, match="http"):
        HttpOrderSource("ftp://x", SECRET)


# --- Taobao trade.fullinfo.get ----------------------------------------------------------------

TRADE = {"tid": 3141592653, "status": "WAIT_BUYER_CONFIRM_GOODS", "buyer_nick": "tb_nick",
         "buyer_open_uid": "AAH-open",
         "orders": {"order": [{"oid": 1, "logistics_company": "中通快递", "invoice_no": "7310001"}]}}


@pytest.fixture
async def top(aiohttp_server):
    fake = await FakeTop().start(aiohttp_server)
    fake.trades = {"3141592653": TRADE}
    return fake


async def test_taobao_source_reads_the_trade_with_the_shops_session(top, tmp_path):
    store = SqliteStore(tmp_path / "s.sqlite")
    source = TaobaoOrderSource(store, api_base=top.base, app_key=APP_KEY, app_secret=APP_SECRET, session=SESSION,
                               sign_method="hmac", timeout=2)
    info = await asyncio.to_thread(source.get, "3141592653")
    assert (info.status, info.courier, info.tracking_no) == ("shipped", "中通快递", "7310001")
    assert set(info.buyer_ids) == {"tb_nick", "AAH-open"}
    call = top.forms[-1]
    assert call["method"] == "taobao.trade.fullinfo.get" and call["session"] == SESSION and top.refused == []
    assert "orders.invoice_no" in call["fields"]
    # recent: the order ids the store knows for the buyer (from TMC), refreshed from the API
    store.add_order_event("3141592653", "tb_nick", "paid", datetime(2026, 11, 23, tzinfo=UTC), {})
    lookup = OrderLookup(source, timeout=2)
    recent = await asyncio.to_thread(lookup.recent, ["tb_nick"])
    assert [(o.order_id, o.status) for o in recent] == [("3141592653", "shipped")]
    with pytest.raises(SourceUnavailable, match="isv.trade-not-exist"):
        await asyncio.to_thread(source.get, "404")
    bad = TaobaoOrderSource(store, api_base=top.base, app_key=APP_KEY, app_secret=APP_SECRET, session="stale")
    with pytest.raises(SourceUnavailable, match="Invalid session"):
        await asyncio.to_thread(bad.get, "3141592653")
    store.close()


def test_trade_statuses_and_refunds():
    assert trade_to_order({**TRADE, "status": "WAIT_SELLER_SEND_GOODS"}).status == "paid"
    assert trade_to_order({**TRADE, "status": "TRADE_FINISHED"}).status == "delivered"
    assert trade_to_order({**TRADE, "status": "TRADE_CLOSED_BY_TAOBAO"}).status == "closed"
    refunding = {**TRADE, "orders": {"order": [{"oid": 1, "refund_status": "WAIT_SELLER_AGREE"}]}}
    assert trade_to_order(refunding).status == "refunding"
    assert trade_to_order({**TRADE, "status": "SOMETHING_NEW"}) is None


def test_building_the_configured_source(tmp_path, monkeypatch):
    store = SqliteStore(tmp_path / "s.sqlite")
    assert isinstance(order_source(Config(), store), StoreOrderSource)
    monkeypatch.setenv("ERP_SECRET", SECRET)
    http = order_source(Config(orders={"source": "http", "url": "http://erp/lookup", "secret": "${ERP_SECRET}"}), store)
    assert isinstance(http, HttpOrderSource) and http.secret == SECRET
    with pytest.raises(ConfigError, match="orders.connector"):
        order_source(Config(orders={"source": "taobao", "session": "x"}), store)
    with pytest.raises(ConfigError, match="orders.secret"):
        order_source(Config(orders={"source": "http", "url": "http://erp", "secret": "${UNSET_VAR_X}"}), store)
    tmc = {"type": "taobao_tmc", "app_key": APP_KEY, "app_secret": APP_SECRET, "api_base": "http://gw/router/rest"}
    built = order_source(Config(orders={"source": "taobao", "connector": "tb", "session": "s"},
                                connectors={"tb": tmc}), store)
    assert isinstance(built, TaobaoOrderSource) and built.session == "s"
    store.close()


def test_order_secrets_are_read_only_when_the_server_starts(tmp_path):
    from bot.config import load_config

    path = tmp_path / "config.yaml"
    path.write_text("orders:\n  source: http\n  url: http://erp/lookup\n  secret: ${KEFU_TEST_UNSET_SECRET}\n",
                    encoding="utf-8")
    config = load_config(path)  # lint, chat, eval need no secrets
    assert config.orders.secret == "${KEFU_TEST_UNSET_SECRET}"
    with pytest.raises(ConfigError, match="KEFU_TEST_UNSET_SECRET"):
        order_source(config, SqliteStore(":memory:"))
