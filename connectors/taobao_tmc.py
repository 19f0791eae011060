"""Taobao/Tmall order messages (TMC) over the TOP HTTP API: a poller, not a webhook.

``kefu serve`` starts one poll loop per ``type: taobao_tmc`` connector::

    connectors:
      taobao-orders:
        type: taobao_tmc
        app_key: "12345678"
        app_secret: ${TAOBAO_APP_SECRET}
        api_base: https://eco.taobao.com/router/rest
        sign_method: hmac-sha256        # md5 | hmac | hmac-sha256
        group: default                  # the TMC group (tmc.messages.consume group_name)
        poll_seconds: 5

Each round calls ``taobao.tmc.messages.consume`` (``group_name``, ``quantity``), persists every
message — deduplicated on its id in the store (``source_messages``), and, for a trade or refund
topic, as an order event in the same transaction — and only then calls
``taobao.tmc.messages.confirm`` with those ids (``s_message_ids``, at most 200 a call). TMC
redelivers what was not confirmed, so a crash between consume and confirm loses nothing, and the
redelivered messages are recognised by id: nothing is recorded twice, no one is chased twice.
There is no cursor to keep. Errors back off exponentially (up to 5 minutes); an empty round
waits ``poll_seconds``.

Topics (content fields from the TMC topic definitions: ``tid``, ``buyer_nick``,
``buyer_open_uid``, ``payment`` …) map to order events; any other topic is stored as "ignored"
and confirmed. See docs/platforms/taobao.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Literal, Protocol

from aiohttp import web
from pydantic import Field

from bot.models import Decision, OrderEvent, StoredMessage
from connectors.base import Connector, ConnectorSettings, Parsed, Rejected
from connectors.taobao_top import BEIJING, TopError, request_params, response_body

_LOGGER = logging.getLogger(__name__)


class OrderRecords(Protocol):
    """What the poller needs of kefu's store (`bot.store.Store` has it): the orders' history and
    the TMC messages already seen. Named here so the connector depends on no store module."""

    def transaction(self) -> AbstractContextManager[None]: ...

    def order_events(self, order_id: str) -> list[dict[str, Any]]: ...

    def order_status(self, order_id: str) -> str | None: ...

    def add_source_message(self, source: str, message_id: str, topic: str, at: datetime, outcome: str,
                           payload: dict[str, Any]) -> bool: ...

CONSUME = "taobao.tmc.messages.consume"
CONFIRM = "taobao.tmc.messages.confirm"
QUANTITY = 100
CONFIRM_BATCH = 200
MAX_BACKOFF = 300.0

#: topic → the order status it means; None: the status stays what it was (address changed,
#: a refund that ended: the order goes back to where it was before the refund).
TOPICS: dict[str, str | None] = {
    "taobao_trade_TradeCreate": "created",
    "taobao_trade_TradeBuyerPay": "paid",
    "taobao_trade_TradeClose": "closed",
    "taobao_trade_TradeSellerShip": "shipped",
    "taobao_trade_TradeSuccess": "delivered",
    "taobao_trade_TradeLogisticsAddressChanged": None,
    "taobao_refund_RefundCreated": "refunding",
    "taobao_refund_RefundSuccess": None,
    "taobao_refund_RefundClosed": None,
}


class TmcSettings(ConnectorSettings):
    app_key: str = Field(min_length=1)
    app_secret: str = Field(min_length=1)
    api_base: str = Field(pattern=r"^https?://")
    sign_method: Literal["md5", "hmac", "hmac-sha256"] = "hmac-sha256"
    group: str = "default"
    poll_seconds: float = Field(5.0, ge=0.01, le=3600)


def parse_pub_time(value: Any) -> datetime | None:
    """TMC's ``pub_time`` (``yyyy-MM-dd HH:mm:ss``, Beijing time) as an aware datetime."""
    try:
        return datetime.strptime(str(value), "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)
    except ValueError:
        return None


def message_content(message: dict[str, Any]) -> dict[str, Any]:
    """The topic's fields: ``content`` is a JSON string inside the JSON answer."""
    content = message.get("content")
    if isinstance(content, dict):
        return content
    try:
        parsed = json.loads(content) if isinstance(content, str) else None
    except json.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def previous_status(store: OrderRecords, order_id: str) -> str | None:
    """The order's status before its refund (or now, when it never had one)."""
    statuses = [e["status"] for e in store.order_events(order_id)]
    before = [s for s in statuses if s != "refunding"]
    return before[-1] if before else None


def to_order_event(message: dict[str, Any], store: OrderRecords, now: datetime) -> OrderEvent | None:
    """The order event a TMC message means, or None (an unknown topic, or nothing to act on)."""
    topic = str(message.get("topic", ""))
    if topic not in TOPICS:
        return None
    content = message_content(message)
    tid = content.get("tid")
    nick, open_uid = content.get("buyer_nick"), content.get("buyer_open_uid")
    buyers = [str(b) for b in (open_uid, nick) if b not in (None, "")]
    if tid in (None, "") or not buyers:
        return None
    order_id = str(tid)
    status = TOPICS[topic]
    if status is None:
        refund_ended = topic.startswith("taobao_refund_")
        status = previous_status(store, order_id) if refund_ended else store.order_status(order_id)
        if status is None:
            return None  # an address change or refund end for an order never seen: kept, not guessed
    amount = None
    with contextlib.suppress(TypeError, ValueError):
        amount = float(content["payment"]) if content.get("payment") not in (None, "") else None
    return OrderEvent(
        order_id=order_id, customer_id=buyers[0], status=status, amount=amount,
        at=parse_pub_time(message.get("pub_time")) or now, buyer_ids=buyers[1:],
    )


class TaobaoTmcConnector(Connector):
    """Pulls order messages; it serves no webhook and sends no chat replies."""

    type = "taobao_tmc"
    Settings = TmcSettings

    async def parse(self, request: web.Request, body: bytes) -> Parsed:
        raise Rejected(404, f"{self.name} is a taobao_tmc connector: it pulls messages and has no webhook")

    async def deliver(self, message: StoredMessage, decision: dict[str, Any]) -> None:
        raise RuntimeError("taobao_tmc carries order messages, not chat: nothing can be delivered through it")

    def background(self, server):
        return TmcPoller(self, server).run()

    async def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        s = self.settings
        form = request_params(s.app_key, s.app_secret, method, params, sign_method=s.sign_method)
        session = await self.http.session()
        async with session.post(s.api_base, data=form) as resp:
            if resp.status >= 400:
                raise TopError(f"{method}: HTTP {resp.status}")
            data = await resp.json(content_type=None)
        return response_body(method, data)


class TmcPoller:
    """consume → persist (dedupe) → confirm, until the server stops."""

    def __init__(self, connector: TaobaoTmcConnector, server):
        self.connector = connector
        self.server = server
        self.assistant = server.assistant
        self.rounds = 0
        self.failures = 0

    async def run(self) -> None:
        stop: asyncio.Event = self.server._stop
        while not stop.is_set():
            try:
                got = await self.round()
                self.failures = 0
                wait = 0.0 if got >= QUANTITY else self.connector.settings.poll_seconds
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failures += 1
                self.server.metrics.connector_errors.labels(self.connector.name).inc()
                wait = min(MAX_BACKOFF, self.connector.settings.poll_seconds * 2 ** min(self.failures, 12))
                _LOGGER.warning("TMC %s: %s (failure %d, next try in %.1f s)",
                                self.connector.name, exc, self.failures, wait)
            if wait:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=wait)

    async def round(self) -> int:
        """One consume/persist/confirm round; the number of messages received."""
        self.rounds += 1
        body = await self.connector.call(
            CONSUME, {"group_name": self.connector.settings.group, "quantity": QUANTITY}
        )
        messages = (body.get("messages") or {}).get("tmc_message") or []
        if not isinstance(messages, list):
            raise TopError(f"{CONSUME}: messages.tmc_message is not a list")
        done: list[str] = []
        for message in messages:
            if not isinstance(message, dict) or message.get("id") in (None, ""):
                _LOGGER.warning("TMC %s: a message without an id was skipped", self.connector.name)
                continue
            try:
                await self.server.run(self.persist, message)
            except sqlite3.Error:
                raise  # the store cannot write: confirm nothing, TMC sends it all again
            except Exception as exc:
                # a message we cannot turn into an order event would come back for ever: keep it
                # as "ignored" with the reason, and confirm it (it is stored, so nothing is lost)
                _LOGGER.warning("TMC %s: message %s kept unprocessed: %s", self.connector.name,
                                message.get("id"), exc.__class__.__name__)
                await self.server.run(self.keep_unprocessed, message, f"{exc.__class__.__name__}: {exc}")
            done.append(str(message["id"]))
        for start in range(0, len(done), CONFIRM_BATCH):
            await self.connector.call(CONFIRM, {
                "group_name": self.connector.settings.group,
                "s_message_ids": ",".join(done[start:start + CONFIRM_BATCH]),
            })
        return len(messages)

    def keep_unprocessed(self, message: dict[str, Any], error: str) -> None:
        store = self.assistant.store
        store.add_source_message(self.connector.name, str(message["id"]), str(message.get("topic", "")),
                                 self.assistant.clock.now(), "ignored", {**message, "kefu_error": error[:500]})

    def persist(self, message: dict[str, Any]) -> bool:
        """Record one message once (in the worker thread); False for a redelivered one."""
        return persist_message(self.assistant, self.connector.name, message)[0]


def persist_message(assistant, source: str, message: dict[str, Any]) -> tuple[bool, Decision | None]:
    """Store a TMC message and, the first time only, the order event it means (one transaction).

    Returns (new, the order event's decision or None). Shared by the poller and `kefu replay`
    (``tmc:`` events) so both take the same path.
    """
    store = assistant.store
    now = assistant.clock.now()
    decision = None
    with store.transaction():
        event = to_order_event(message, store, now)
        new = store.add_source_message(
            source, str(message["id"]), str(message.get("topic", "")), now,
            "order" if event is not None else "ignored", message,
        )
        if new and event is not None:
            decision = assistant.handle_order(event)
    return new, decision
