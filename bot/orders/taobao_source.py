"""The Taobao API as an order source: ``taobao.trade.fullinfo.get`` with the shop's session.

``get(order_id)`` asks for ``tid, status, buyer_nick, buyer_open_uid, modified`` and the
sub-orders' ``orders.logistics_company, orders.invoice_no, orders.refund_status``; the TOP
trade status maps onto kefu's statuses (`STATUS`). Taobao offers no "this buyer's latest
orders" call to a chat tool, so ``recent(buyer)`` takes the order ids the store knows for the
buyer (from TMC messages) and refreshes each with ``get``.

Unverified against the live gateway (no shop session here): the field names come from the
public TOP SDKs' Trade/Order models; tests run against a fake gateway that checks signatures.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.orders.base import OrderInfo, OrderSource, SourceUnavailable
from bot.store import Store
from connectors.taobao_top import TopError, call_blocking, request_params, response_body

FULLINFO = "taobao.trade.fullinfo.get"
FIELDS = ("tid,status,buyer_nick,buyer_open_uid,modified,consign_time,"
          "orders.logistics_company,orders.invoice_no,orders.refund_status")

#: TOP trade status → kefu status (SELLER_CONSIGNED_PART: part of it left, so it "shipped").
STATUS = {
    "TRADE_NO_CREATE_PAY": "created",
    "WAIT_BUYER_PAY": "created",
    "PAY_PENDING": "created",
    "WAIT_SELLER_SEND_GOODS": "paid",
    "PAID_FORBID_CONSIGN": "paid",
    "SELLER_CONSIGNED_PART": "shipped",
    "WAIT_BUYER_CONFIRM_GOODS": "shipped",
    "TRADE_BUYER_SIGNED": "delivered",
    "TRADE_FINISHED": "delivered",
    "TRADE_CLOSED": "closed",
    "TRADE_CLOSED_BY_TAOBAO": "closed",
}
#: Sub-order refund states that mean a refund is under way.
REFUNDING = frozenset({"WAIT_SELLER_AGREE", "WAIT_BUYER_RETURN_GOODS", "WAIT_SELLER_CONFIRM_GOODS"})


def trade_to_order(trade: dict[str, Any]) -> OrderInfo | None:
    status = STATUS.get(str(trade.get("status", "")))
    if status is None:
        return None
    orders = (trade.get("orders") or {}).get("order") or []
    orders = [o for o in orders if isinstance(o, dict)]
    if status not in {"closed"} and any(o.get("refund_status") in REFUNDING for o in orders):
        status = "refunding"
    courier = next((o["logistics_company"] for o in orders if o.get("logistics_company")), None)
    tracking = next((o["invoice_no"] for o in orders if o.get("invoice_no")), None)
    buyers = [str(b) for b in (trade.get("buyer_open_uid"), trade.get("buyer_nick")) if b]
    return OrderInfo(order_id=str(trade["tid"]), status=status, courier=courier, tracking_no=tracking,
                     buyer_ids=buyers)


class TaobaoOrderSource(OrderSource):
    name = "taobao"

    def __init__(self, store: Store, *, api_base: str, app_key: str, app_secret: str, session: str,
                 sign_method: str = "hmac-sha256", timeout: float = 2.0):
        self.store = store
        self.api_base, self.app_key, self.app_secret = api_base, app_key, app_secret
        self.session, self.sign_method, self.timeout = session, sign_method, timeout

    def get(self, order_id: str) -> OrderInfo | None:
        form = request_params(self.app_key, self.app_secret, FULLINFO, {"fields": FIELDS, "tid": order_id},
                              sign_method=self.sign_method, session=self.session)  # type: ignore[arg-type]
        try:
            body = response_body(FULLINFO, call_blocking(self.api_base, form, self.timeout))
        except TopError as exc:
            raise SourceUnavailable(str(exc)) from None
        except OSError as exc:
            raise SourceUnavailable(f"{FULLINFO} failed: {exc.__class__.__name__}") from None
        trade = body.get("trade")
        if not isinstance(trade, dict) or str(trade.get("tid")) != order_id:
            return None
        return trade_to_order(trade)

    def recent_ids(self, buyer_ids: Sequence[str], limit: int = 3) -> list[str] | None:
        return [row["order_id"] for row in self.store.orders_for_buyers(buyer_ids)[:limit]]

    def recent(self, buyer_ids: Sequence[str], limit: int = 3) -> list[OrderInfo]:
        ids = self.recent_ids(buyer_ids, limit) or []
        return [info for order_id in ids if (info := self.get(order_id)) is not None]
